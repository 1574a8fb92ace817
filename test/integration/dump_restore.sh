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
CREATE TABLE app.accounts (id uuid PRIMARY KEY, name text);
CREATE TABLE app.projects (id bigint PRIMARY KEY, name text,
                           account_id uuid REFERENCES app.accounts,
                           updated_at timestamptz NOT NULL DEFAULT now(), updated_by uuid);
CREATE TABLE app.tasks (id int PRIMARY KEY, project_id bigint REFERENCES app.projects, title text);
CREATE TABLE app.notes (id int PRIMARY KEY, body text, modified timestamp);
SELECT lifecycle.enable_updated_at('app.projects', 'updated_at', 'updated_by');
CREATE TRIGGER notes_stamp BEFORE UPDATE ON app.notes
    FOR EACH ROW EXECUTE FUNCTION lifecycle.update_updated_at_column('modified');
INSERT INTO app.accounts VALUES ('acc00000-0000-4000-8000-000000000001', 'acme');
INSERT INTO app.projects VALUES (1, 'alpha', 'acc00000-0000-4000-8000-000000000001', '2001-01-01 00:00:00+00', NULL),
                                (2, 'beta',  'acc00000-0000-4000-8000-000000000001', '2002-02-02 00:00:00+00', NULL);
INSERT INTO app.notes VALUES (1, 'n', '2003-03-03');
-- soft delete: a tenant table, a cascade done before the dump, one earlier
-- delete that the restore after the dump must leave alone
SELECT lifecycle.enable_soft_delete('app.accounts');
SELECT lifecycle.enable_soft_delete('app.projects');
SELECT lifecycle.enable_soft_delete('app.tasks', intercept_delete => true);
SELECT lifecycle.set_tenant_table('app.accounts');
SELECT lifecycle.enable_audit('app.projects', exclude_columns => '{updated_by}');
INSERT INTO app.tasks SELECT g, 1 + g % 2, 'task ' || g FROM generate_series(1, 10) g;
DELETE FROM app.tasks WHERE id = 1;
UPDATE app.projects SET name = 'alpha v2' WHERE id = 1;
-- usage counters: a tracked count with a limit and a metered one
ALTER TABLE app.accounts ADD COLUMN task_count integer NOT NULL DEFAULT 0,
                         ADD COLUMN max_tasks integer, ADD COLUMN ai integer NOT NULL DEFAULT 0;
UPDATE app.accounts SET max_tasks = 12;
ALTER TABLE app.tasks ADD COLUMN account_id uuid REFERENCES app.accounts;
UPDATE app.tasks SET account_id = 'acc00000-0000-4000-8000-000000000001';
SELECT lifecycle.track_usage('tasks', 'app.accounts', 'task_count', 'app.tasks', 'account_id', 'max_tasks');
SELECT lifecycle.track_usage('ai', 'app.accounts', 'ai', NULL, NULL);
SELECT lifecycle.increment_usage_counter('acc00000-0000-4000-8000-000000000001', 'ai', 7);
SELECT lifecycle.soft_delete_account('acc00000-0000-4000-8000-000000000001');
-- retention: an archive policy with a hold, rows already archived, a run recorded
CREATE TABLE app.events (id int PRIMARY KEY, account_id uuid, created_at timestamptz NOT NULL);
INSERT INTO app.events SELECT g, CASE WHEN g % 2 = 0 THEN 'acc00000-0000-4000-8000-000000000001'::uuid END,
                              now() - g * interval '1 day' - interval '1 hour' FROM generate_series(1, 20) g;
SELECT lifecycle.set_retention('app.events', '5 days', action => 'archive', owner_column => 'account_id');
SELECT lifecycle.hold_retention('app.events', 'acc00000-0000-4000-8000-000000000001', 'kept for the restore test');
SELECT lifecycle.cleanup_retention_data();
-- redaction: an own rule, a default overridden, a safe key, a scrubbed table
SELECT lifecycle.set_redaction_rule('key', 'nickname', 'mask');
SELECT lifecycle.disable_redaction_rule('key', 'token');
SELECT lifecycle.add_safe_key('token_count');
CREATE TABLE app.telemetry (id int PRIMARY KEY, metadata jsonb);
SELECT lifecycle.enable_redaction('app.telemetry', '{metadata}');
INSERT INTO app.telemetry VALUES (1, '{"password": "x", "nickname": "zed"}');
SQL

