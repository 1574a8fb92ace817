#!/usr/bin/env bash
# ALTER EXTENSION pg_lifecycle UPDATE from every released version: the
# updated extension has exactly the objects of a fresh install, keeps the
# data and configuration made under the old version, and its new features
# work.  Needs PGHOST/PGPORT/PGUSER of a running cluster with pg_lifecycle
# installed (as .ci/run provides).  Prints "ok - ..." / "not ok - ..." lines.
set -uo pipefail
PGBIN=${LC_PGBIN:-/usr/lib/postgresql/15/bin}
old=regress_upgrade_old new=regress_upgrade_new
export PGOPTIONS="-c client_min_messages=warning"

q() { "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
check() {  # check NAME EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: expected [$2], got [$3]"; fi
}
# Every member of the extension, described, with its definition where it
# has one (functions, tables' columns, views, triggers, policies).
members() {
    q "$1" "SELECT string_agg(d, E'\n' ORDER BY d) FROM (
              SELECT pg_describe_object(classid, objid, 0) AS d FROM pg_depend
               WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
                 AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_lifecycle')
              UNION ALL
              SELECT format('%s(%s) %s %s %s', p.proname, pg_get_function_identity_arguments(p.oid),
                            pg_get_function_result(p.oid), p.prosecdef, md5(p.prosrc))
                FROM pg_proc p WHERE p.pronamespace = 'lifecycle'::regnamespace
              UNION ALL
              SELECT format('%s.%s %s %s', c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull)
                FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
               WHERE c.relnamespace = 'lifecycle'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
              UNION ALL
              SELECT format('%s %s', c.relname, c.reloptions) FROM pg_class c
               WHERE c.relnamespace = 'lifecycle'::regnamespace
              UNION ALL
              SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
               WHERE c.relnamespace = 'lifecycle'::regnamespace
              UNION ALL
              SELECT format('%s %s %s', polname, polroles::regrole[], pg_get_expr(polqual, polrelid))
                FROM pg_policy WHERE polrelid::regclass::text LIKE 'lifecycle.%'
              UNION ALL
              SELECT format('%s %s', c.relname, array_agg(x::text ORDER BY x::text)) FROM pg_class c, unnest(c.relacl) x
               WHERE c.relnamespace = 'lifecycle'::regnamespace GROUP BY c.relname) m"
}

for db in $old $new; do q postgres "DROP DATABASE IF EXISTS $db" >/dev/null; q postgres "CREATE DATABASE $db" >/dev/null; done

versions=$(q postgres "SELECT string_agg(version, ' ' ORDER BY version) FROM pg_available_extension_versions WHERE name = 'pg_lifecycle'")
current=$(q postgres "SELECT default_version FROM pg_available_extensions WHERE name = 'pg_lifecycle'")
check "released versions installed beside the current one" "0.1.0 0.2.0 0.3.0 0.4.0 0.5.0" "$versions"
q $new "CREATE EXTENSION pg_lifecycle" >/dev/null
m_new=$(members $new)

# From each released version: set up data and configuration with what that
# version has, update, and compare with a fresh install.
for from in 0.1.0 0.2.0 0.3.0 0.4.0; do
    q postgres "DROP DATABASE IF EXISTS $old" >/dev/null; q postgres "CREATE DATABASE $old" >/dev/null
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d $old >/dev/null <<SQL || { echo "not ok - set up the database at $from"; continue; }
CREATE EXTENSION pg_lifecycle VERSION '$from';
CREATE TABLE accounts (id uuid PRIMARY KEY, name text, project_count integer NOT NULL DEFAULT 0);
CREATE TABLE projects (id bigint PRIMARY KEY, account_id uuid REFERENCES accounts, name text,
                       updated_at timestamptz NOT NULL DEFAULT now());
SELECT lifecycle.enable_updated_at('projects');
SELECT lifecycle.enable_soft_delete('accounts');
SELECT lifecycle.enable_soft_delete('projects');
SELECT lifecycle.enable_audit('projects');
INSERT INTO accounts VALUES ('acc00000-0000-4000-8000-000000000001', 'acme');
INSERT INTO projects (id, account_id, name) VALUES (1, 'acc00000-0000-4000-8000-000000000001', 'a'),
                                                   (2, 'acc00000-0000-4000-8000-000000000001', 'b');
