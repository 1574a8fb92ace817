#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# bench/run.sh [FEATURE...]: benchmark pg_lifecycle on a throwaway cluster.
#
# Runs every bench/<feature>.sh (or only the features named), prints a
# readable table per workload with PASS/MISS against the feature's targets,
# and ends with the same results as markdown for bench/RESULTS.md (also
# saved under bench/out/).  As root on a fresh Debian 12 machine it
# installs the packages, builds and installs the extension first.
#
# A feature file bench/NAME.sh defines bench_NAME; it may use the helpers in
# bench/lib.sh and the variables BENCH_DB (its database, shared by all
# features, with pg_lifecycle not yet created) and BENCH_WORK (a scratch
# directory).
#
# Knobs (environment):
#   BENCH_ROWS=200000 BENCH_ROUNDS=10 BENCH_PGBENCH_ROUNDS=8
#   BENCH_PGBENCH_SECONDS=5 BENCH_CLIENTS=1   (defaults of updated_at.sh)
#   BENCH_NO_BUILD=1         benchmark the installed build, skip make install
#   BENCH_CLUSTER_DIR=DIR    where the throwaway cluster goes (removed after)
#   BENCH_OUT=DIR            where the markdown goes (default bench/out: latest.md and one file per run)
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$BENCH_DIR/../test/lib/cluster.sh"
. "$BENCH_DIR/lib.sh"

# Every bench/*.sh but the runner and the library is a feature.
bench_features() {
    local f name
    for f in "$BENCH_DIR"/*.sh; do
        name=$(basename "$f" .sh)
        case $name in run | lib) ;; *) echo "$name" ;; esac
    done
}

bench_usage() {
    echo "usage: bash bench/run.sh [FEATURE...]   features: $(bench_features | tr '\n' ' ')" >&2
    exit 2
}

# Same settings for every variant.  autovacuum is off so that no variant is
# vacuumed in the middle of its run (the benchmarks VACUUM explicitly
# between runs); checkpoints are only the explicit ones, and JIT would add
# compile time that depends on cost estimates rather than on the trigger.
# fsync=off comes from cluster.sh; commits stay synchronous.
BENCH_SETTINGS=(
    "shared_buffers = 512MB"
    "autovacuum = off"
    "max_wal_size = 8GB"
    "checkpoint_timeout = 1h"
    "jit = off"
)

main() {
    local features=() f cluster
    case ${1:-} in -h | --help) bench_usage ;; esac
    if [ $# -gt 0 ]; then
        for f in "$@"; do
            if [ ! -f "$BENCH_DIR/$f.sh" ] || [ "$f" = run ] || [ "$f" = lib ]; then
                echo "unknown feature: $f" >&2
                bench_usage
            fi
            features+=("$f")
        done
    else
        mapfile -t features < <(bench_features)
    fi
    [ ${#features[@]} -gt 0 ] || lc_die "no benchmarks in $BENCH_DIR"

    # shellcheck disable=SC2119 # no extra packages
    lc_need_packages
    if [ "${BENCH_NO_BUILD:-0}" = 1 ]; then
        lc_log "BENCH_NO_BUILD=1: benchmarking the installed pg_lifecycle"
    else
        lc_build_install
    fi

    cluster=${BENCH_CLUSTER_DIR:-$(lc_cluster_dir bench)}
    BENCH_CLUSTER=$cluster
    BENCH_WORK=$(mktemp -d "${TMPDIR:-/tmp}/pg_lifecycle-bench.XXXXXX")
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM   # run the EXIT trap on ^C too
    lc_stop "$cluster" || true # left over from an interrupted run
    lc_start "$cluster" "$(lc_free_port 58432)" "${BENCH_SETTINGS[@]}"
    lc_log "cluster in $cluster on port $PGPORT"
    bench_create_db

    for f in "${features[@]}"; do
        # shellcheck source=/dev/null
        . "$BENCH_DIR/$f.sh"
        declare -F "bench_$f" >/dev/null || lc_die "$BENCH_DIR/$f.sh defines no function bench_$f"
        "bench_$f"
    done

    bench_print_markdown
    printf '\n%d PASS, %d MISS (%ds)\n' "$BENCH_PASS" "$BENCH_MISS" "$SECONDS"
}

bench_cleanup() {
    lc_stop "$BENCH_CLUSTER" || true
    rm -rf "$BENCH_WORK"
}

# The header says what machine and settings produced the numbers, so that a
# pasted table can be compared with a later one.
bench_print_markdown() {
    local md cpu out
    cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
    md="## $(date -u '+%Y-%m-%d %H:%M UTC') — $(git -C "$BENCH_DIR" rev-parse --short HEAD 2>/dev/null || echo 'no git')"$'\n\n'
    md+="$(bench_sql_value 'SELECT version()' | cut -d, -f1); $(nproc) CPUs (${cpu:-unknown CPU}); "
    md+="settings: $(printf '%s, ' "${BENCH_SETTINGS[@]}")fsync = off."$'\n'
    md+=$BENCH_MD
    printf '\n---- markdown for bench/RESULTS.md ----\n%s' "$md"
    out=${BENCH_OUT:-$BENCH_DIR/out}
    if mkdir -p "$out" 2>/dev/null; then
        printf '%s' "$md" >"$out/results-$(date -u +%Y%m%d-%H%M%S).md"
        printf '%s' "$md" >"$out/latest.md"
    fi
}

main "$@"