"$PGBIN/pg_dump" -Fc -f "$dump" $src || { echo "not ok - pg_dump"; exit 1; }
echo "ok - pg_dump of a database using pg_lifecycle"
q postgres "CREATE DATABASE $dst" >/dev/null
if "$PGBIN/pg_restore" --exit-on-error -d $dst "$dump"; then
    echo "ok - pg_restore into a new database"
else
    echo "not ok - pg_restore into a new database"; exit 1
fi

check "extension restored at its version" \
    "$(q postgres "SELECT default_version FROM pg_available_extensions WHERE name = 'pg_lifecycle'")" \
    "$(q $dst "SELECT extversion FROM pg_extension WHERE extname = 'pg_lifecycle'")"
check "configuration rows restored (pg_extension_config_dump)" "app.projects|updated_at|updated_by" \
    "$(q $dst "SELECT relid::text, timestamp_column, actor_column FROM lifecycle.updated_at_tables")"
check "soft delete configuration restored" "app.accounts false,app.projects false,app.tasks true|app.accounts" \
    "$(q $dst "SELECT string_agg(relid::text || ' ' || intercept_delete, ',' ORDER BY relid::text) FROM lifecycle.soft_delete_tables")|$(q $dst "SELECT tenant_table::text FROM lifecycle.soft_delete_tenant")"
check "soft-deleted rows restored as deleted" "13" \
    "$(q $dst "SELECT (SELECT count(*) FROM app.accounts WHERE deleted_at IS NOT NULL) + (SELECT count(*) FROM app.projects WHERE deleted_at IS NOT NULL) + (SELECT count(*) FROM app.tasks WHERE deleted_at IS NOT NULL)")"
check "restore_account after the restore brings back exactly the cascade" '{"app.tasks": 9, "app.accounts": 1, "app.projects": 2}|1' \
    "$(q $dst "SELECT lifecycle.restore_account('acc00000-0000-4000-8000-000000000001')")|$(q $dst "SELECT count(*) FROM app.tasks WHERE deleted_at IS NOT NULL")"
check "intercepted DELETE still soft-deletes after the restore" "1|t" \
    "$(q $dst "DELETE FROM app.tasks WHERE id = 2; SELECT count(*) FROM app.tasks WHERE id = 2")|$(q $dst "SELECT deleted_at IS NOT NULL FROM app.tasks WHERE id = 2")"
check "audit log and options restored" "app.projects {updated_by}|UPDATE,SOFT_DELETE,SOFT_DELETE,RESTORE,RESTORE" \
    "$(q $dst "SELECT table_name::text || ' ' || exclude_columns::text FROM lifecycle.audited_tables")|$(q $dst "SELECT string_agg(op::text, ',' ORDER BY id) FROM lifecycle.audit_log")"
check "record_history works after the restore" "UPDATE,SOFT_DELETE,RESTORE" \
    "$(q $dst "SELECT string_agg(op::text, ',' ORDER BY id) FROM lifecycle.record_history('app.projects', '1')")"
# counted from the restored data: restore_account above brought back 9
# tasks and the intercepted DELETE took one; 7 metered requests
check "usage counts and ledger restored, and counting" "ai 7,tasks 8|8 7|1" \
    "$(q $dst "SELECT string_agg(resource_type || ' ' || s, ',' ORDER BY resource_type) FROM (SELECT resource_type, sum(n) AS s FROM lifecycle.usage_counts GROUP BY 1) x")|$(q $dst "SELECT task_count || ' ' || ai FROM app.accounts")|$(q $dst "SELECT count(*) FROM lifecycle.usage_events")"
check "data restored unchanged" \
    "$(q $src "SELECT string_agg(format('%s %s %s', id, name, updated_at), ',' ORDER BY id) FROM app.projects")" \
    "$(q $dst "SELECT string_agg(format('%s %s %s', id, name, updated_at), ',' ORDER BY id) FROM app.projects")"
check "triggers restored" "lifecycle_audit_delete,lifecycle_audit_insert,lifecycle_audit_start,lifecycle_audit_truncate,lifecycle_audit_update,lifecycle_redact,lifecycle_soft_delete_guard_ins,lifecycle_soft_delete_guard_upd,lifecycle_soft_delete_intercept,lifecycle_soft_delete_intercept_end,lifecycle_updated_at,lifecycle_usage_delete,lifecycle_usage_guard,lifecycle_usage_insert,lifecycle_usage_truncate,lifecycle_usage_update,notes_stamp" \
    "$(q $dst "SELECT string_agg(DISTINCT tgname, ',' ORDER BY tgname) FROM pg_trigger WHERE NOT tgisinternal AND tgrelid::regclass::text NOT LIKE 'lifecycle.%'")"
