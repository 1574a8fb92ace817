-- What `make demo` shows, section by section, on the example SaaS schema
-- (test/fixtures/saas_schema.sql).  Each later feature adds its section.
\set QUIET on
\pset footer off
SET timezone = 'UTC';

\echo
\echo '== pg_lifecycle demo'
SELECT extname AS extension, extversion AS version FROM pg_extension WHERE extname = 'pg_lifecycle';

\echo
\echo '== 1. updated_at and updated_by on every table that has them'
\echo '   SELECT lifecycle.enable_updated_at(tbl, ''updated_at'', ''updated_by'') for each table:'
SELECT count(*) AS tables_enabled
  FROM (SELECT lifecycle.enable_updated_at(c.oid::regclass, 'updated_at',
                   CASE WHEN EXISTS (SELECT 1 FROM pg_attribute a
                                      WHERE a.attrelid = c.oid AND a.attname = 'updated_by'
                                        AND NOT a.attisdropped)
                        THEN 'updated_by' END)
          FROM pg_class c
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
           AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                          AND a.attname = 'updated_at' AND NOT a.attisdropped)) s;
SELECT relid AS "table", timestamp_column, actor_column FROM lifecycle.updated_at_tables ORDER BY 1::text;

-- who changed what, readable (run as the demo's superuser, outside RLS)
CREATE TEMP VIEW demo_projects AS
SELECT p.name, p.description, p.updated_at, u.email AS updated_by
  FROM projects p LEFT JOIN auth.users u ON u.id = p.updated_by ORDER BY p.name;

-- start from a known past so the stamps below stand out
ALTER TABLE projects DISABLE TRIGGER lifecycle_updated_at;
UPDATE projects SET updated_at = '2026-01-01 09:00+00', updated_by = NULL;
ALTER TABLE projects ENABLE TRIGGER lifecycle_updated_at;

\echo
\echo '== 2. Alice (authenticated, through the API) renames a project'
\echo '   PostgREST sets: SET ROLE authenticated; SET request.jwt.claims = ''{"sub": "a11ce000-...", ...}'''
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = '{"sub": "a11ce000-0000-4000-8000-000000000001", "role": "authenticated"}';
SELECT lifecycle.current_actor() AS current_actor, lifecycle.current_actor_role() AS current_actor_role;
UPDATE projects SET name = 'Data Warehouse' WHERE name = 'Warehouse';
COMMIT;
SELECT * FROM demo_projects;

\echo
\echo '== 3. Bob saves the form without changing anything: a no-op UPDATE keeps the stamps'
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = '{"sub": "b0b00000-0000-4000-8000-000000000002", "role": "authenticated"}';
UPDATE projects SET name = name, description = description WHERE name = 'Data Warehouse';
COMMIT;
SELECT * FROM demo_projects WHERE name = 'Data Warehouse';
\echo '   ... and a real change by Bob is stamped with Bob:'
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = '{"sub": "b0b00000-0000-4000-8000-000000000002", "role": "authenticated"}';
UPDATE projects SET description = 'Curated tables' WHERE name = 'Data Warehouse';
COMMIT;
SELECT * FROM demo_projects WHERE name = 'Data Warehouse';

\echo
\echo '== 4. Carol (another tenant) cannot see or touch Acme''s projects: RLS applies as usual'
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = '{"sub": "ca201000-0000-4000-8000-000000000003", "role": "authenticated"}';
WITH changed AS (UPDATE projects SET name = 'pwned' WHERE name = 'Data Warehouse' RETURNING 1)
SELECT count(*) AS rows_carol_changed FROM changed;
SELECT name AS projects_carol_sees FROM projects;
COMMIT;

\echo
\echo '== 5. A backend job (service_role, no user in the token): updated_by says nobody'
BEGIN;
SET LOCAL ROLE service_role;
SET LOCAL request.jwt.claims = '{"role": "service_role"}';
SELECT lifecycle.current_actor() AS current_actor, lifecycle.current_actor_role() AS current_actor_role;
UPDATE projects SET description = 'Nightly sync' WHERE name = 'Lakehouse';
COMMIT;
SELECT * FROM demo_projects WHERE name = 'Lakehouse';

\echo
\echo '== 6. Soft delete on the tenant tree: SELECT lifecycle.enable_soft_delete(tbl) for each table'
SELECT count(*) AS tables_enabled
  FROM (SELECT lifecycle.enable_soft_delete(t)
          FROM unnest('{accounts,account_users,projects,workspaces,connections,datasets,columns}'::regclass[]) t) s;
\echo '   each table got deleted_at, deleted_by and a view <table>_active (security_invoker: RLS still applies)'

\echo
\echo '== 7. Bob deletes one dataset through the API: lifecycle.soft_delete(''datasets'', id)'
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = '{"sub": "b0b00000-0000-4000-8000-000000000002", "role": "authenticated"}';
SELECT lifecycle.soft_delete('datasets', d.id) AS bob_deleted_table_1
  FROM datasets d JOIN workspaces w ON w.id = d.workspace_id JOIN projects p ON p.id = w.project_id
 WHERE p.name = 'Data Warehouse' AND d.name = 'table_1';
COMMIT;

\echo
\echo '== 8. Alice, the owner, closes the Acme account: one call, every table below it'
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = '{"sub": "a11ce000-0000-4000-8000-000000000001", "role": "authenticated"}';
SELECT jsonb_pretty(lifecycle.soft_delete_account('acc00000-0000-4000-8000-000000000ac1')) AS soft_delete_account;
COMMIT;
SELECT * FROM lifecycle.soft_delete_stats ORDER BY table_name::text;
SELECT (SELECT count(*) FROM projects_active) AS live_projects,
       (SELECT count(*) FROM datasets_active) AS live_datasets,
       (SELECT count(*) FROM columns_active) AS live_columns;

\echo
\echo '== 9. Support restores the account (service_role): exactly what the closing removed'
\echo '   comes back; the dataset Bob deleted before stays deleted'
BEGIN;
SET LOCAL ROLE service_role;
SET LOCAL request.jwt.claims = '{"role": "service_role"}';
SELECT jsonb_pretty(lifecycle.restore_account('acc00000-0000-4000-8000-000000000ac1')) AS restore_account;
COMMIT;
SELECT d.name AS dataset, d.deleted_at IS NOT NULL AS deleted, u.email AS deleted_by
  FROM datasets d LEFT JOIN auth.users u ON u.id = d.deleted_by
 WHERE d.deleted_at IS NOT NULL;
SELECT * FROM lifecycle.soft_delete_stats ORDER BY table_name::text;

\echo
\echo '== 10. No live row under a deleted one: adding a column to Bob''s deleted dataset fails'
\set ON_ERROR_STOP off
INSERT INTO columns (account_id, dataset_id, name, data_type)
SELECT account_id, id, 'new_col', 'text' FROM datasets WHERE deleted_at IS NOT NULL;
\set ON_ERROR_STOP on

\echo
\echo '== 11. Audit: SELECT lifecycle.enable_audit(tbl, exclude_columns, redact_columns)'
SELECT lifecycle.enable_audit('projects');
SELECT lifecycle.enable_audit('connections', exclude_columns => '{password_encrypted}', redact_columns => '{config}');
SELECT table_name, exclude_columns, redact_columns FROM lifecycle.audited_tables ORDER BY table_name::text;

\echo
\echo '== 12. A project''s life through the API: created, renamed, soft-deleted, restored'
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = '{"sub": "a11ce000-0000-4000-8000-000000000001", "role": "authenticated"}';
SET LOCAL request.headers = '{"x-forwarded-for": "203.0.113.7"}';
INSERT INTO projects (id, account_id, name) VALUES
    ('9a000000-0000-4000-8000-0000000000a1', 'acc00000-0000-4000-8000-000000000ac1', 'Forecasting');
COMMIT;
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = '{"sub": "b0b00000-0000-4000-8000-000000000002", "role": "authenticated"}';
UPDATE projects SET name = 'Demand Forecasting', description = 'Weekly' WHERE id = '9a000000-0000-4000-8000-0000000000a1';
SELECT lifecycle.soft_delete('projects', '9a000000-0000-4000-8000-0000000000a1') AS bob_soft_deleted;
COMMIT;
BEGIN;
SET LOCAL ROLE service_role;
SET LOCAL request.jwt.claims = '{"role": "service_role"}';
SELECT lifecycle.restore_deleted('projects', '9a000000-0000-4000-8000-0000000000a1') AS support_restored;
COMMIT;
SELECT h.op, u.email AS actor, h.actor_role, h.client_addr, h.changed_columns,
       left(coalesce(h.new_values, h.old_values)::text, 60) AS values
  FROM lifecycle.record_history('projects', '9a000000-0000-4000-8000-0000000000a1') h
  LEFT JOIN auth.users u ON u.id = h.actor_id
 ORDER BY h.id;
\echo '   the row as it was before the rename, rebuilt from the log:'
SELECT lifecycle.record_at('projects', '9a000000-0000-4000-8000-0000000000a1',
                           (SELECT occurred_at FROM lifecycle.audit_log WHERE op = 'INSERT'
                             AND record_id = '9a000000-0000-4000-8000-0000000000a1'))->>'name' AS name_then;
\echo '   Alice (authenticated) reads the log through lifecycle.audit_log_visible:'
\echo '   only her own changes, and only columns she may SELECT:'
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = '{"sub": "a11ce000-0000-4000-8000-000000000001", "role": "authenticated"}';
SELECT op, table_name, record_id, changed_columns FROM lifecycle.audit_log_visible ORDER BY id;
\echo '   the log itself is not hers to read:'
\set ON_ERROR_STOP off
SELECT count(*) FROM lifecycle.audit_log;
\set ON_ERROR_STOP on
COMMIT;
\echo '   and the log is append-only, for everyone:'
\set ON_ERROR_STOP off
DELETE FROM lifecycle.audit_log;
\set ON_ERROR_STOP on

\echo
\echo '== 13. Usage counters: lifecycle.track_usage(resource, counter table, column, source table, column, limit)'
SELECT lifecycle.track_usage('projects', 'public.accounts', 'current_project_count',
                             'public.projects', 'account_id', 'max_projects'),
       lifecycle.track_usage('datasets', 'public.accounts', 'current_dataset_count',
                             'public.datasets', 'account_id', 'max_datasets'),
       lifecycle.track_usage('ai_requests', 'public.accounts', 'current_monthly_ai_requests',
                             NULL, NULL, 'max_monthly_ai_requests') \g /dev/null
SELECT resource_type, counter_column, source_table, limit_column FROM lifecycle.usage_resources ORDER BY 1;
CREATE TEMP VIEW demo_usage AS
SELECT name, plan, current_project_count || ' / ' || max_projects AS projects,
       current_dataset_count || ' / ' || max_datasets AS datasets,
       current_monthly_ai_requests || ' / ' || max_monthly_ai_requests AS ai_requests
  FROM accounts ORDER BY name;
SELECT * FROM demo_usage;
\echo '   Carol (Globex, free plan: 3 projects) creates two projects through the API:'
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = '{"sub": "ca201000-0000-4000-8000-000000000003", "role": "authenticated"}';
INSERT INTO projects (account_id, name) VALUES
    ('acc00000-0000-4000-8000-0000000006e0', 'Ingest'), ('acc00000-0000-4000-8000-0000000006e0', 'Reports');
COMMIT;
SELECT name, projects FROM demo_usage WHERE name = 'Globex';
\echo '   a fourth passes the plan''s limit: refused, nothing written (SQLSTATE 23514):'
\set ON_ERROR_STOP off
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = '{"sub": "ca201000-0000-4000-8000-000000000003", "role": "authenticated"}';
INSERT INTO projects (account_id, name) VALUES ('acc00000-0000-4000-8000-0000000006e0', 'One too many');
ROLLBACK;
\echo '   nor may she raise her count by hand:'
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = '{"sub": "ca201000-0000-4000-8000-000000000003", "role": "authenticated"}';
UPDATE accounts SET current_project_count = 0 WHERE id = 'acc00000-0000-4000-8000-0000000006e0';
ROLLBACK;
\set ON_ERROR_STOP on
\echo '   she soft-deletes "Reports": the count follows, and there is room for "Dashboards":'
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = '{"sub": "ca201000-0000-4000-8000-000000000003", "role": "authenticated"}';
SELECT lifecycle.soft_delete('projects', (SELECT id FROM projects WHERE name = 'Reports')) AS soft_deleted;
COMMIT;
SELECT name, projects FROM demo_usage WHERE name = 'Globex';
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = '{"sub": "ca201000-0000-4000-8000-000000000003", "role": "authenticated"}';
INSERT INTO projects (account_id, name) VALUES ('acc00000-0000-4000-8000-0000000006e0', 'Dashboards');
COMMIT;
SELECT name, projects FROM demo_usage WHERE name = 'Globex';
\echo '   restoring "Reports" now would make 4: refused; after an upgrade to 5 it comes back:'
\set ON_ERROR_STOP off
SELECT lifecycle.restore_deleted('projects', (SELECT id FROM projects WHERE name = 'Reports'));
\set ON_ERROR_STOP on
UPDATE accounts SET plan = 'team', max_projects = 5 WHERE id = 'acc00000-0000-4000-8000-0000000006e0';
SELECT lifecycle.restore_deleted('projects', (SELECT id FROM projects WHERE name = 'Reports')) AS restored;
SELECT name, plan, projects FROM demo_usage WHERE name = 'Globex';
\echo '   metered usage: each AI request is counted against the plan and kept in the ledger'
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = '{"sub": "a11ce000-0000-4000-8000-000000000001", "role": "authenticated"}';
SELECT lifecycle.increment_usage_counter('acc00000-0000-4000-8000-000000000ac1', 'ai_requests', 3) AS counted;
COMMIT;
SELECT e.resource_type, e.quantity, u.email AS actor, e.occurred_at::timestamp(0) AS at
  FROM lifecycle.usage_events e LEFT JOIN auth.users u ON u.id = e.actor_id ORDER BY e.id;
SELECT * FROM demo_usage;
\echo '   and per resource, what is kept, what the data says, and the limit:'
SELECT * FROM lifecycle.calculate_account_usage('acc00000-0000-4000-8000-0000000006e0');
\echo '   (reset monthly from pg_cron: SELECT lifecycle.reset_usage_counter(''ai_requests''))'

\echo
\echo '== 14. Retention: telemetry is kept 90 days, or each user''s own privacy_prefs.data_retention_days'
\echo '   (never below 7 days), and archived, in batches, by CALL lifecycle.run_retention()'
CREATE TABLE public.privacy_prefs (user_id uuid PRIMARY KEY, data_retention_days integer);
CREATE INDEX ON public.telemetry_events (created_at);   -- batches find the oldest rows by it
INSERT INTO public.privacy_prefs VALUES ('a11ce000-0000-4000-8000-000000000001', 30),
                                        ('b0b00000-0000-4000-8000-000000000002', 0);
INSERT INTO public.telemetry_events (account_id, user_id, event, created_at)
SELECT 'acc00000-0000-4000-8000-000000000ac1', u, 'page_view', now() - g * interval '1 day' - interval '1 hour'
  FROM (VALUES ('a11ce000-0000-4000-8000-000000000001'::uuid), ('b0b00000-0000-4000-8000-000000000002'),
               ('ca201000-0000-4000-8000-000000000003')) v(u), generate_series(1, 120) g;
SELECT lifecycle.set_retention('public.telemetry_events', interval '90 days', action => 'archive',
         owner_column => 'user_id', preference_table => 'public.privacy_prefs',
         preference_key => 'user_id', preference_column => 'data_retention_days',
         min_keep => interval '7 days', batch_size => 100);
SELECT table_name, action, keep, rows_waiting FROM lifecycle.retention_overview;
CALL lifecycle.run_retention();
SELECT run_id, relid AS table_name, status, rows_archived, batches FROM lifecycle.retention_runs;
\echo '   alice keeps 30 days, bob asked for none (7 days), a user without a preference 90:'
SELECT coalesce(u.email, e.user_id::text) AS user, count(*) AS kept,
       max(extract(day FROM now() - e.created_at))::int AS oldest_days
  FROM public.telemetry_events e LEFT JOIN auth.users u ON u.id = e.user_id
 WHERE e.event = 'page_view' AND e.created_at < now() - interval '1 minute'
 GROUP BY 1 ORDER BY 1;
SELECT count(*) AS archived FROM archive.telemetry_events;
\echo '   the archive is the table owner''s alone; authenticated cannot read it:'
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = '{"sub": "a11ce000-0000-4000-8000-000000000001", "role": "authenticated"}';
\set ON_ERROR_STOP 0
SELECT count(*) FROM archive.telemetry_events;
\set ON_ERROR_STOP 1
ROLLBACK;
\echo '   support brings one archived event back: lifecycle.restore_archived(tbl, id)'
SELECT lifecycle.restore_archived('public.telemetry_events',
         (SELECT min(id)::text FROM archive.telemetry_events)) AS restored;
\echo '   and the nightly job, with pg_cron: lifecycle.schedule_retention(schedule)'
CREATE EXTENSION IF NOT EXISTS pg_cron;
SELECT lifecycle.schedule_retention('17 3 * * *') AS job_id;
SELECT jobname, schedule, command FROM cron.job ORDER BY jobid;
SELECT table_name, last_status, next_due FROM lifecycle.retention_overview;

\echo
\echo '== 15. Redaction: secrets and personal data never reach telemetry_events'
\echo '   SELECT lifecycle.enable_redaction(''public.telemetry_events'', ''{metadata}'')'
SELECT lifecycle.enable_redaction('public.telemetry_events', '{metadata}');
\echo '   the seeded event, before the trigger existed, and what redaction would say about it:'
SELECT metadata FROM public.telemetry_events WHERE event = 'page_view' AND metadata <> '{}' ORDER BY id LIMIT 1;
SELECT r.* FROM public.telemetry_events e, lifecycle.redaction_report(e.metadata) r
 WHERE e.event = 'page_view' AND e.metadata <> '{}';
\echo '   Alice''s app sends an event through the API; it is scrubbed as it is inserted:'
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = '{"sub": "a11ce000-0000-4000-8000-000000000001", "role": "authenticated"}';
INSERT INTO public.telemetry_events (account_id, user_id, event, metadata)
VALUES ('acc00000-0000-4000-8000-000000000ac1', 'a11ce000-0000-4000-8000-000000000001', 'checkout',
        '{"userPassword": "hunter2", "headers": {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"},
          "note": "receipt to alice@acme.test, card 4111 1111 1111 1111",
          "order_id": "123e4567-e89b-12d3-a456-426614174000", "token_count": 1234,
          "context": "{\"db\": \"postgres://app:s3cret@db.internal:5432/app\"}"}')
RETURNING jsonb_pretty(metadata) AS stored;
COMMIT;
\echo '   token_count is a count, not a token: the team makes it a safe key'
SELECT lifecycle.add_safe_key('token_count');
SELECT lifecycle.redact_jsonb('{"token_count": 1234, "sessionToken": "abc"}') AS redacted;
\echo '   the rules in effect (your own rows override the defaults; pg_dump keeps them):'
SELECT kind, count(*) AS rules, string_agg(DISTINCT action, ',') AS actions
  FROM lifecycle.redaction_rules_in_effect WHERE enabled GROUP BY kind ORDER BY kind;
\echo '   the same table keeps its retention policy: redaction on the way in, retention on the way out'
SELECT table_name, action, keep FROM lifecycle.retention_overview;
