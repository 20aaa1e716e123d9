#!/usr/bin/env python3
"""The embedded cluster's fixed costs, for two builds of `minispark` side by side.

    benches/local_overhead.py BASE_LABEL=BASE_BINARY NEW_LABEL=NEW_BINARY [--reps N] [--jobs J]

Measures, for each binary, alternating the order every repetition so that
neither always runs first on a warm page cache:

* cold submit: `minispark submit one.sql --master local[2]`, wall time of the
  whole command: start the driver and two executor processes, register them,
  run one trivial job (a GROUP BY over the 25 nations: a scan, a shuffle and
  a reduce), print the result, stop;
* warm job: (time of the same command with J + 1 copies of the job - time
  with one) / J, the time of one trivial job on a running cluster. The
  cold start's spread (about 0.1 s here) is divided by J, so J = 200 (the
  default) resolves a warm job to about half a millisecond.

Prints a Markdown table: medians, minimums and the spread (25th to 75th
percentile) over the repetitions. The
issue that added authentication and input limits (issue 10) requires both
to stay within 10% of the build before it.
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

JOB = "SELECT n_regionkey, count(*) AS nations FROM tpch.sf0_01.nation GROUP BY 1 ORDER BY 1;\n"


def run(binary, script):
    start = time.perf_counter()
    subprocess.run(
        [binary, "submit", script, "--master", "local[2]", "--format", "csv"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=300,
    )
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("builds", nargs=2, metavar="LABEL=BINARY")
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=200)
    args = parser.parse_args()
    builds = [tuple(b.split("=", 1)) for b in args.builds]
    with tempfile.TemporaryDirectory() as tmp:
        one = os.path.join(tmp, "one.sql")
        many = os.path.join(tmp, "many.sql")
        with open(one, "w") as f:
            f.write(JOB)
        with open(many, "w") as f:
            f.write(JOB * (args.jobs + 1))
        times = {label: {"one": [], "many": []} for label, _ in builds}
        for rep in range(args.reps):
            order = builds if rep % 2 == 0 else builds[::-1]
            for label, binary in order:
                times[label]["one"].append(run(binary, one))
                times[label]["many"].append(run(binary, many))
            print(f"repetition {rep + 1}/{args.reps} done", file=sys.stderr)
    print(f"`{' '.join(sys.argv)}`, {args.reps} repetitions, on {platform.node()} "
          f"({os.cpu_count()} cores, {platform.machine()})\n")
    print("| build | cold submit, median | cold submit, min | warm job, median | warm job, min "
          "| warm job, 25th-75th |")
    print("|---|---|---|---|---|---|")
    base_cold = base_warm = None
    for label, _ in builds:
        cold = times[label]["one"]
        warm = [(m - o) / args.jobs for m, o in zip(times[label]["many"], cold)]
        q = statistics.quantiles(warm, n=4)
        cold_med, warm_med = statistics.median(cold), statistics.median(warm)
        vs = ""
        if base_cold is None:
            base_cold, base_warm = cold_med, warm_med
        else:
            vs = f" ({cold_med / base_cold:.2f}x / {warm_med / base_warm:.2f}x)"
        print(f"| {label}{vs} | {cold_med * 1000:.0f} ms | {min(cold) * 1000:.0f} ms | "
              f"{warm_med * 1000:.1f} ms | {min(warm) * 1000:.1f} ms | "
              f"{q[0] * 1000:.1f}-{q[2] * 1000:.1f} ms |")


if __name__ == "__main__":
    main()
