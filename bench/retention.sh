# shellcheck shell=bash
# Benchmark of retention (lifecycle.set_retention / CALL run_retention()),
# sourced by bench/run.sh, which then calls bench_retention.
#
# A telemetry-shaped table (id bigint PRIMARY KEY, user_id uuid,
# occurred_at timestamptz, kind text, payload jsonb; an index on
# occurred_at) of RT_ROWS (1,000,000) rows, RT_EXPIRED (775,000) of them
# older than the 30 days kept.  Every run starts from the same rows, copied
# from rt_source, VACUUMed, then CHECKPOINT and sync; timed inside the
# server.  Workloads:
#   delete     baseline   one DELETE ... WHERE occurred_at < now() - '30 days'
#              lifecycle  CALL lifecycle.run_retention() of a delete policy,
#                         default batch size (5000), a commit per batch
#   archive    baseline   one hand-written WITH d AS (DELETE ... RETURNING *)
#                         INSERT INTO <archive> SELECT d.*, now(), 0 FROM d,
#                         into a table like the extension's archive (the
#                         same columns and indexes)
#              lifecycle  CALL lifecycle.run_retention() of an archive policy
#   batch      the longest of RT_BATCHES single batches of the delete policy
#              at the default size (CALL run_retention(max_runtime => '1
#              microsecond') does exactly one), timed one by one
#   pgbench    single-row INSERTs into the same table, RT_PGB_SECONDS, while
#              nothing else runs, beside a busy shell loop (not the
#              database: on a 2-core VM a busy neighbour core by itself
#              speeds up single-client pgbench), and while a run of the
#              archive policy works through the expired rows (as is, and
#              with lifecycle.retention_pause = 6), and while the
#              hand-written archive statement moves the same rows
#   partition  dropping an expired partition of RT_ROWS rows from a table
#              range-partitioned by month on occurred_at:
#              baseline   DROP TABLE of the partition, by hand
#              partman    pg_partman 4.7 (Debian's) run_maintenance() with
#                         retention '30 days', retention_keep_table off
#              lifecycle  CALL run_retention() of a delete policy (drops the
#                         partition whole, counting its rows)
# After every run, outside the timing, the rows left (and archived) are
# checked; a wrong count stops the benchmark.

RT_ROWS=${BENCH_RT_ROWS:-1000000}
RT_EXPIRED=${BENCH_RT_EXPIRED:-775000}
RT_ROUNDS=${BENCH_RT_ROUNDS:-3}
RT_BATCHES=${BENCH_RT_BATCHES:-10}
RT_PGB_SECONDS=${BENCH_RT_PGBENCH_SECONDS:-2}
RT_PGB_ROUNDS=${BENCH_RT_PGBENCH_ROUNDS:-3}

