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
