#!/usr/bin/env python3
"""Spark 4's bare shuffle, beside benches/shuffle.rs (optional).

    python3 benches/shuffle_spark.py --data target/tpch-sf1 [--iterations 3] [--partitions 2]

Needs pyspark 4 and Java 17, e.g.:

    python3 -m venv ~/.cache/pyspark4 && ~/.cache/pyspark4/bin/pip install 'pyspark==4.*'
    ~/.cache/pyspark4/bin/python benches/shuffle_spark.py --data target/tpch-sf1

Runs `SELECT * FROM lineitem DISTRIBUTE BY l_partkey` on local[N] (N =
--partitions, the same cores and shuffle partitions as the minispark run)
over the same Parquet files, written to Spark's `noop` sink (every row
produced, nothing stored), once with the shuffle compressed by LZ4
(spark.shuffle.compress, spark.io.compression.codec = lz4) and once
uncompressed; adaptive execution off, as in the minispark run. Prints the
median wall time and the shuffle bytes written and read (from Spark's
status store) as Markdown rows for BENCHMARKS.md.
"""

import argparse
import json
import os
import statistics
import time
import urllib.request


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="target/tpch-sf1")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SystemExit(
            "pyspark is not installed: see this script's docstring (it is optional)"
        )
    lineitem = os.path.abspath(os.path.join(args.data, "lineitem"))
    print(f"| run | wall ms (median of {args.iterations}) | shuffle bytes written | bytes read |")
    print("|---|---:|---:|---:|")
    for compress in (True, False):
        spark = (
            SparkSession.builder.master(f"local[{args.partitions}]")
            .appName("minispark-shuffle-baseline")
            .config("spark.sql.shuffle.partitions", str(args.partitions))
            .config("spark.sql.adaptive.enabled", "false")
            .config("spark.shuffle.compress", str(compress).lower())
            .config("spark.io.compression.codec", "lz4")
            .config("spark.ui.enabled", "true")
            .config("spark.ui.port", "0")
            .getOrCreate()
        )
        spark.read.parquet(lineitem).createOrReplaceTempView("lineitem")
        query = "SELECT * FROM lineitem DISTRIBUTE BY l_partkey"
        walls = []
        for round_ in range(args.iterations + 1):
            start = time.perf_counter()
            spark.sql(query).write.format("noop").mode("overwrite").save()
            wall = time.perf_counter() - start
            if round_ > 0:
                walls.append(wall)
        written, read = shuffle_bytes(spark)
        label = "Spark 4 local[%d], %s" % (
            args.partitions,
            "LZ4" if compress else "uncompressed",
        )
        # Bytes of the last run (every run writes the same).
        print(
            f"| {label} | {statistics.median(walls) * 1e3:.1f} | "
            f"{written / 1e6:.1f} MB | {read / 1e6:.1f} MB |"
        )
        spark.stop()


def shuffle_bytes(spark):
    """Shuffle bytes written and read by the last job's stages, from the UI's REST API."""
    ui = spark.sparkContext.uiWebUrl
    app = spark.sparkContext.applicationId
    with urllib.request.urlopen(f"{ui}/api/v1/applications/{app}/stages") as r:
        stages = json.load(r)
    last_job = max(s.get("stageId", 0) for s in stages)
    mine = [s for s in stages if s["stageId"] >= last_job - 1]
    written = sum(s.get("shuffleWriteBytes", 0) for s in mine)
    read = sum(s.get("shuffleReadBytes", 0) for s in mine)
    return written, read


if __name__ == "__main__":
    main()