rt_setup() {
    bench_psql -v rows="$RT_ROWS" -v expired="$RT_EXPIRED" <<'SQL' || lc_die "retention: setup failed"
CREATE EXTENSION IF NOT EXISTS pg_lifecycle;
CREATE SCHEMA IF NOT EXISTS partman;
CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman;
-- the rows every run starts from: the expired ones a year and more back
CREATE TABLE rt_source AS
SELECT g::bigint AS id, md5((g % 5000)::text)::uuid AS user_id,
       CASE WHEN g <= :expired THEN now() - interval '400 days' + g * interval '1 second'
            ELSE now() - interval '20 days' + (g - :expired) * interval '1 second' END AS occurred_at,
       (ARRAY['view', 'click', 'error', 'login'])[1 + g % 4] AS kind,
       jsonb_build_object('path', '/p/' || (g % 997), 'ms', g % 1000) AS payload
  FROM generate_series(1, :rows) g;
CREATE FUNCTION rt_make(t text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE TABLE %I (id bigint PRIMARY KEY, user_id uuid, occurred_at timestamptz NOT NULL,
                                     kind text, payload jsonb)', t);
    EXECUTE format('CREATE INDEX ON %I (occurred_at)', t);
END $$;
SELECT rt_make('rt_delete_baseline'), rt_make('rt_delete_lifecycle'),
       rt_make('rt_archive_baseline'), rt_make('rt_archive_lifecycle');
CREATE TABLE rt_archive_baseline_arch (LIKE rt_archive_baseline);
ALTER TABLE rt_archive_baseline_arch ADD COLUMN archived_at timestamptz NOT NULL DEFAULT now(),
                                     ADD COLUMN retention_run_id bigint;
CREATE INDEX ON rt_archive_baseline_arch (id);
CREATE INDEX ON rt_archive_baseline_arch (archived_at);
SELECT lifecycle.set_retention('rt_delete_lifecycle', '30 days', timestamp_column => 'occurred_at');
SELECT lifecycle.set_retention('rt_archive_lifecycle', '30 days', timestamp_column => 'occurred_at',
                               action => 'archive');
CREATE SEQUENCE rt_pgb_id START 100000000;
SQL
}

# Refill table t from rt_source (and empty its archive), outside the timing.
rt_reset() {
    local t=$1
    bench_psql -q -v t="$t" <<'SQL' || lc_die "retention: reset of $t failed"
TRUNCATE :"t";
INSERT INTO :"t" SELECT * FROM rt_source;
SQL
    case $t in
        rt_archive_baseline) bench_psql -q -c "TRUNCATE rt_archive_baseline_arch" ;;
        rt_archive_lifecycle) bench_psql -q -c "TRUNCATE archive.rt_archive_lifecycle" 2>/dev/null || true ;;
    esac
    bench_psql -q -c "DELETE FROM lifecycle.retention_runs" -c "VACUUM ANALYZE $t" -c "CHECKPOINT" >/dev/null ||
        lc_die "retention: vacuum of $t failed"
    sync
}

# The timed statement of one variant, in a DO block that records its time.
rt_run_sql() {
    local workload=$1 v=$2 round=$3 body
    case $workload/$v in
        delete/baseline) body="DELETE FROM rt_delete_baseline WHERE occurred_at < now() - interval '30 days';" ;;
        delete/lifecycle) body="CALL lifecycle.run_retention(only_table => 'rt_delete_lifecycle');" ;;
        archive/baseline) body="WITH d AS (DELETE FROM rt_archive_baseline WHERE occurred_at < now() - interval '30 days' RETURNING *)
            INSERT INTO rt_archive_baseline_arch SELECT d.*, now(), 0 FROM d;" ;;
        archive/lifecycle) body="CALL lifecycle.run_retention(only_table => 'rt_archive_lifecycle');" ;;
    esac
    bench_psql -q <<SQL || lc_die "retention: $workload/$v failed"
DO \$bench\$
DECLARE
    t0 timestamptz := clock_timestamp();
BEGIN
    $body
    INSERT INTO bench_results VALUES ('retention', '$workload', '$v', $round, 'ms',
                                      1000 * extract(epoch FROM clock_timestamp() - t0));
END
\$bench\$;
SQL
}

# Outside the timing: the rows left and archived are the expected ones.
rt_verify() {
    local t=$1 left archived=0
    left=$(bench_sql_value "SELECT count(*) FROM $t")
    case $t in
        rt_archive_baseline) archived=$(bench_sql_value "SELECT count(*) FROM rt_archive_baseline_arch") ;;
        rt_archive_lifecycle) archived=$(bench_sql_value "SELECT count(*) FROM archive.rt_archive_lifecycle") ;;
    esac
    [ "$left" -eq $((RT_ROWS - RT_EXPIRED)) ] || lc_die "retention: $t kept $left rows, expected $((RT_ROWS - RT_EXPIRED))"
    case $t in
        *archive*) [ "$archived" -eq "$RT_EXPIRED" ] || lc_die "retention: $t archived $archived rows, expected $RT_EXPIRED" ;;
    esac
}

