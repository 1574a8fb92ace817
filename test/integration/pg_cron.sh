#!/usr/bin/env bash
# Retention run by a real pg_cron (1.4.2 from Debian on PostgreSQL 15, 1.6
# from ../shared/postgres on 18): a cluster of its own preloads pg_cron;
# schedule_retention('* * * * *') makes the job "pg_lifecycle retention",
# which within 90 s succeeds in cron.job_run_details, removes the expired
# rows (archived, here), records its run, removes its own run details older
# than 14 days, and brings usage counter columns back to the counts.  Then
# unschedule_retention() removes it.  Prints "ok - ..." / "not ok - ..."
# lines.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
[ -n "${LC_PGBIN:-}" ] || LC_PGBIN=/usr/lib/postgresql/15/bin

if [ ! -f "$("$LC_PGBIN/pg_config" --sharedir)/extension/pg_cron.control" ]; then
    echo "ok - pg_cron: skipped (pg_cron is not installed for $("$LC_PGBIN/pg_config" --version)) # SKIP"
    exit 0
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/pg_lifecycle-cron.XXXXXX")
chmod 755 "$dir"
trap 'lc_stop "$dir/cluster"; rm -rf "$dir"' EXIT
(lc_start "$dir/cluster" "$(lc_free_port 58432)" "shared_preload_libraries = 'pg_cron'" \
    "cron.database_name = 'postgres'" "cron.use_background_workers = on" \
    "max_worker_processes = 16" >/dev/null) ||
    { echo "not ok - start a cluster that preloads pg_cron"; exit 1; }
export PGHOST=$dir/cluster PGPORT=$(lc_running_port "$dir/cluster") PGUSER=postgres
q() { "$LC_PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d postgres -c "$1"; }
check() {  # check NAME EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: expected [$2], got [$3]"; fi
}
echo "ok - cluster preloading pg_cron $(q "SELECT default_version FROM pg_available_extensions WHERE name = 'pg_cron'") started"

"$LC_PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<'SQL' || { echo "not ok - set up"; exit 1; }
SET client_min_messages = warning;
CREATE EXTENSION pg_cron;
CREATE EXTENSION pg_lifecycle;
CREATE TABLE accounts (id uuid PRIMARY KEY, n_events integer NOT NULL DEFAULT 0);
CREATE TABLE telemetry_events (id bigint PRIMARY KEY, account_id uuid REFERENCES accounts,
                               occurred_at timestamptz NOT NULL, payload jsonb);
CREATE INDEX ON telemetry_events (occurred_at);
INSERT INTO accounts VALUES ('a0000000-0000-4000-8000-000000000001');
INSERT INTO telemetry_events
SELECT g, 'a0000000-0000-4000-8000-000000000001', now() - g * interval '1 day' + interval '1 hour', '{}'
  FROM generate_series(1, 100) g;
SELECT lifecycle.set_retention('telemetry_events', '30 days', timestamp_column => 'occurred_at',
                               action => 'archive', batch_size => 20);
SELECT lifecycle.track_usage('events', 'accounts', 'n_events', 'telemetry_events', 'account_id');
SQL
echo "ok - tables, a retention policy and a usage counter set up"

# a burst of concurrent writers (counter columns may trail the counts after one)
for w in 1 2 3 4; do
    (for i in $(seq 1 25); do
        q "INSERT INTO telemetry_events VALUES ($w * 1000 + $i, 'a0000000-0000-4000-8000-000000000001', now(), '{}')"
     done >/dev/null) &
done
wait
jobid=$(q "SELECT lifecycle.schedule_retention('* * * * *')")
check "schedule_retention returns the job id" "1" "$(q "SELECT count(*) FROM cron.job WHERE jobid = ${jobid:-0}")"
check "the job is named, runs CALL lifecycle.run_retention(), in this database" \
    "pg_lifecycle retention|CALL lifecycle.run_retention()|* * * * *|postgres" \
    "$(q "SELECT jobname || '|' || command || '|' || schedule || '|' || database FROM cron.job WHERE jobid = ${jobid:-0}")"
check "scheduling again changes the job, not adds one" "1|*/1 * * * *" \
    "$(q "SELECT lifecycle.schedule_retention('*/1 * * * *')" >/dev/null; q "SELECT count(*) || '|' || min(schedule) FROM cron.job WHERE jobname = 'pg_lifecycle retention'")"
check "next_due is the next minute" "t" \
    "$(q "SELECT next_due > now() AND next_due <= now() + interval '61 seconds' FROM lifecycle.retention_overview")"
# an old run detail of the job, which the run removes, and another job's, which it keeps
q "INSERT INTO cron.job_run_details (jobid, runid, database, username, command, status, start_time, end_time)
   VALUES (${jobid:-0}, 900001, 'postgres', 'postgres', 'CALL lifecycle.run_retention()', 'succeeded', now() - interval '20 days', now() - interval '20 days'),
          (${jobid:-0} + 1000, 900002, 'postgres', 'postgres', 'SELECT 1', 'succeeded', now() - interval '20 days', now() - interval '20 days')" >/dev/null

status=
for _ in $(seq 1 90); do
    status=$(q "SELECT status FROM cron.job_run_details WHERE jobid = ${jobid:-0} AND runid < 900000 AND status IN ('succeeded', 'failed') ORDER BY runid LIMIT 1")
    [ -n "$status" ] && break
    sleep 1
done
check "the pg_cron job ran and succeeded within 90 s" "succeeded" "$status"
[ "$status" = failed ] && q "SELECT return_message FROM cron.job_run_details WHERE jobid = ${jobid:-0}" | sed 's/^/#   /'
check "the expired rows are gone, into the archive" "130|70" \
    "$(q "SELECT count(*) FROM telemetry_events")|$(q "SELECT count(*) FROM archive.telemetry_events")"
check "the run is recorded" "succeeded|70|4" \
    "$(q "SELECT status || '|' || rows_archived || '|' || batches FROM lifecycle.retention_runs ORDER BY run_id LIMIT 1")"
check "the job removed its own run details older than 14 days, not another job's" "0|1" \
    "$(q "SELECT count(*) FROM cron.job_run_details WHERE runid = 900001")|$(q "SELECT count(*) FROM cron.job_run_details WHERE runid = 900002")"
check "the usage counter column equals the count after the run" "130|130" \
    "$(q "SELECT n_events FROM accounts")|$(q "SELECT count(*) FROM telemetry_events")"

refresh=$(q "SELECT lifecycle.schedule_usage_refresh()")
check "schedule_usage_refresh makes its own every-minute job" "pg_lifecycle usage refresh|SELECT lifecycle.refresh_usage_counters()|* * * * *" \
    "$(q "SELECT jobname || '|' || command || '|' || schedule FROM cron.job WHERE jobid = ${refresh:-0}")"
check "a schedule that is not 5 fields is refused" "invalid cron schedule \"30 seconds\"" \
    "$(q "SELECT lifecycle.schedule_retention('30 seconds')" 2>&1 | sed -n 's/^ERROR:  //p')"
check "unschedule_retention and unschedule_usage_refresh remove the jobs" "t|t|0|f" \
    "$(q "SELECT lifecycle.unschedule_retention()")|$(q "SELECT lifecycle.unschedule_usage_refresh()")|$(q "SELECT count(*) FROM cron.job WHERE jobname LIKE 'pg_lifecycle%'")|$(q "SELECT lifecycle.unschedule_retention()")"
check "next_due is empty without the job" "" "$(q "SELECT next_due FROM lifecycle.retention_overview")"
