# shellcheck shell=bash
# Helpers shared by the feature benchmarks (bench/<feature>.sh).  Sourced by
# bench/run.sh after test/lib/cluster.sh, with the cluster already running.
#
# Every measurement goes into table bench_results of database $BENCH_DB, so
# medians and ratios are computed in one place, by SQL, the same way for
# every feature.  A workload is either timed ('ms', lower is better) or
# counted ('tps', higher is better); ratios are always throughput relative
# to a baseline, so > 1.00x means faster than the baseline.

BENCH_DB=bench
# Markdown collected for the end of the run (bench/RESULTS.md material).
BENCH_MD=${BENCH_MD:-}
# PASS/MISS counters over all features.
BENCH_PASS=0
BENCH_MISS=0

bench_psql() { lc_psql -d "$BENCH_DB" "$@"; }

# One value, unaligned, no headers: for SELECTs whose result bash uses.
bench_sql_value() { bench_psql -At -c "$1"; }

bench_create_db() {
    lc_psql -d postgres -c "CREATE DATABASE $BENCH_DB" || lc_die "cannot create database $BENCH_DB"
    bench_psql <<'SQL' || lc_die "cannot create bench_results"
CREATE TABLE bench_results (
    feature  text    NOT NULL,
    workload text    NOT NULL,
    variant  text    NOT NULL,
    round    int     NOT NULL,
    unit     text    NOT NULL CHECK (unit IN ('ms', 'tps')),
    value    float8  NOT NULL
);
SQL
}

# bench_record FEATURE WORKLOAD VARIANT ROUND UNIT VALUE
bench_record() {
    bench_psql -v feature="$1" -v workload="$2" -v variant="$3" -v round="$4" \
        -v unit="$5" -v value="$6" <<'SQL' || lc_die "cannot record result $*"
INSERT INTO bench_results VALUES (:'feature', :'workload', :'variant', :'round', :'unit', :'value');
SQL
}

# bench_rotate ROUND VARIANT...: the variants in the order for this round
# (round 1 as given, round 2 starting at the second, ...), so that every
# variant runs early and late in a round equally often and drift cancels.
bench_rotate() {
    local round=$1 n i
    shift
    n=$#
    local vs=("$@")
    for ((i = 0; i < n; i++)); do
        printf '%s\n' "${vs[$(((i + round - 1) % n))]}"
    done
}

# VACUUM a table and CHECKPOINT, outside any timing: every timed run then
# starts from the same state (dead tuples reclaimed, no dirty buffers, the
# same full-page writes to pay).  With fsync = off the checkpoint leaves its
# writes in the page cache; sync flushes them now rather than letting the
# kernel write them back in the middle of the next run.
bench_reset_table() {
    bench_psql -c "VACUUM $1" -c "CHECKPOINT" || lc_die "VACUUM $1 failed"
    sync
}

# bench_pgbench SCRIPT SECONDS CLIENTS: run pgbench, print its TPS.
bench_pgbench() {
    local script=$1 seconds=$2 clients=$3 out tps
    out=$("$LC_PGBIN/pgbench" -n -M prepared -c "$clients" -j "$clients" \
        -T "$seconds" -f "$script" "$BENCH_DB" 2>&1) ||
        { printf '%s\n' "$out" >&2; lc_die "pgbench failed on $script"; }
    tps=$(printf '%s\n' "$out" | awk '/^tps = / { print $3; exit }')
    [ -n "$tps" ] || { printf '%s\n' "$out" >&2; lc_die "no tps in pgbench output for $script"; }
    printf '%s\n' "$tps"
}

# bench_ratio FEATURE WORKLOAD A B: throughput of A relative to B, from the
# medians (2.00 means A does twice the work per second of B).
bench_ratio() {
    bench_psql -At -v feature="$1" -v workload="$2" -v a="$3" -v b="$4" <<'SQL'
WITH m AS (
    SELECT variant, min(unit) AS unit,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY value) AS med
      FROM bench_results
     WHERE feature = :'feature' AND workload = :'workload'
     GROUP BY variant)