rt_delete_archive() {
    local round workload v
    for workload in delete archive; do
        for ((round = 1; round <= RT_ROUNDS; round++)); do
            while read -r v; do
                lc_log "retention $workload: round $round of $RT_ROUNDS, $v"
                rt_reset "rt_${workload}_$v"
                rt_run_sql "$workload" "$v" "$round"
                rt_verify "rt_${workload}_$v"
            done < <(bench_rotate "$round" baseline lifecycle)
        done
    done
}

# The longest single batch at the default size.
rt_batches() {
    local i ms max=0
    rt_reset rt_delete_lifecycle
    for ((i = 1; i <= RT_BATCHES; i++)); do
        ms=$(bench_psql -At <<'SQL'
DO $$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
    CALL lifecycle.run_retention(max_runtime => '1 microsecond', only_table => 'rt_delete_lifecycle');
    PERFORM set_config('bench.ms', (1000 * extract(epoch FROM clock_timestamp() - t0))::text, false);
END $$;
SELECT round(current_setting('bench.ms')::numeric, 1);
SQL
        ) || lc_die "retention: single batch failed"
        bench_record retention batch lifecycle "$i" ms "$ms"
        max=$(awk -v a="$max" -v b="$ms" 'BEGIN { print (b > a) ? b : a }')
    done
    RT_MAX_BATCH=$max
}

# pgbench inserts into the archive policy's table, without and during a run.
rt_pgbench() {
    local round script=$BENCH_WORK/rt_insert.sql script_hw=$BENCH_WORK/rt_insert_hw.sql tps runner
    cat >"$script" <<'SQL'
INSERT INTO rt_archive_lifecycle VALUES (nextval('rt_pgb_id'), '00000000-0000-4000-8000-000000000001', now(), 'view', '{}');
SQL
    cat >"$script_hw" <<'SQL'
INSERT INTO rt_archive_baseline VALUES (nextval('rt_pgb_id'), '00000000-0000-4000-8000-000000000001', now(), 'view', '{}');
SQL
    for ((round = 1; round <= RT_PGB_ROUNDS; round++)); do
        lc_log "retention pgbench: round $round of $RT_PGB_ROUNDS (${RT_PGB_SECONDS}s without, then during a run)"
        rt_reset rt_archive_lifecycle
        tps=$(bench_pgbench "$script" "$RT_PGB_SECONDS" 1)
        bench_record retention pgbench alone "$round" tps "$tps"
        # the same beside a busy loop that is not the database: on a small VM
        # a busy neighbour core alone changes single-client TPS a lot
        rt_reset rt_archive_lifecycle
        (timeout $((RT_PGB_SECONDS + 1)) sh -c 'while :; do :; done') &
        runner=$!
        sleep 0.2
        tps=$(bench_pgbench "$script" "$RT_PGB_SECONDS" 1)
        wait "$runner" 2>/dev/null || true
        bench_record retention pgbench beside_busy "$round" tps "$tps"
        rt_reset rt_archive_lifecycle
        bench_psql -q -c "CALL lifecycle.run_retention(only_table => 'rt_archive_lifecycle')" &
        runner=$!
        sleep 0.2
        tps=$(bench_pgbench "$script" "$RT_PGB_SECONDS" 1)
        if ! kill -0 "$runner" 2>/dev/null; then
            bench_note "pgbench round $round: the run ended before pgbench did (the during-run TPS includes time after it)"
        fi
        wait "$runner" || lc_die "retention: the run beside pgbench failed"
        bench_record retention pgbench during_run "$round" tps "$tps"
        # the same run pausing 6x each batch's time after it (lifecycle.retention_pause)
        rt_reset rt_archive_lifecycle
        PGOPTIONS="-c lifecycle.retention_pause=6" bench_psql -q \
            -c "CALL lifecycle.run_retention(only_table => 'rt_archive_lifecycle')" &
        runner=$!
        sleep 0.2
        tps=$(bench_pgbench "$script" "$RT_PGB_SECONDS" 1)
        wait "$runner" || lc_die "retention: the paused run beside pgbench failed"
        bench_record retention pgbench during_paused_run "$round" tps "$tps"
        # the same rows moved by the one hand-written statement instead
        rt_reset rt_archive_baseline
        bench_psql -q -c "WITH d AS (DELETE FROM rt_archive_baseline WHERE occurred_at < now() - interval '30 days' RETURNING *)
                          INSERT INTO rt_archive_baseline_arch SELECT d.*, now(), 0 FROM d" &
        runner=$!
        sleep 0.2
        tps=$(bench_pgbench "$script_hw" "$RT_PGB_SECONDS" 1)
        wait "$runner" || lc_die "retention: the hand-written statement beside pgbench failed"
        bench_record retention pgbench during_handwritten "$round" tps "$tps"
    done
}

