# shellcheck shell=bash
# Benchmark of usage counters (lifecycle.track_usage), sourced by
# bench/run.sh, which then calls bench_counters.
#
# One accounts table, cn_accounts (id uuid PRIMARY KEY, name, one integer
# counter column per counting variant, max_projects), and one identical
# projects table per way of counting an account's projects:
#   baseline   no counter
#   lifecycle  lifecycle.track_usage('cn_projects', 'cn_accounts',
#              'count_lifecycle', 'cn_lifecycle', 'account_id',
#              'max_projects'): statement-level AFTER triggers with
#              transition tables, the count in per-backend slots of
#              lifecycle.usage_counts, mirrored into the column, limit enforced
#   naive      the usual PL/pgSQL trigger: AFTER INSERT FOR EACH ROW,
#              UPDATE cn_accounts SET count_naive = count_naive + 1
#              WHERE id = NEW.account_id
# and three workloads, all inserting projects of the SAME account:
#   pgbench     single-row INSERTs, CN_CLIENTS (8) concurrent clients,
#               transactions per second
#   bulk        one INSERT ... SELECT of CN_ROWS (100,000) rows, timed inside
#               the server (baseline and lifecycle)
#   bulk_naive  the same with CN_NAIVE_ROWS (10,000) rows, all three
#               variants: the naive row trigger updates one account row once
#               per inserted row inside one transaction, and the versions it
#               leaves cannot be pruned before the commit, so its time grows
#               with the square of the rows (100,000 rows take minutes)
#
# Every run starts from an empty projects table (TRUNCATE, which makes
# lifecycle recount), the naive counter at 0, and the projects table,
# cn_accounts and lifecycle.usage_counts VACUUMed, then CHECKPOINT and sync.
# After every run, outside the timing, cn_verify() checks the count: the
# projects table holds exactly the rows the run inserted; lifecycle's slots
# sum to that count, the column equals it after
# lifecycle.refresh_usage_counters(), calculate_account_usage() agrees, and
# the count is within the limit; naive's column equals it.  A wrong count
# stops the benchmark.  Before the timed runs, an untimed check has 8
# clients insert past a low limit, which must stop the count exactly at it.

CN_VARIANTS=(baseline lifecycle naive)
CN_BULK_VARIANTS=(baseline lifecycle)
CN_ROWS=${BENCH_CN_ROWS:-100000}
CN_NAIVE_ROWS=${BENCH_CN_NAIVE_ROWS:-10000}
# Multiples of the 2 (bulk) and 3 (bulk_naive, pgbench) variants, so that
# each runs equally often in each slot of the rotation.  Ten bulk rounds: on
# the 2-core VM one 100,000-row INSERT varies by about +-20% from run to run
# (baseline or not), more than the counting costs.
CN_ROUNDS=${BENCH_CN_ROUNDS:-10}
CN_NAIVE_ROUNDS=${BENCH_CN_NAIVE_ROUNDS:-3}
CN_PGB_ROUNDS=${BENCH_CN_PGBENCH_ROUNDS:-6}
CN_PGB_SECONDS=${BENCH_PGBENCH_SECONDS:-5}
# The issue's target is stated for 8 concurrent writers of one account.
CN_CLIENTS=${BENCH_CN_CLIENTS:-8}
# The account every workload writes to, among CN_OTHER_ACCOUNTS others.
CN_ACCOUNT=aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa
CN_OTHER_ACCOUNTS=999
# High enough that no run reaches it (the limit is still read and checked).
CN_LIMIT=100000000
# The untimed limit check: CN_CLIENTS clients x CN_LIMIT_TRIES inserts
# against a limit of CN_LIMIT_CHECK.
CN_LIMIT_CHECK=500
CN_LIMIT_TRIES=100