check "restored trigger stamps time and actor" "t|99999999-9999-4999-8999-999999999999" \
    "$(q $dst "SET request.jwt.claims = '{\"sub\": \"99999999-9999-4999-8999-999999999999\"}';
               UPDATE app.projects SET name = 'alpha 2' WHERE id = 1 RETURNING updated_at = now(), updated_by")"
check "restored drop-in trigger stamps" "t" \
    "$(q $dst "UPDATE app.notes SET body = 'm' RETURNING modified = now()::timestamp")"
check "no-op update keeps the restored stamp" "2002-02-02 00:00:00+00" \
    "$(q $dst "SET timezone = 'UTC'; UPDATE app.projects SET name = name WHERE id = 2 RETURNING updated_at")"
q $dst "SELECT lifecycle.disable_updated_at('app.projects')" >/dev/null
check "disable_updated_at works after restore" "0|notes_stamp" \
    "$(q $dst "SELECT count(*), (SELECT string_agg(tgname, ',') FROM pg_trigger WHERE NOT tgisinternal AND tgname NOT LIKE 'lifecycle_soft%' AND tgname NOT LIKE '%audit%' AND tgname NOT LIKE 'lifecycle_usage%' AND tgname NOT LIKE 'lifecycle_redact%' AND tgrelid::regclass::text NOT LIKE 'lifecycle.%') FROM lifecycle.updated_at_tables")"

before=$(q $dst "SELECT task_count FROM app.accounts")
after=$(q $dst "INSERT INTO app.tasks VALUES (100, 1, 'new', NULL, NULL, 'acc00000-0000-4000-8000-000000000001'); SELECT task_count FROM app.accounts")
q $dst "UPDATE app.accounts SET max_tasks = 9"
refused=$("$PGBIN/psql" -X -q -d $dst -c "INSERT INTO app.tasks VALUES (101, 1, 'over', NULL, NULL, 'acc00000-0000-4000-8000-000000000001')" 2>&1 | grep -c 'usage limit of "tasks" reached')
check "counters follow the restored data, limit included" "8|9|1" "$before|$after|$refused"
check "audit ids continue after the restore" "t" \
    "$(q $dst "UPDATE app.projects SET name = 'after restore' WHERE id = 2; SELECT max(id) > 4 AND count(*) = count(DISTINCT id) FROM lifecycle.audit_log")"

check "retention policy, hold, runs and archive restored" "app.events archive|1|1|8|12" \
    "$(q $dst "SELECT relid::text || ' ' || action FROM lifecycle.retention_policies")|$(q $dst "SELECT count(*) FROM lifecycle.retention_holds")|$(q $dst "SELECT count(*) FROM lifecycle.retention_runs")|$(q $dst "SELECT count(*) FROM archive.events")|$(q $dst "SELECT count(*) FROM app.events")"
q $dst "SELECT lifecycle.release_retention_hold('app.events', 'acc00000-0000-4000-8000-000000000001')" >/dev/null
check "retention runs after the restore, into the restored archive" "{\"app.events\": 8}|16" \
    "$(q $dst "SELECT lifecycle.cleanup_retention_data()")|$(q $dst "SELECT count(*) FROM archive.events")"
check "restore_archived works after the restore" "t" "$(q $dst "SELECT lifecycle.restore_archived('app.events', '20')")"

check "redaction rules, safe keys and tables restored, defaults once" \
    "$(q $src "SELECT count(*) FROM lifecycle.redaction_rules")|2|1|app.telemetry {metadata}" \
    "$(q $dst "SELECT count(*) FROM lifecycle.redaction_rules")|$(q $dst "SELECT count(*) FROM lifecycle.redaction_rules WHERE NOT builtin")|$(q $dst "SELECT count(*) FROM lifecycle.redaction_safe_keys")|$(q $dst "SELECT relid::text || ' ' || columns::text FROM lifecycle.redaction_tables")"
check "redaction after the restore applies the restored rules" \
    '{"token": "t", "nickname": "[redacted:nickname]", "password": "[redacted:password]", "token_count": 3}' \
    "$(q $dst "INSERT INTO app.telemetry VALUES (2, '{\"password\": \"y\", \"nickname\": \"q\", \"token\": \"t\", \"token_count\": 3}') RETURNING metadata")"

for db in $src $dst; do q postgres "DROP DATABASE $db" >/dev/null; done