SELECT round(CASE a.unit WHEN 'ms' THEN b.med / a.med ELSE a.med / b.med END::numeric, 3)
  FROM m a, m b
 WHERE a.variant = :'a' AND b.variant = :'b';
SQL
}

# bench_report FEATURE WORKLOAD TITLE BASELINE VARIANT...: print a table of
# medians, spread and throughput relative to BASELINE, and add it to the
# markdown.
bench_report() {
    local feature=$1 workload=$2 title=$3 base=$4 rows unit
    shift 4
    local order
    order=$(printf '%s,' "$@")
    order="{${order%,}}"
    rows=$(bench_psql -At -F '|' -v feature="$feature" -v workload="$workload" \
        -v base="$base" -v order="$order" <<'SQL'
WITH m AS (
    SELECT variant, min(unit) AS unit, count(*) AS n, min(value) AS lo, max(value) AS hi,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY value) AS med
      FROM bench_results
     WHERE feature = :'feature' AND workload = :'workload'
     GROUP BY variant)
SELECT m.variant, m.unit, m.n,
       round(m.med::numeric, 1), round(m.lo::numeric, 1), round(m.hi::numeric, 1),
       round(CASE m.unit WHEN 'ms' THEN b.med / m.med ELSE m.med / b.med END::numeric, 2)
  FROM m, m b
 WHERE b.variant = :'base'
 ORDER BY array_position(:'order'::text[], m.variant);
SQL
    ) || lc_die "cannot report $feature/$workload"
    [ -n "$rows" ] || lc_die "no results for $feature/$workload (baseline $base missing?)"
    unit=$(printf '%s\n' "$rows" | head -1 | cut -d'|' -f2)

    printf '\n%s  (median of %s runs; %s)\n' "$title" \
        "$(printf '%s\n' "$rows" | head -1 | cut -d'|' -f3)" \
        "$([ "$unit" = ms ] && echo 'time, lower is better' || echo 'transactions/s, higher is better')"
    printf '  %-14s %12s %12s %12s %14s\n' variant "median $unit" "min" "max" "vs $base"
    printf '%s\n' "$rows" | while IFS='|' read -r v _ _ med lo hi ratio; do
        printf '  %-14s %12s %12s %12s %13sx\n' "$v" "$med" "$lo" "$hi" "$ratio"
    done

    BENCH_MD+=$'\n'"**$title** (median of $(printf '%s\n' "$rows" | head -1 | cut -d'|' -f3) runs; throughput relative to $base, > 1.00x is faster)"$'\n\n'
    BENCH_MD+="| variant | median $unit | min–max $unit | throughput vs $base |"$'\n'
    BENCH_MD+="|---|---:|---:|---:|"$'\n'
    while IFS='|' read -r v _ _ med lo hi ratio; do
        BENCH_MD+="| $v | $med | $lo–$hi | ${ratio}x |"$'\n'
    done <<<"$rows"
}

# bench_check LABEL VALUE OP TARGET: PASS/MISS line, e.g.
#   bench_check "lifecycle vs baseline" 0.97 '>=' 0.95
bench_check() {
    local label=$1 value=$2 op=$3 target=$4 verdict
    [ -n "$value" ] || lc_die "no value for check: $label"
    if awk -v v="$value" -v t="$target" -v op="$op" 'BEGIN {
            if (op == ">=") exit !(v >= t); if (op == ">") exit !(v > t);
            if (op == "<=") exit !(v <= t); if (op == "<") exit !(v < t); exit 2 }'; then
        verdict=PASS BENCH_PASS=$((BENCH_PASS + 1))
    else
        verdict=MISS BENCH_MISS=$((BENCH_MISS + 1))
    fi
    printf '  %-4s %s: %sx (target %s %sx)\n' "$verdict" "$label" "$value" "$op" "$target"
    BENCH_MD+="- $verdict $label: ${value}x (target $op ${target}x)"$'\n'
}

# bench_note TEXT: a plain line in both outputs.
bench_note() {
    printf '  %s\n' "$1"
    BENCH_MD+="- $1"$'\n'
}