# An expired 1,000,000-row partition, three ways of getting rid of it.
rt_partition_setup() {
    local v=$1
    bench_psql -q -v v="$v" -v rows="$RT_ROWS" <<'SQL' || lc_die "retention: partition setup ($v) failed"
SET client_min_messages = warning;
DROP TABLE IF EXISTS rt_part_baseline, rt_part_lifecycle, rt_part_partman, partman.template_public_rt_part_partman CASCADE;
DELETE FROM partman.part_config WHERE parent_table = 'public.rt_part_partman';
DELETE FROM lifecycle.retention_runs;
SELECT format('CREATE TABLE %I (id bigint, occurred_at timestamptz NOT NULL, payload jsonb) PARTITION BY RANGE (occurred_at)',
              'rt_part_' || :'v') \gexec
SELECT CASE :'v' WHEN 'partman' THEN
    format('SELECT partman.create_parent(%L, %L, %L, %L, p_premake => 1, p_start_partition => %L)',
           'public.rt_part_partman', 'occurred_at', 'native', 'monthly',
           date_trunc('month', now() - interval '400 days')::text)
  ELSE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)', 'rt_part_' || :'v' || '_old',
              'rt_part_' || :'v', date_trunc('month', now() - interval '400 days'),
              date_trunc('month', now() - interval '400 days') + interval '1 month') END \gexec
SELECT CASE WHEN :'v' <> 'partman' THEN
    format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (MAXVALUE)', 'rt_part_' || :'v' || '_now',
           'rt_part_' || :'v', date_trunc('month', now() - interval '400 days') + interval '1 month') END \gexec
SELECT format('INSERT INTO %I SELECT g, date_trunc(''month'', now() - interval ''400 days'') + (g %% 86400) * interval ''1 second'', ''{}'' FROM generate_series(1, %s) g',
              'rt_part_' || :'v', :rows) \gexec
SELECT format('INSERT INTO %I VALUES (0, now(), ''{}'')', 'rt_part_' || :'v') \gexec
UPDATE partman.part_config SET retention = '30 days', retention_keep_table = false
 WHERE parent_table = 'public.rt_part_partman';
SELECT CASE :'v' WHEN 'lifecycle' THEN
    'SELECT lifecycle.set_retention(''rt_part_lifecycle'', ''30 days'', timestamp_column => ''occurred_at'')' END \gexec
VACUUM ANALYZE;
CHECKPOINT;
SQL
    sync
}

rt_partitions() {
    local round v body left
    for ((round = 1; round <= RT_ROUNDS; round++)); do
        while read -r v; do
            lc_log "retention partition: round $round of $RT_ROUNDS, $v"
            rt_partition_setup "$v"
            case $v in
                baseline) body="DROP TABLE rt_part_baseline_old;" ;;
                partman) body="PERFORM partman.run_maintenance('public.rt_part_partman');" ;;
                lifecycle) body="CALL lifecycle.run_retention(only_table => 'rt_part_lifecycle');" ;;
            esac
            bench_psql -q <<SQL || lc_die "retention: partition/$v failed"