cn_setup_sql() {
    cat <<'SQL'
CREATE TABLE cn_accounts (
    id              uuid    PRIMARY KEY,
    name            text    NOT NULL,
    count_lifecycle integer NOT NULL DEFAULT 0,
    count_naive     integer NOT NULL DEFAULT 0,
    max_projects    integer
);
INSERT INTO cn_accounts (id, name, max_projects) VALUES (:'acct', 'bench account', :limit);
INSERT INTO cn_accounts (id, name, max_projects)
SELECT gen_random_uuid(), 'account ' || i, :limit FROM generate_series(1, :others) AS i;

CREATE TABLE cn_baseline (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id uuid        NOT NULL REFERENCES cn_accounts,
    name       text,
    created_at timestamptz DEFAULT now(),
    deleted_at timestamptz
);
CREATE INDEX cn_baseline_account_id ON cn_baseline (account_id);
CREATE TABLE cn_lifecycle (LIKE cn_baseline INCLUDING ALL,
                           FOREIGN KEY (account_id) REFERENCES cn_accounts);
CREATE TABLE cn_naive (LIKE cn_baseline INCLUDING ALL,
                       FOREIGN KEY (account_id) REFERENCES cn_accounts);

SELECT lifecycle.track_usage('cn_projects', 'public.cn_accounts', 'count_lifecycle',
                             'public.cn_lifecycle', 'account_id', 'max_projects') \g /dev/null

CREATE FUNCTION cn_naive_count() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    UPDATE cn_accounts SET count_naive = count_naive + 1 WHERE id = NEW.account_id;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER cn_naive_count AFTER INSERT ON cn_naive
    FOR EACH ROW EXECUTE FUNCTION cn_naive_count();

-- What cn_verify() saw of lifecycle's mirror before refreshing it.
CREATE TABLE cn_mirror (
    workload text   NOT NULL,
    round    int    NOT NULL,
    count    bigint NOT NULL,
    mirrored bigint NOT NULL,
    slots    int    NOT NULL
);

-- cn_verify(variant, account, expected rows or NULL, workload, round):
-- the count of the account's rows is exact.  Raises on any mismatch.
CREATE FUNCTION cn_verify(v text, acct uuid, expected bigint, workload text, rnd int)
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    n bigint;
    others bigint;
    slots_sum bigint;
    slots int;
    col bigint;
    lim bigint;
    u record;
BEGIN
    EXECUTE format('SELECT count(*) FILTER (WHERE account_id = $1 AND deleted_at IS NULL),
                           count(*) FILTER (WHERE account_id <> $1 OR deleted_at IS NOT NULL)
                      FROM %I', 'cn_' || v) INTO n, others USING acct;
    IF others <> 0 OR (expected IS NOT NULL AND n <> expected) THEN
        RAISE EXCEPTION 'counters %: cn_% holds % live rows of the account and % others, expected %',
            workload, v, n, others, expected;
    END IF;
    CASE v
        WHEN 'baseline' THEN
            RETURN;
        WHEN 'naive' THEN
            SELECT count_naive INTO col FROM cn_accounts WHERE id = acct;
            IF col IS DISTINCT FROM n THEN
                RAISE EXCEPTION 'counters %: naive count_naive = %, the table holds %', workload, col, n;
            END IF;
        WHEN 'lifecycle' THEN
            SELECT coalesce(sum(c.n), 0), count(*) FILTER (WHERE c.n <> 0) INTO slots_sum, slots
              FROM lifecycle.usage_counts c
             WHERE c.resource_type = 'cn_projects' AND c.account_id = acct;
            IF slots_sum <> n THEN
                RAISE EXCEPTION 'counters %: lifecycle.usage_counts sums to % for the account, the table holds %',
                    workload, slots_sum, n;
            END IF;
            SELECT count_lifecycle, max_projects INTO col, lim FROM cn_accounts WHERE id = acct;
            INSERT INTO cn_mirror VALUES (workload, rnd, n, col, slots);
            PERFORM lifecycle.refresh_usage_counters(acct);
            SELECT count_lifecycle INTO col FROM cn_accounts WHERE id = acct;
            IF col IS DISTINCT FROM n THEN
                RAISE EXCEPTION 'counters %: count_lifecycle = % after refresh_usage_counters(), the count is %',
                    workload, col, n;
            END IF;
            IF n > lim THEN
                RAISE EXCEPTION 'counters %: the count % is over the limit %', workload, n, lim;
            END IF;
            SELECT * INTO u FROM lifecycle.calculate_account_usage(acct) c
             WHERE c.resource_type = 'cn_projects';
            IF u.stored_count IS DISTINCT FROM n OR u.actual_count IS DISTINCT FROM n
               OR u.usage_limit IS DISTINCT FROM lim THEN
                RAISE EXCEPTION 'counters %: calculate_account_usage() says stored %, actual %, limit %; expected %, %, %',
                    workload, u.stored_count, u.actual_count, u.usage_limit, n, n, lim;
            END IF;
    END CASE;
END
$fn$;

-- The limit check's insert: refusals are caught and logged, so that every
-- client goes on trying.
CREATE TABLE cn_refusals (sqlstate text NOT NULL, message text NOT NULL);
CREATE FUNCTION cn_try_insert(acct uuid) RETURNS boolean LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO cn_lifecycle (account_id, name) VALUES (acct, 'project');
    RETURN true;
EXCEPTION WHEN OTHERS THEN
    INSERT INTO cn_refusals VALUES (SQLSTATE, SQLERRM);
    RETURN false;
END
$fn$;
SQL
}

cn_setup() {
    bench_psql -c 'CREATE EXTENSION IF NOT EXISTS pg_lifecycle' || lc_die "counters: cannot create pg_lifecycle"
    [ "$(bench_sql_value "SELECT to_regprocedure('lifecycle.track_usage(text, regclass, name, regclass, name, name)') IS NOT NULL")" = t ] ||
        lc_die "counters: the installed pg_lifecycle has no lifecycle.track_usage(text, regclass, name, regclass, name, name)"
    lc_log "counters: $((CN_OTHER_ACCOUNTS + 1)) accounts and ${#CN_VARIANTS[@]} empty projects tables"
    cn_setup_sql | bench_psql -v acct="$CN_ACCOUNT" -v limit="$CN_LIMIT" -v others="$CN_OTHER_ACCOUNTS" ||
        lc_die "counters: setup failed"
    bench_psql -c 'VACUUM ANALYZE cn_accounts, cn_baseline, cn_lifecycle, cn_naive' ||
        lc_die "counters: VACUUM ANALYZE failed"
}

# Empty a variant's table (lifecycle recounts on TRUNCATE; the naive
# counter is set back by hand), as SQL for psql.
cn_empty_sql() {
    printf 'TRUNCATE cn_%s RESTART IDENTITY;\n' "$1"
    [ "$1" != naive ] || printf 'UPDATE cn_accounts SET count_naive = 0 WHERE count_naive <> 0;\n'
}

# Empty, then VACUUM the table, the accounts and the slots, CHECKPOINT, sync.
cn_reset() {
    cn_empty_sql "$1" | bench_psql || lc_die "counters: cannot empty cn_$1"
    bench_reset_table "cn_$1, cn_accounts, lifecycle.usage_counts"
}

# Untimed: CN_CLIENTS clients try CN_LIMIT_TRIES inserts each against a
# limit of CN_LIMIT_CHECK.  The count must stop exactly at the limit and
# every other insert be refused with SQLSTATE 23514; refusals by a deadlock
# (40P01) between the writers near the limit are counted and shown, not
# fatal (the count stays exact); any other error stops the benchmark.
cn_limit_check() {
    local tries=$((CN_CLIENTS * CN_LIMIT_TRIES)) out script=$BENCH_WORK/counters_limit.pgbench line
    local refused by_limit by_deadlock first
    ((tries > CN_LIMIT_CHECK)) || lc_die "counters: the limit check must try more than $CN_LIMIT_CHECK inserts"
    lc_log "counters: limit check, $CN_CLIENTS clients x $CN_LIMIT_TRIES inserts against a limit of $CN_LIMIT_CHECK"
    cn_reset lifecycle
    bench_psql -c "UPDATE cn_accounts SET max_projects = $CN_LIMIT_CHECK WHERE id = '$CN_ACCOUNT'" ||
        lc_die "counters: cannot lower the limit"
    printf "SELECT cn_try_insert('%s');\n" "$CN_ACCOUNT" >"$script"
    # shellcheck disable=SC2153 # BENCH_DB is set by bench/lib.sh
    out=$("$LC_PGBIN/pgbench" -n -M prepared -c "$CN_CLIENTS" -j "$CN_CLIENTS" -t "$CN_LIMIT_TRIES" \
        -f "$script" "$BENCH_DB" 2>&1) || { printf '%s\n' "$out" >&2; lc_die "counters: limit check pgbench failed"; }
    bench_psql -c "SELECT cn_verify('lifecycle', '$CN_ACCOUNT', $CN_LIMIT_CHECK, 'limit check', 0)" >/dev/null ||
        lc_die "counters: limit check: the count is not exactly the limit $CN_LIMIT_CHECK"
    line=$(bench_sql_value "SELECT count(*), count(*) FILTER (WHERE sqlstate = '23514'),
                                   count(*) FILTER (WHERE sqlstate = '40P01'),
                                   coalesce(min(sqlstate || ' ' || message) FILTER (WHERE sqlstate NOT IN ('23514', '40P01')), '-')
                              FROM cn_refusals") || lc_die "counters: cannot read the refusals"
    IFS='|' read -r refused by_limit by_deadlock first <<<"$line"
    if [ "$refused" != $((tries - CN_LIMIT_CHECK)) ] || [ $((by_limit + by_deadlock)) != "$refused" ]; then
        lc_die "counters: limit check: $refused inserts refused ($by_limit with SQLSTATE 23514, $by_deadlock by deadlock), expected $((tries - CN_LIMIT_CHECK)) (other: $first)"
    fi
    CN_LIMIT_NOTE="limit check (untimed): $CN_CLIENTS clients tried $tries single-row inserts for the account against max_projects = $CN_LIMIT_CHECK: exactly $CN_LIMIT_CHECK accepted (count exact), $by_limit refused with SQLSTATE 23514"
    if [ "$by_deadlock" != 0 ]; then
        CN_LIMIT_NOTE+=", $by_deadlock failed with deadlock detected (40P01) instead"
    fi
    bench_psql -c "UPDATE cn_accounts SET max_projects = $CN_LIMIT WHERE id = '$CN_ACCOUNT'" \
        -c 'TRUNCATE cn_refusals, cn_mirror' || lc_die "counters: cannot restore the limit"
    cn_reset lifecycle
}

# The bulk INSERTs of WORKLOAD, ROWS rows, ROUNDS rounds + warm-up (round 0,
# not kept), in one psql session.  Each run is timed inside the server with
# clock_timestamp() around the INSERT in a DO block; the statement-level and
# row-level AFTER triggers fire at the end of the statement, inside the
# timing.  cn_verify() runs after the commit.
cn_bulk_script() {
    local workload=$1 rows=$2 rounds=$3 round v
    shift 3
    for ((round = 0; round <= rounds; round++)); do
        printf '\\warn counters %s: round %d of %d%s\n' "$workload" "$round" "$rounds" \
            "$([ "$round" -eq 0 ] && echo ' (warm-up, not counted)')"
        while read -r v; do
            cn_empty_sql "$v"
            # same starting state for every run: see bench_reset_table
            printf 'VACUUM cn_%s, cn_accounts, lifecycle.usage_counts;\nCHECKPOINT;\n\\! sync\n' "$v"
            # shellcheck disable=SC2016 # $bench$ is SQL dollar quoting
            printf 'DO $bench$\nDECLARE t0 timestamptz := clock_timestamp();\nBEGIN\n'
            printf "    INSERT INTO cn_%s (account_id, name)\n" "$v"
            printf "    SELECT '%s', 'project ' || i FROM generate_series(1, %d) AS i;\n" "$CN_ACCOUNT" "$rows"
            if [ "$round" -gt 0 ]; then
                printf "    INSERT INTO bench_results VALUES ('counters', '%s', '%s', %d, 'ms',\n" "$workload" "$v" "$round"
                printf '        1000 * extract(epoch FROM clock_timestamp() - t0));\n'
            fi
            # shellcheck disable=SC2016
            printf 'END\n$bench$;\n'
            printf "SELECT cn_verify('%s', '%s', %d, '%s', %d) \\\\g /dev/null\n" "$v" "$CN_ACCOUNT" "$rows" "$workload" "$round"
        done < <(bench_rotate "$((round + 1))" "$@")
    done
}

cn_bulk() {
    local workload=$1 rows=$2 rounds=$3 script=$BENCH_WORK/counters_$1.sql
    shift 3
    cn_bulk_script "$workload" "$rows" "$rounds" "$@" >"$script"
    lc_log "counters $workload: $rows-row INSERT ... SELECT for one account, $rounds rounds + warm-up ($*)"
    bench_psql -f "$script" || lc_die "counters: $workload run failed"
}

# bench_pgbench, but printing the number of transactions too (the table must
# hold exactly one row per transaction).
cn_pgbench_run() {
    local script=$1 out tps xacts
    out=$("$LC_PGBIN/pgbench" -n -M prepared -c "$CN_CLIENTS" -j "$CN_CLIENTS" \
        -T "$CN_PGB_SECONDS" -f "$script" "$BENCH_DB" 2>&1) ||
        { printf '%s\n' "$out" >&2; lc_die "pgbench failed on $script"; }
    tps=$(printf '%s\n' "$out" | awk '/^tps = / { print $3; exit }')
    xacts=$(printf '%s\n' "$out" | awk -F': *' '/^number of transactions actually processed/ { split($2, a, "/"); print a[1]; exit }')
    if [ -z "$tps" ] || [ -z "$xacts" ]; then
        printf '%s\n' "$out" >&2
        lc_die "no tps or transaction count in pgbench output for $script"
    fi
    printf '%s %s\n' "$tps" "$xacts"
}

cn_pgbench() {
    local round v tps xacts
    for v in "${CN_VARIANTS[@]}"; do
        printf "INSERT INTO cn_%s (account_id, name) VALUES ('%s', 'project');\n" \
            "$v" "$CN_ACCOUNT" >"$BENCH_WORK/counters_$v.pgbench"
    done
    for ((round = 1; round <= CN_PGB_ROUNDS; round++)); do
        lc_log "counters pgbench: round $round of $CN_PGB_ROUNDS (${CN_PGB_SECONDS}s per variant, $CN_CLIENTS clients)"
        while read -r v; do
            cn_reset "$v"
            read -r tps xacts < <(cn_pgbench_run "$BENCH_WORK/counters_$v.pgbench")
            [ -n "$xacts" ] || lc_die "counters pgbench: $v run failed"
            bench_psql -c "SELECT cn_verify('$v', '$CN_ACCOUNT', $xacts, 'pgbench', $round)" >/dev/null ||
                lc_die "counters pgbench: wrong count after $xacts transactions of $v"
            bench_record counters pgbench "$v" "$round" tps "$tps"
        done < <(bench_rotate "$round" "${CN_VARIANTS[@]}")
    done
}

# How far the column lagged behind the count at the end of the runs, before
# refresh_usage_counters(), and how many slots the count was spread over.
cn_mirror_note() {
    bench_sql_value "SELECT format('%s: column equal to the count after %s of %s runs (largest lag %s of %s rows), count over %s slots',
                                   workload, count(*) FILTER (WHERE mirrored = count), count(*),
                                   max(count - mirrored), max(count),
                                   CASE WHEN min(slots) = max(slots) THEN min(slots)::text
                                        ELSE min(slots) || '-' || max(slots) END)
                       FROM cn_mirror WHERE round > 0 GROUP BY workload ORDER BY workload DESC" |
        paste -sd ';' | sed 's/;/; /g'
}

bench_counters() {
    cn_setup
    cn_limit_check
    cn_pgbench
    cn_bulk bulk "$CN_ROWS" "$CN_ROUNDS" "${CN_BULK_VARIANTS[@]}"
    cn_bulk bulk_naive "$CN_NAIVE_ROWS" "$CN_NAIVE_ROUNDS" "${CN_VARIANTS[@]}"

    printf '\n### counters: track_usage vs no counter and a PL/pgSQL row trigger\n'
    BENCH_MD+=$'\n'"### counters"$'\n'
    bench_report counters pgbench \
        "Single-row INSERT for one account, pgbench -M prepared -c $CN_CLIENTS -j $CN_CLIENTS -T $CN_PGB_SECONDS" \
        baseline "${CN_VARIANTS[@]}"
    bench_check "lifecycle throughput vs baseline ($CN_CLIENTS clients, one account)" \
        "$(bench_ratio counters pgbench lifecycle baseline)" '>=' 0.50
    bench_note "$CN_CLIENTS clients, one account: naive vs baseline $(bench_ratio counters pgbench naive baseline)x (the issue expects about 0.1x); lifecycle vs naive $(bench_ratio counters pgbench lifecycle naive)x"
    bench_report counters bulk "Bulk INSERT ... SELECT of $CN_ROWS rows for one account, one statement" \
        baseline "${CN_BULK_VARIANTS[@]}"
    # The issue states the bulk target as time relative to the baseline:
    # bench_ratio of the baseline relative to lifecycle is exactly that.
    bench_check "lifecycle time vs baseline (bulk insert)" \
        "$(bench_ratio counters bulk baseline lifecycle)" '<=' 1.20
    bench_report counters bulk_naive \
        "Bulk INSERT ... SELECT of $CN_NAIVE_ROWS rows for one account, with the naive row trigger" \
        baseline "${CN_VARIANTS[@]}"
    bench_note "bulk of $CN_NAIVE_ROWS rows: naive time vs baseline $(bench_ratio counters bulk_naive baseline naive)x, lifecycle time vs baseline $(bench_ratio counters bulk_naive baseline lifecycle)x; naive time vs lifecycle $(bench_ratio counters bulk_naive lifecycle naive)x (naive's time grows with the square of the rows: one account row updated per inserted row in one transaction)"
    bench_note "lifecycle mirror before refresh_usage_counters(): $(cn_mirror_note)"
    bench_note "$CN_LIMIT_NOTE"
}
