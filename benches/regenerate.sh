#!/usr/bin/env bash
# Regenerates every table of BENCHMARKS.md at HEAD.
#
#   benches/regenerate.sh                  all runners, full size, then BENCHMARKS.md
#   benches/regenerate.sh tpch skew        only these runners (and their sections)
#   benches/regenerate.sh --quick          small sizes, results in target/bench-results/quick/ only
#   benches/regenerate.sh --allow-dirty    run on a tree with uncommitted changes
#
# Builds the benchmark runners once (release, `bench` profile), runs each
# one, saves its standard output (Markdown: a header with command, commit,
# date, machine and both engines' settings, then the table) as
# target/bench-results/<runner>.md and its progress as <runner>.log, and
# then replaces the text between `<!-- BEGIN GENERATED: <runner> -->` and
# `<!-- END GENERATED: <runner> -->` in BENCHMARKS.md with that file.
# Everything outside the markers is left as it is. BENCHMARKS.md is only
# written once every selected runner has succeeded.
#
# The tables name the commit they were measured at, so a full run refuses
# a tree with uncommitted changes unless given --allow-dirty (the tables
# then say "(dirty)"). --quick never touches BENCHMARKS.md and runs on any
# tree: it checks that everything works end to end, its numbers are not
# the benchmark's.
set -euo pipefail

usage() {
    sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
    echo
    echo "runners: ${ALL[*]}"
}

ALL=(tpch netflix skew netflix_gen tpch_memory ui_overhead iceberg_overhead delta_overhead shuffle)

# The bench target a runner runs (ui_overhead, iceberg_overhead and
# delta_overhead are modes of the tpch runner).
bench_of() {
    case $1 in
        ui_overhead | iceberg_overhead | delta_overhead) echo tpch ;;
        *) echo "$1" ;;
    esac
}

# The arguments of each runner: the sizes BENCHMARKS.md documents, and the
# quick ones.
full_args() {
    case $1 in
        tpch) echo "--scale-factor 1 --executors 2 --iterations 3" ;;
        netflix) echo "--scale 1 --executors 2 --partitions 2 --iterations 3" ;;
        skew) echo "--executors 2 --iterations 5" ;;
        netflix_gen) echo "--scale 1 --runs 3" ;;
        tpch_memory) echo "--scale-factors 1,10 --memory 1g --datafusion-memory 2g --shuffle-partitions 8" ;;
        ui_overhead) echo "--scale-factor 1 --executors 2 --iterations 3 --ui-overhead" ;;
        iceberg_overhead) echo "--scale-factor 1 --executors 2 --iterations 3 --table-format iceberg" ;;
        delta_overhead) echo "--scale-factor 1 --executors 2 --iterations 3 --table-format delta" ;;
        shuffle) echo "--scale-factor 1 --executors 2 --iterations 3$(spark_arg)" ;;
    esac
}
# Spark 4 beside the bare shuffle, when a Python with pyspark is there
# ($MINISPARK_SPARK_PYTHON, or the virtualenv ~/.cache/pyspark4).
spark_arg() {
    local python=${MINISPARK_SPARK_PYTHON:-$HOME/.cache/pyspark4/bin/python}
    if [[ -x $python ]] && "$python" -c 'import pyspark' 2>/dev/null; then
        echo " --spark-python $python"
    fi
}
quick_args() {
    case $1 in
        tpch) echo "--scale-factor 0.1 --executors 2 --iterations 1" ;;
        netflix) echo "--scale 0.1 --executors 2 --partitions 2 --iterations 1" ;;
        skew) echo "--executors 2 --iterations 1 --rows 2000000" ;;
        netflix_gen) echo "--scale 0.1 --runs 1" ;;
        tpch_memory) echo "--scale-factors 0.1,0.2 --memory 128m --datafusion-memory 128m" ;;
        ui_overhead) echo "--scale-factor 0.1 --executors 2 --iterations 1 --ui-overhead" ;;
        iceberg_overhead) echo "--scale-factor 0.1 --executors 2 --iterations 1 --table-format iceberg" ;;
        delta_overhead) echo "--scale-factor 0.1 --executors 2 --iterations 1 --table-format delta" ;;
        shuffle) echo "--scale-factor 0.1 --executors 2 --iterations 1" ;;
    esac
}