DO \$bench\$
DECLARE
    t0 timestamptz := clock_timestamp();
BEGIN
    $body
    INSERT INTO bench_results VALUES ('retention', 'partition', '$v', $round, 'ms',
                                      1000 * extract(epoch FROM clock_timestamp() - t0));
END
\$bench\$;
SQL
            left=$(bench_sql_value "SELECT count(*) FROM rt_part_$v")
            [ "$left" -eq 1 ] || lc_die "retention: partition/$v left $left rows, expected 1"
            if [ "$v" = lifecycle ]; then
                RT_PART_ROWS=$(bench_sql_value "SELECT rows_deleted FROM lifecycle.retention_runs ORDER BY run_id DESC LIMIT 1")
            fi
        done < <(bench_rotate "$round" baseline partman lifecycle)
    done
}

bench_retention() {
    lc_need_packages postgresql-15-partman
    rt_setup
    rt_delete_archive
    rt_batches
    rt_pgbench
    rt_partitions

    printf '\n### retention: run_retention vs hand-written SQL and pg_partman\n'
    BENCH_MD+=$'\n'"### retention"$'\n'
    bench_report retention delete \
        "delete: $RT_EXPIRED of $RT_ROWS rows expired, one DELETE vs run_retention (batches of 5000, a commit each)" \
        baseline baseline lifecycle
    bench_check "lifecycle time vs one plain DELETE" \
        "$(bench_ratio retention delete baseline lifecycle)" '<=' 1.30
    bench_report retention archive \
        "archive: the same rows moved into an archive table, one WITH d AS (DELETE ... RETURNING *) INSERT vs run_retention" \
        baseline baseline lifecycle
    bench_check "lifecycle time vs the hand-written archive statement" \
        "$(bench_ratio retention archive baseline lifecycle)" '<=' 1.30
    bench_report retention batch "one batch at the default size (5000 rows), $RT_BATCHES batches" lifecycle lifecycle
    bench_check "longest batch in seconds (not a ratio)" \
        "$(awk -v m="$RT_MAX_BATCH" 'BEGIN { printf "%.3f", m / 1000 }')" '<=' 1.0
    bench_report retention pgbench \
        "single-row INSERTs into the table, pgbench -c 1 -T $RT_PGB_SECONDS, alone, beside a busy non-database loop, and during an archive run" \
        alone alone beside_busy during_run during_paused_run during_handwritten
    bench_check "insert throughput during a run vs without" \
        "$(bench_ratio retention pgbench during_run alone)" '>=' 0.80
    bench_check "insert throughput during a run with lifecycle.retention_pause = 6 vs without" \
        "$(bench_ratio retention pgbench during_paused_run alone)" '>=' 0.80
    bench_note "insert throughput during a run vs during the hand-written archive statement moving the same rows: $(bench_ratio retention pgbench during_run during_handwritten)x"
    bench_note "insert throughput during a run vs beside a busy loop that is not the database (the fair comparison on this 2-core VM): $(bench_ratio retention pgbench during_run beside_busy)x"
    bench_report retention partition \
        "dropping an expired partition of $RT_ROWS rows (by hand, pg_partman run_maintenance, run_retention)" \
        baseline baseline partman lifecycle
    bench_check "run_retention dropping the partition, in seconds (not a ratio)" \
        "$(bench_sql_value "SELECT round((percentile_cont(0.5) WITHIN GROUP (ORDER BY value) / 1000)::numeric, 3) FROM bench_results WHERE feature = 'retention' AND workload = 'partition' AND variant = 'lifecycle'")" \
        '<=' 0.10
    bench_note "run_retention counted the dropped partition's rows into retention_runs: $RT_PART_ROWS; pg_partman vs lifecycle time: $(bench_ratio retention partition lifecycle partman)x"
}
