#!/usr/bin/env bash
# A crash in the middle of an archive run: the server is stopped with
# pg_ctl -m immediate (no shutdown checkpoint, no cleanup) while CALL
# lifecycle.run_retention() is moving rows in small batches.  After the
# restart every row is in exactly one of the table and its archive, the
# interrupted run is recorded as failed, and the next run finishes the
# job.  Starts a throwaway cluster of its own.  Prints "ok - ..." /
# "not ok - ..." lines.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
[ -n "${LC_PGBIN:-}" ] || LC_PGBIN=/usr/lib/postgresql/15/bin
rows=200000

dir=$(mktemp -d "${TMPDIR:-/tmp}/pg_lifecycle-crash.XXXXXX")
chmod 755 "$dir"
trap 'lc_stop "$dir/cluster"; rm -rf "$dir"' EXIT
port=$(lc_free_port 57932)
(lc_start "$dir/cluster" "$port" "fsync = on" >/dev/null) || { echo "not ok - start a cluster"; exit 1; }
export PGHOST=$dir/cluster PGPORT=$port PGUSER=postgres
q() { "$LC_PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d postgres -c "$1"; }
check() {  # check NAME EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: expected [$2], got [$3]"; fi
}

"$LC_PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<SQL || { echo "not ok - set up"; exit 1; }
CREATE EXTENSION pg_lifecycle;
CREATE TABLE events (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, body text);
CREATE INDEX ON events (created_at);
INSERT INTO events SELECT g, now() - interval '1 year' + g * interval '1 second', repeat('x', 100)
  FROM generate_series(1, $rows) g;
SELECT lifecycle.set_retention('events', '30 days', action => 'archive', batch_size => 500);
SQL
echo "ok - $rows expired rows and an archive policy (batches of 500)"

# the run, in the background; stop the server hard once some batches are in
"$LC_PGBIN/psql" -X -q -d postgres -c "CALL lifecycle.run_retention()" >"$dir/run.log" 2>&1 &
runner=$!
archived=0
for _ in $(seq 1 200); do
    archived=$(q "SELECT count(*) FROM archive.events" 2>/dev/null || echo 0)
    [ "${archived:-0}" -ge 5000 ] && break
    sleep 0.1
done
lc_as_server_at_root "$LC_PGBIN/pg_ctl" -D "$dir/cluster/data" -m immediate -w stop >/dev/null 2>&1
wait $runner
check "the run was in the middle when the server stopped" "yes" \
    "$([ "${archived:-0}" -ge 5000 ] && [ "${archived:-0}" -lt $rows ] && echo yes || echo "no ($archived archived)")"

lc_as_server_at_root "$LC_PGBIN/pg_ctl" -D "$dir/cluster/data" -l "$dir/cluster/server.log" -w -t 60 start >/dev/null ||
    { echo "not ok - restart after the crash"; exit 1; }
echo "ok - restarted after pg_ctl -m immediate (crash recovery)"
check "every row is in exactly one place after the crash" "$rows|0" \
    "$(q "SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM archive.events)")|$(q "SELECT count(*) FROM events e JOIN archive.events a USING (id)")"
check "the archive holds only whole batches" "0" "$(q "SELECT count(*) % 500 FROM archive.events")"

q "CALL lifecycle.run_retention()" >/dev/null 2>&1 || echo "not ok - the run after the crash"
check "the next run finishes the job" "0|$rows" \
    "$(q "SELECT count(*) FROM events")|$(q "SELECT count(*) FROM archive.events")"
check "the interrupted run is recorded as failed, the next as succeeded" "failed:the run was interrupted|succeeded:" \
    "$(q "SELECT string_agg(status || ':' || coalesce(error, ''), '|' ORDER BY run_id) FROM lifecycle.retention_runs")"
check "no row twice in the archive" "0" "$(q "SELECT count(*) FROM (SELECT id FROM archive.events GROUP BY id HAVING count(*) > 1) d")"
