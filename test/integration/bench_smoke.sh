#!/usr/bin/env bash
# `make bench` still runs: every benchmark of bench/ once, at tiny sizes,
# on the build the leg installed (BENCH_NO_BUILD=1), on the benchmark's own
# throwaway cluster.  Nothing here is timed or compared: at these sizes
# the ratios mean nothing, and speed claims are for bench/ itself.  What
# it catches is a benchmark that no longer starts or no longer checks out
# (the audit benchmark looked for enable_audit's 0.4.0 signature through
# all of 0.5.0's development), and each benchmark's own verification of
# what the variants wrote.  Its markdown goes to a directory of its own, not
# over bench/out/latest.md.
#
# The benchmarks run on PostgreSQL 15 (Debian's, with the peers pg_partman
# and table_log from its archive, which bench/run.sh installs as root; as
# another user they must be installed already);
# elsewhere the test says it is skipped.  Prints "ok - ..." / "not ok - ...".
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
[ -n "${LC_PGBIN:-}" ] || LC_PGBIN=/usr/lib/postgresql/15/bin

skip() { echo "ok - bench smoke: skipped ($1) # SKIP"; exit 0; }
case $LC_PGBIN in /usr/lib/postgresql/15/bin) ;; *) skip "the benchmarks run on PostgreSQL 15" ;; esac
if [ "$(id -u)" -ne 0 ]; then
    for p in postgresql-15-partman postgresql-15-tablelog; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            skip "$p is not installed, and bench/run.sh installs it as root only"
    done
fi

out=$(mktemp -d "${TMPDIR:-/tmp}/pg_lifecycle-bench-smoke.XXXXXX")
log=$out/log
trap 'rm -rf "$out"' EXIT
# sizes: the smallest each benchmark accepts and still verifies (soft
# delete's single-row run needs a table large enough that random ids
# rarely repeat, so it keeps its default)
env BENCH_NO_BUILD=1 BENCH_OUT="$out" BENCH_CLUSTER_DIR="$(lc_cluster_dir bench-smoke)" \
    BENCH_ROWS=2000 BENCH_ROUNDS=1 BENCH_PGBENCH_ROUNDS=1 BENCH_PGBENCH_SECONDS=1 \
    BENCH_AU_ROUNDS=1 BENCH_AU_PGBENCH_ROUNDS=1 \
    BENCH_CN_ROUNDS=1 BENCH_CN_PGBENCH_ROUNDS=1 BENCH_CN_NAIVE_ROUNDS=1 \
    BENCH_CN_NAIVE_ROWS=200 BENCH_CN_ROWS=2000 \
    BENCH_RD_DOCS=200 BENCH_RD_ROUNDS=1 BENCH_RD_INSERT_ROUNDS=1 BENCH_RD_INSERT_ROWS=1000 \
    BENCH_RT_ROWS=20000 BENCH_RT_EXPIRED=15500 BENCH_RT_ROUNDS=1 BENCH_RT_BATCHES=2 \
    BENCH_RT_PGBENCH_ROUNDS=1 BENCH_RT_PGBENCH_SECONDS=1 \
    BENCH_SD_PROJECTS=5 BENCH_SD_ROUNDS=3 BENCH_SD_PGBENCH_ROUNDS=2 \
    bash bench/run.sh >"$log" 2>&1
rc=$?
if [ "$rc" -eq 0 ] && grep -qE '^[0-9]+ PASS, [0-9]+ MISS' "$log"; then
    echo "ok - bench smoke: bash bench/run.sh ran to its summary"
else
    echo "not ok - bench smoke: bash bench/run.sh exited with $rc"
    grep -E '^error|ERROR' "$log" | head -20 | sed 's/^/# /'
    tail -5 "$log" | sed 's/^/# /'
    exit 1
fi
for f in $(cd bench && ls *.sh | sed 's/\.sh$//' | grep -vxE 'lib|run'); do
    if grep -q "^### $f" "$log"; then
        echo "ok - bench smoke: $f ran and its results verified"
    else
        echo "not ok - bench smoke: no results of $f"
    fi
done