quick=0
allow_dirty=0
selected=()
for arg in "$@"; do
    case $arg in
        --quick) quick=1 ;;
        --allow-dirty) allow_dirty=1 ;;
        -h | --help)
            usage
            exit 0
            ;;
        -*)
            echo "regenerate.sh: unknown option $arg" >&2
            usage >&2
            exit 2
            ;;
        *)
            known=0
            for r in "${ALL[@]}"; do [[ $r == "$arg" ]] && known=1; done
            if [[ $known == 0 ]]; then
                echo "regenerate.sh: unknown runner '$arg' (runners: ${ALL[*]})" >&2
                exit 2
            fi
            selected+=("$arg")
            ;;
    esac
done
if [[ ${#selected[@]} == 0 ]]; then
    selected=("${ALL[@]}")
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
doc=BENCHMARKS.md

if [[ $quick == 0 ]]; then
    if [[ $allow_dirty == 0 && -n $(git status --porcelain) ]]; then
        echo "regenerate.sh: the tree has uncommitted changes, and the tables name the commit" >&2
        echo "they were measured at. Commit first, or pass --allow-dirty (the tables then" >&2
        echo "say '(dirty)'), or --quick for a check that does not touch $doc." >&2
        git status --short >&2
        exit 1
    fi
    # Every selected section must exist before an hour of measuring.
    for r in "${selected[@]}"; do
        for mark in BEGIN END; do
            if [[ $(grep -cxF "<!-- $mark GENERATED: $r -->" "$doc") != 1 ]]; then
                echo "regenerate.sh: $doc needs exactly one line '<!-- $mark GENERATED: $r -->'" >&2
                exit 1
            fi
        done
    done
    out=target/bench-results
else
    out=target/bench-results/quick
fi
mkdir -p "$out"

start_all=$SECONDS
echo "== building the runners once (release, bench profile): ${selected[*]}" >&2
build=()
for r in "${selected[@]}"; do build+=(--bench "$(bench_of "$r")"); done
cargo bench --no-run "${build[@]}"

for r in "${selected[@]}"; do
    if [[ $quick == 1 ]]; then args=$(quick_args "$r"); else args=$(full_args "$r"); fi
    echo "== $r: cargo bench --bench $(bench_of "$r") -- $args  (progress in $out/$r.log)" >&2
    start=$SECONDS
    # shellcheck disable=SC2086 # the arguments are words
    if ! cargo bench -q --bench "$(bench_of "$r")" -- $args >"$out/$r.md.tmp" 2>"$out/$r.log"; then
        echo "regenerate.sh: $r failed; the end of $out/$r.log:" >&2
        tail -n 30 "$out/$r.log" >&2
        rm -f "$out/$r.md.tmp"
        exit 1
    fi
    mv "$out/$r.md.tmp" "$out/$r.md"
    echo "   $r took $((SECONDS - start)) s -> $out/$r.md" >&2
done

if [[ $quick == 1 ]]; then
    echo "== quick check done in $((SECONDS - start_all)) s; results in $out/ ($doc untouched)" >&2
    exit 0
fi

for r in "${selected[@]}"; do
    awk -v begin="<!-- BEGIN GENERATED: $r -->" -v end="<!-- END GENERATED: $r -->" \
        -v file="$out/$r.md" '
        $0 == begin {
            print
            print "<!-- Written by benches/regenerate.sh from " file "; edits here are overwritten. -->"
            print ""
            while ((getline line < file) > 0) print line
            close(file)
            print ""
            skip = 1
            next
        }
        $0 == end { skip = 0 }
        !skip { print }
    ' "$doc" >"$doc.tmp"
    mv "$doc.tmp" "$doc"
done
echo "== done in $((SECONDS - start_all)) s; $doc sections rewritten: ${selected[*]}" >&2