SELECT lifecycle.soft_delete('projects', 2);
SQL
    echo "ok - database set up at $from"
    q $old "ALTER EXTENSION pg_lifecycle UPDATE" >/dev/null || echo "not ok - ALTER EXTENSION pg_lifecycle UPDATE from $from"
    check "updated from $from to the current version" "$current" \
        "$(q $old "SELECT extversion FROM pg_extension WHERE extname = 'pg_lifecycle'")"
    m_old=$(members $old)
    if [ -z "$m_new" ]; then
        echo "not ok - could not list the extension's objects"
    elif [ "$m_old" = "$m_new" ]; then
        echo "ok - updated from $from, the extension has exactly the objects of a fresh install"
    else
        echo "not ok - updated from $from, the extension differs from a fresh install:"
        diff <(printf '%s\n' "$m_old") <(printf '%s\n' "$m_new") | sed 's/^/#   /'
    fi
    check "data and configuration kept from $from" "1|INSERT,INSERT,SOFT_DELETE|accounts,projects" \
        "$(q $old "SELECT count(*) FROM projects WHERE deleted_at IS NULL")|$(q $old "SELECT string_agg(op::text, ',' ORDER BY id) FROM lifecycle.audit_log")|$(q $old "SELECT string_agg(relid::text, ',' ORDER BY relid::text) FROM lifecycle.soft_delete_tables")"
    q $old "SELECT lifecycle.track_usage('projects', 'accounts', 'project_count', 'projects', 'account_id')" >/dev/null
    check "usage counters work after the update from $from" "1|2" \
        "$(q $old "SELECT project_count FROM accounts")|$(q $old "INSERT INTO projects (id, account_id, name) VALUES (3, 'acc00000-0000-4000-8000-000000000001', 'c'); SELECT project_count FROM accounts")"
    check "old features still work after the update from $from" "UPDATE" \
        "$(q $old "UPDATE projects SET name = 'a2' WHERE id = 1; SELECT op FROM lifecycle.audit_log ORDER BY id DESC LIMIT 1")"
    check "audited tables got the statement-start trigger with their options (from $from)" "lifecycle_audit_start|true" \
        "$(q $old "SELECT tgname || '|' || (tgargs = (SELECT tgargs FROM pg_trigger WHERE tgname = 'lifecycle_audit_insert')) FROM pg_trigger WHERE tgname = 'lifecycle_audit_start'")"
    check "retention works after the update from $from" "1|1" \
        "$(q $old "CREATE TABLE old_events (id int PRIMARY KEY, created_at timestamptz); INSERT INTO old_events VALUES (1, now() - interval '1 year'), (2, now())" >/dev/null
           q $old "SELECT lifecycle.set_retention('old_events', '30 days', action => 'archive')" >/dev/null
           q $old "SELECT lifecycle.cleanup_retention_data() ->> 'public.old_events'")|$(q $old "SELECT count(*) FROM archive.old_events")"
    check "redaction works after the update from $from, with the default rules of a fresh install" \
        "$(q $new "SELECT count(*) FROM lifecycle.redaction_rules WHERE builtin")|{\"m\": \"[email]\", \"password\": \"[redacted:password]\"}" \
        "$(q $old "SELECT count(*) FROM lifecycle.redaction_rules WHERE builtin")|$(q $old "CREATE TABLE events (doc jsonb)" >/dev/null
           q $old "SELECT lifecycle.enable_redaction('events')" >/dev/null
           q $old "INSERT INTO events VALUES ('{\"password\": \"x\", \"m\": \"a@b.io\"}')" >/dev/null
           q $old "SELECT doc FROM events")"
    check "audit pseudonyms (hash_columns) after the update from $from" "[REDACTED]|{name}" \
        "$(q $old "SELECT lifecycle.enable_audit('projects', hash_columns => '{name}')" >/dev/null
           q $old "UPDATE projects SET name = 'secret name' WHERE id = 1" >/dev/null 2>&1
           q $old "SELECT new_values ->> 'name' FROM lifecycle.audit_log ORDER BY id DESC LIMIT 1" 2>/dev/null)|$(q $old "SELECT hash_columns FROM lifecycle.audited_tables")"
    q $old "SELECT lifecycle.enable_audit('projects')" >/dev/null
    q $old "CREATE TABLE gone (id int PRIMARY KEY); SELECT lifecycle.enable_soft_delete('gone'); DROP TABLE gone, projects CASCADE" >/dev/null
    check "the one sql_drop event trigger forgets dropped tables (from $from)" "1|accounts|0" \
        "$(q $old "SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'lifecycle%'")|$(q $old "SELECT string_agg(relid::text, ',') FROM lifecycle.soft_delete_tables")|$(q $old "SELECT count(*) FROM lifecycle.audit_tables")"
    check "the audit log is read through audit_log_visible after the update from $from" "6" \
        "$(q $old "SELECT count(*) FROM lifecycle.audit_log_visible")"
done

for db in $old $new; do q postgres "DROP DATABASE $db" >/dev/null; done
