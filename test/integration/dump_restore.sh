#!/usr/bin/env bash
# pg_dump / pg_restore round trip of a database that uses pg_lifecycle:
# the extension, its configuration rows and the user's triggers come back,
# and the restored database stamps as the original did.
# Needs PGHOST/PGPORT/PGUSER of a running cluster with pg_lifecycle installed
# (as .ci/run provides).  Prints "ok - ..." / "not ok - ..." lines.
set -uo pipefail
PGBIN=${LC_PGBIN:-/usr/lib/postgresql/15/bin}
src=regress_dump_src dst=regress_dump_dst
dump=$(mktemp "${TMPDIR:-/tmp}/pg_lifecycle-dump.XXXXXX")
trap 'rm -f "$dump"' EXIT
export PGOPTIONS="-c client_min_messages=warning"

q() { "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
check() {  # check NAME EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: expected [$2], got [$3]"; fi
}

for db in $src $dst; do q postgres "DROP DATABASE IF EXISTS $db" >/dev/null; done
q postgres "CREATE DATABASE $src" >/dev/null
"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d $src >/dev/null <<'SQL' || { echo "not ok - set up source database"; exit 1; }
CREATE EXTENSION pg_lifecycle;
CREATE SCHEMA app;
CREATE TABLE app.projects (id bigint PRIMARY KEY, name text,
                           updated_at timestamptz NOT NULL DEFAULT now(), updated_by uuid);
CREATE TABLE app.notes (id int PRIMARY KEY, body text, modified timestamp);
SELECT lifecycle.enable_updated_at('app.projects', 'updated_at', 'updated_by');
CREATE TRIGGER notes_stamp BEFORE UPDATE ON app.notes
    FOR EACH ROW EXECUTE FUNCTION lifecycle.update_updated_at_column('modified');
INSERT INTO app.projects VALUES (1, 'alpha', '2001-01-01 00:00:00+00', NULL),
                                (2, 'beta',  '2002-02-02 00:00:00+00', NULL);
INSERT INTO app.notes VALUES (1, 'n', '2003-03-03');
SQL

"$PGBIN/pg_dump" -Fc -f "$dump" $src || { echo "not ok - pg_dump"; exit 1; }
echo "ok - pg_dump of a database using pg_lifecycle"
q postgres "CREATE DATABASE $dst" >/dev/null
if "$PGBIN/pg_restore" --exit-on-error -d $dst "$dump"; then
    echo "ok - pg_restore into a new database"
else
    echo "not ok - pg_restore into a new database"; exit 1
fi

check "extension restored at its version" "0.1.0" \
    "$(q $dst "SELECT extversion FROM pg_extension WHERE extname = 'pg_lifecycle'")"
check "configuration rows restored (pg_extension_config_dump)" "app.projects|updated_at|updated_by" \
    "$(q $dst "SELECT relid::text, timestamp_column, actor_column FROM lifecycle.updated_at_tables")"
check "data restored unchanged" \
    "$(q $src "SELECT string_agg(format('%s %s %s', id, name, updated_at), ',' ORDER BY id) FROM app.projects")" \
    "$(q $dst "SELECT string_agg(format('%s %s %s', id, name, updated_at), ',' ORDER BY id) FROM app.projects")"
check "triggers restored" "lifecycle_updated_at,notes_stamp" \
    "$(q $dst "SELECT string_agg(tgname, ',' ORDER BY tgname) FROM pg_trigger WHERE NOT tgisinternal")"
check "restored trigger stamps time and actor" "t|99999999-9999-4999-8999-999999999999" \
    "$(q $dst "SET request.jwt.claims = '{\"sub\": \"99999999-9999-4999-8999-999999999999\"}';
               UPDATE app.projects SET name = 'alpha 2' WHERE id = 1 RETURNING updated_at = now(), updated_by")"
check "restored drop-in trigger stamps" "t" \
    "$(q $dst "UPDATE app.notes SET body = 'm' RETURNING modified = now()::timestamp")"
check "no-op update keeps the restored stamp" "2002-02-02 00:00:00+00" \
    "$(q $dst "SET timezone = 'UTC'; UPDATE app.projects SET name = name WHERE id = 2 RETURNING updated_at")"
q $dst "SELECT lifecycle.disable_updated_at('app.projects')" >/dev/null
check "disable_updated_at works after restore" "0|1" \
    "$(q $dst "SELECT count(*), (SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal) FROM lifecycle.updated_at_tables")"

for db in $src $dst; do q postgres "DROP DATABASE $db" >/dev/null; done
