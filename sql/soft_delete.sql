--
-- Soft delete: enable/disable, cascades along foreign keys, exact restore,
-- the guard against live rows under deleted ones, intercepted DELETE,
-- permanent delete and cleanup, RLS, and every error.
--
CREATE EXTENSION pg_lifecycle;
SET timezone = 'UTC';

CREATE TABLE regress_accounts (id uuid PRIMARY KEY, name text);
CREATE TABLE regress_projects (id bigint PRIMARY KEY, account_id uuid REFERENCES regress_accounts, name text);
CREATE TABLE regress_datasets (id text PRIMARY KEY, project_id bigint NOT NULL REFERENCES regress_projects, name text);
CREATE TABLE regress_columns (id int PRIMARY KEY, dataset_id text REFERENCES regress_datasets, name text);
CREATE TABLE regress_folders (id int PRIMARY KEY, project_id bigint REFERENCES regress_projects,
                              parent_id int REFERENCES regress_folders);
CREATE TABLE regress_tags (project_id bigint REFERENCES regress_projects, tag text);   -- no primary key
CREATE TABLE regress_notes (id int PRIMARY KEY, project_id bigint REFERENCES regress_projects ON DELETE CASCADE);  -- not enabled
CREATE INDEX ON regress_projects (account_id);
CREATE INDEX ON regress_datasets (project_id);
CREATE INDEX ON regress_columns (dataset_id);

INSERT INTO regress_accounts VALUES ('a0000000-0000-4000-8000-000000000001', 'acme'),
                                    ('a0000000-0000-4000-8000-000000000002', 'globex');
INSERT INTO regress_projects VALUES (1, 'a0000000-0000-4000-8000-000000000001', 'p1'),
                                    (2, 'a0000000-0000-4000-8000-000000000001', 'p2'),
                                    (3, 'a0000000-0000-4000-8000-000000000002', 'p3');
INSERT INTO regress_datasets SELECT 'd' || g, 1 + g % 3, 'dataset ' || g FROM generate_series(1, 9) g;
INSERT INTO regress_columns SELECT g, 'd' || (1 + g % 9), 'col ' || g FROM generate_series(1, 27) g;
INSERT INTO regress_folders VALUES (1, 1, NULL), (2, 1, 1), (3, 1, 2), (4, 2, NULL);
INSERT INTO regress_tags VALUES (1, 'red'), (2, 'blue');
INSERT INTO regress_notes VALUES (1, 1), (2, 2);

--
-- enable_soft_delete
--
SELECT lifecycle.enable_soft_delete(t)
  FROM unnest('{regress_accounts,regress_projects,regress_datasets,regress_columns,regress_folders,regress_tags}'::regclass[]) t;
-- again: idempotent
SELECT lifecycle.enable_soft_delete('regress_projects');
SELECT relid, intercept_delete FROM lifecycle.soft_delete_tables ORDER BY relid::text;
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'regress_projects'::regclass AND attnum > 0 ORDER BY attnum;
SELECT c.relname, c.reloptions, pg_get_viewdef(c.oid) ~ 'WHERE \(*(regress_projects\.)?deleted_at IS NULL\)*;$' AS live_rows_only,
       (SELECT string_agg(attname, ', ' ORDER BY attnum) FROM pg_attribute
         WHERE attrelid = c.oid AND attnum > 0) AS columns
  FROM pg_class c WHERE c.relname = 'regress_projects_active';
SELECT tgname FROM pg_trigger WHERE tgrelid = 'regress_datasets'::regclass AND NOT tgisinternal ORDER BY 1;
-- an existing deleted_at of another type, a view, a NULL, a non-owner
CREATE TABLE regress_wrong (id int PRIMARY KEY, deleted_at date);
SELECT lifecycle.enable_soft_delete('regress_wrong');
SELECT lifecycle.enable_soft_delete('regress_projects_active');
SELECT lifecycle.enable_soft_delete(NULL);
SELECT lifecycle.enable_soft_delete('regress_missing');
SELECT lifecycle.enable_soft_delete('regress_tags', intercept_delete => true);
CREATE ROLE regress_member;
SET ROLE regress_member;
SELECT lifecycle.enable_soft_delete('regress_wrong');
RESET ROLE;
SELECT attname FROM pg_attribute WHERE attrelid = 'regress_wrong'::regclass AND attnum > 0 ORDER BY attnum;

--
-- soft_delete: true for a live row, false when already deleted or missing;
-- the key in its own type, as an untyped literal, or in another type
--
SET request.jwt.claims = '{"sub": "11111111-1111-4111-8111-111111111111"}';
SELECT lifecycle.soft_delete('regress_columns', 1);          -- int key
SELECT lifecycle.soft_delete('regress_columns', 1);          -- already deleted
SELECT lifecycle.soft_delete('regress_columns', 999);        -- not there
SELECT lifecycle.soft_delete('regress_columns', '2');        -- untyped literal
SELECT lifecycle.soft_delete('regress_columns', 3::bigint);  -- another integer type
SELECT id, deleted_at IS NOT NULL AS deleted, deleted_by FROM regress_columns WHERE id <= 4 ORDER BY id;
SELECT lifecycle.soft_delete('regress_columns', 4, NULL);    -- nobody known
SELECT deleted_by FROM regress_columns WHERE id = 4;
SELECT lifecycle.soft_delete('regress_columns', 'x');        -- not an integer

--
-- cascades: every level, one deleted_at and deleted_by, a report per table
--
SELECT lifecycle.soft_delete('regress_datasets', 'd3');      -- deleted before its project
SELECT lifecycle.soft_delete_cascade('regress_projects', 1, '22222222-2222-4222-8222-222222222222');
SELECT 'projects' AS t, count(*) FILTER (WHERE deleted_at IS NOT NULL) AS deleted,
       count(DISTINCT (deleted_at, deleted_by)) FILTER (WHERE deleted_at IS NOT NULL) AS stamps
  FROM regress_projects WHERE id = 1
UNION ALL SELECT 'datasets', count(*) FILTER (WHERE deleted_at IS NOT NULL),
       count(DISTINCT (deleted_at, deleted_by)) FILTER (WHERE deleted_at IS NOT NULL)
  FROM regress_datasets WHERE project_id = 1
UNION ALL SELECT 'folders (self-reference, every level)', count(*) FILTER (WHERE deleted_at IS NOT NULL), NULL
  FROM regress_folders WHERE project_id = 1;
-- the same deleted_at and deleted_by across tables, except the earlier delete
SELECT count(DISTINCT (x.deleted_at, x.deleted_by)) AS cascade_stamps FROM (
    SELECT deleted_at, deleted_by FROM regress_projects WHERE id = 1
    UNION ALL SELECT deleted_at, deleted_by FROM regress_datasets WHERE project_id = 1 AND id <> 'd3'
    UNION ALL SELECT deleted_at, deleted_by FROM regress_folders WHERE project_id = 1) x;
-- tables not enabled are left alone (regress_notes), the _active views hide deleted rows
SELECT count(*) AS notes FROM regress_notes;
SELECT count(*) AS live_projects FROM regress_projects_active;
SELECT lifecycle.soft_delete_cascade('regress_projects', 1);  -- nothing live: empty report

--
-- exact restore: exactly the cascade's rows come back
--
SELECT lifecycle.restore_cascade('regress_projects', 1);
SELECT id, deleted_at IS NOT NULL AS still_deleted FROM regress_datasets WHERE project_id = 1 ORDER BY id;
SELECT count(*) FILTER (WHERE deleted_at IS NOT NULL) AS deleted_folders FROM regress_folders;
SELECT lifecycle.restore_deleted('regress_projects', 1);      -- not deleted: false
SELECT lifecycle.restore_deleted('regress_datasets', 'd3');   -- its own cascade
-- several trees deleted and restored in one transaction stay apart
BEGIN;
SELECT lifecycle.soft_delete('regress_datasets', 'd4');
SELECT lifecycle.soft_delete('regress_projects', 2);
SELECT lifecycle.soft_delete('regress_accounts', 'a0000000-0000-4000-8000-000000000001');
SELECT lifecycle.restore_cascade('regress_accounts', 'a0000000-0000-4000-8000-000000000001');
SELECT 'project 2' AS row, deleted_at IS NOT NULL AS deleted FROM regress_projects WHERE id = 2
UNION ALL SELECT 'dataset d4', deleted_at IS NOT NULL FROM regress_datasets WHERE id = 'd4'
UNION ALL SELECT 'project 1', deleted_at IS NOT NULL FROM regress_projects WHERE id = 1;
SELECT lifecycle.restore_deleted('regress_projects', 2);
SELECT id, deleted_at IS NOT NULL AS deleted FROM regress_datasets WHERE project_id = 2 ORDER BY id;
COMMIT;
SELECT lifecycle.restore_deleted('regress_datasets', 'd4');

--
-- no live row under a deleted one
--
SELECT lifecycle.soft_delete_account('a0000000-0000-4000-8000-000000000001');  -- no tenant table yet
SELECT lifecycle.soft_delete('regress_projects', 3);
INSERT INTO regress_datasets VALUES ('d10', 3, 'under a deleted project');
UPDATE regress_datasets SET project_id = 3 WHERE id = 'd1';
INSERT INTO regress_datasets (id, project_id, name, deleted_at) VALUES ('d11', 3, 'born deleted', now());
SELECT lifecycle.restore_deleted('regress_datasets', 'd2');  -- its project is deleted
SELECT lifecycle.restore_deleted('regress_projects', 3);
SELECT id, deleted_at IS NOT NULL AS deleted FROM regress_datasets WHERE project_id = 3 ORDER BY id;
-- a row whose other parent another cascade deleted stays deleted on restore:
-- folder 5 (project 1) under folder 4 (project 2)
INSERT INTO regress_folders VALUES (5, 1, 4);
SELECT lifecycle.soft_delete_cascade('regress_folders', 4);
SELECT lifecycle.soft_delete_cascade('regress_projects', 1);
SELECT lifecycle.restore_cascade('regress_folders', 4);       -- folder 5 stays: project 1 is deleted
SELECT lifecycle.restore_cascade('regress_projects', 1);      -- folder 5 stays: not this cascade's
SELECT id, deleted_at IS NOT NULL AS deleted FROM regress_folders ORDER BY id;
SELECT lifecycle.restore_deleted('regress_folders', 5);
DELETE FROM regress_folders WHERE id = 5;

--
-- intercepted DELETE
--
SELECT lifecycle.enable_soft_delete('regress_projects', intercept_delete => true);
DELETE FROM regress_projects WHERE id = 2;
SELECT id, deleted_at IS NOT NULL AS deleted FROM regress_projects ORDER BY id;
SELECT count(*) FILTER (WHERE deleted_at IS NOT NULL) AS deleted_datasets_of_2
  FROM regress_datasets WHERE project_id = 2;
DELETE FROM regress_projects WHERE id = 2;                   -- already deleted: nothing
SELECT lifecycle.restore_cascade('regress_projects', 2);

--
-- permanent_delete: only a soft-deleted row, and foreign keys decide
--
SELECT lifecycle.permanent_delete('regress_columns', 5);     -- live
SELECT lifecycle.permanent_delete('regress_columns', 1);
SELECT lifecycle.permanent_delete('regress_columns', 1);     -- gone
SELECT lifecycle.soft_delete('regress_projects', 3);
SELECT lifecycle.permanent_delete('regress_projects', 3);    -- soft-deleted children still reference it
-- with intercept_delete on, and ON DELETE CASCADE from a table not enabled
INSERT INTO regress_projects VALUES (4, 'a0000000-0000-4000-8000-000000000002', 'p4');
INSERT INTO regress_notes VALUES (3, 4);
DELETE FROM regress_projects WHERE id = 4;
SELECT lifecycle.permanent_delete('regress_projects', 4);
SELECT (SELECT count(*) FROM regress_projects WHERE id = 4) AS project_4,
       (SELECT count(*) FROM regress_notes WHERE project_id = 4) AS its_notes;

--
-- cleanup_soft_deleted_records: old enough rows and their soft-deleted
-- descendants, children first
--
UPDATE regress_projects SET deleted_at = deleted_at - interval '100 days' WHERE id = 3;
SELECT lifecycle.cleanup_soft_deleted_records('regress_projects', 90);
SELECT (SELECT count(*) FROM regress_projects WHERE id = 3) AS project_3,
       (SELECT count(*) FROM regress_datasets WHERE project_id = 3) AS its_datasets,
       (SELECT count(*) FROM regress_columns c JOIN regress_datasets d ON d.id = c.dataset_id
         WHERE d.project_id = 3) AS their_columns;
SELECT lifecycle.cleanup_soft_deleted_records('regress_columns');  -- default 90 days: nothing that old
SELECT lifecycle.cleanup_soft_deleted_records('regress_columns', 0);
SELECT lifecycle.cleanup_soft_deleted_records('regress_columns', -1);

--
-- soft_delete_stats
--
SELECT * FROM lifecycle.soft_delete_stats ORDER BY table_name::text;

--
-- RLS: the caller's authority decides; deleted rows hidden by the SELECT
-- policy do not make the soft delete fail (the Supabase trap)
--
CREATE TABLE regress_docs (id int PRIMARY KEY, owner name NOT NULL, body text);
INSERT INTO regress_docs VALUES (1, 'regress_member', 'mine'), (2, 'postgres', 'theirs'), (3, 'regress_member', 'also mine');
SELECT lifecycle.enable_soft_delete('regress_docs');
ALTER TABLE regress_docs ENABLE ROW LEVEL SECURITY;
CREATE POLICY live ON regress_docs FOR SELECT USING (deleted_at IS NULL);
CREATE POLICY upd_own ON regress_docs FOR UPDATE USING (owner = current_user);
GRANT SELECT, UPDATE, DELETE ON regress_docs TO regress_member;
SET ROLE regress_member;
-- the trap: a plain UPDATE fails its own SELECT policy
UPDATE regress_docs SET deleted_at = now() WHERE id = 1;
SELECT lifecycle.soft_delete('regress_docs', 1);
SELECT lifecycle.soft_delete('regress_docs', 2);             -- visible, not its own
SELECT lifecycle.restore_deleted('regress_docs', 1);         -- hidden once deleted: not there
SELECT lifecycle.permanent_delete('regress_docs', 1);        -- the same
SELECT lifecycle.soft_delete('regress_docs', 99);
SELECT id FROM regress_docs;
RESET ROLE;
-- the UPDATE policy's WITH CHECK applies to the soft delete
ALTER POLICY upd_own ON regress_docs WITH CHECK (deleted_at IS NULL);
SET ROLE regress_member;
SELECT lifecycle.soft_delete('regress_docs', 3);
RESET ROLE;
SELECT id, deleted_at IS NOT NULL AS deleted FROM regress_docs ORDER BY id;
REVOKE UPDATE ON regress_docs FROM regress_member;
SET ROLE regress_member;
SELECT lifecycle.soft_delete('regress_docs', 3);             -- no UPDATE privilege
SELECT lifecycle.enable_soft_delete('regress_docs');         -- not the owner
SELECT lifecycle.cleanup_soft_deleted_records('regress_docs', 0);
RESET ROLE;

--
-- what runs under the switched role cannot be hijacked: statements resolve
-- operators in pg_catalog only, and the tables' own triggers run as the
-- table owner (as foreign-key triggers do), never as the extension owner
--
CREATE ROLE regress_owner;
CREATE SCHEMA regress_evil;
CREATE FUNCTION regress_evil.ts_eq(timestamptz, timestamptz) RETURNS boolean
LANGUAGE plpgsql AS $$ BEGIN RAISE NOTICE 'hijacked as %', current_user; RETURN $1 = $2; END $$;
CREATE OPERATOR regress_evil.= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = regress_evil.ts_eq);
GRANT USAGE ON SCHEMA regress_evil TO PUBLIC;
CREATE TABLE regress_owned (id int PRIMARY KEY);
CREATE TABLE regress_owned_child (id int PRIMARY KEY, parent_id int REFERENCES regress_owned);
CREATE TABLE regress_trigger_log (who name);
GRANT INSERT ON regress_trigger_log TO regress_owner;
GRANT CREATE ON SCHEMA public TO regress_owner;    -- for the _active views
ALTER TABLE regress_owned OWNER TO regress_owner;
ALTER TABLE regress_owned_child OWNER TO regress_owner;
CREATE FUNCTION regress_log_user() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.regress_trigger_log VALUES (current_user); RETURN NEW; END $$;
CREATE TRIGGER log_user AFTER UPDATE ON regress_owned_child FOR EACH ROW EXECUTE FUNCTION regress_log_user();
SET ROLE regress_owner;
SELECT lifecycle.enable_soft_delete('regress_owned');
SELECT lifecycle.enable_soft_delete('regress_owned_child');
INSERT INTO regress_owned VALUES (1);
INSERT INTO regress_owned_child VALUES (1, 1);
RESET ROLE;
SET search_path = regress_evil, pg_catalog, public;
SELECT lifecycle.soft_delete_cascade('public.regress_owned', 1);
SELECT lifecycle.restore_cascade('public.regress_owned', 1);
RESET search_path;
SELECT who, count(*) FROM regress_trigger_log GROUP BY who;
DROP TABLE regress_owned_child, regress_owned, regress_trigger_log CASCADE;
DROP FUNCTION regress_log_user();
SET client_min_messages = warning;
DROP SCHEMA regress_evil CASCADE;
RESET client_min_messages;
REVOKE CREATE ON SCHEMA public FROM regress_owner;
DROP ROLE regress_owner;

--
-- restore never leaves a live row under a deleted one: folder 12 stays
-- deleted because its parent folder 11 stays deleted (folder 10 was
-- deleted by another cascade), though both went with account 1
--
INSERT INTO regress_projects VALUES (5, 'a0000000-0000-4000-8000-000000000002', 'p5');
INSERT INTO regress_folders VALUES (10, 5, NULL), (11, 1, 10), (12, 1, 11);
SELECT lifecycle.soft_delete('regress_accounts', 'a0000000-0000-4000-8000-000000000001');
SELECT lifecycle.soft_delete('regress_folders', 10);
SELECT lifecycle.restore_cascade('regress_accounts', 'a0000000-0000-4000-8000-000000000001');
SELECT id, deleted_at IS NOT NULL AS deleted FROM regress_folders WHERE id >= 10 ORDER BY id;
SELECT count(*) AS live_under_deleted FROM regress_folders c JOIN regress_folders p ON p.id = c.parent_id
 WHERE c.deleted_at IS NULL AND p.deleted_at IS NOT NULL;
SELECT lifecycle.restore_cascade('regress_folders', 10);
SELECT id, deleted_at IS NOT NULL AS deleted FROM regress_folders WHERE id >= 10 ORDER BY id;
DELETE FROM regress_folders WHERE id >= 10;
DELETE FROM regress_projects WHERE id = 5;

--
-- keys compare with the foreign key's own operators (citext: case-blind)
--
CREATE EXTENSION citext;
CREATE TABLE regress_orgs (slug citext PRIMARY KEY);
CREATE TABLE regress_members (id int PRIMARY KEY, org citext REFERENCES regress_orgs);
INSERT INTO regress_orgs VALUES ('Acme');
INSERT INTO regress_members VALUES (1, 'acme');
SELECT lifecycle.enable_soft_delete('regress_orgs');
SELECT lifecycle.enable_soft_delete('regress_members');
SELECT lifecycle.soft_delete_cascade('regress_orgs', 'ACME');
INSERT INTO regress_members VALUES (2, 'ACME');
SELECT lifecycle.restore_cascade('regress_orgs', 'acme');
DROP TABLE regress_members, regress_orgs CASCADE;
DROP EXTENSION citext;

--
-- a cascade follows renamed tables and columns
--
SELECT lifecycle.soft_delete_cascade('regress_datasets', 'd7');
ALTER TABLE regress_columns RENAME TO regress_cols;
ALTER TABLE regress_cols RENAME COLUMN dataset_id TO ds_id;
SELECT lifecycle.restore_cascade('regress_datasets', 'd7');
SELECT lifecycle.soft_delete_cascade('regress_datasets', 'd7');
ALTER TABLE regress_cols RENAME COLUMN ds_id TO dataset_id;
ALTER TABLE regress_cols RENAME TO regress_columns;
SELECT lifecycle.restore_cascade('regress_datasets', 'd7');

--
-- intercepted DELETE of rows that cascade to each other: one cascade,
-- after the statement; refused where a foreign key action would delete
-- or change the kept rows
--
CREATE TABLE regress_comments (id int PRIMARY KEY, parent_id int REFERENCES regress_comments, thread int);
INSERT INTO regress_comments VALUES (1, NULL, 5), (2, 1, 5), (3, 2, 5), (4, NULL, 6);
SELECT lifecycle.enable_soft_delete('regress_comments', intercept_delete => true);
DELETE FROM regress_comments WHERE thread = 5;
SELECT id, deleted_at IS NOT NULL AS deleted FROM regress_comments ORDER BY id;
SELECT count(DISTINCT deleted_at) AS stamps FROM regress_comments WHERE thread = 5;
BEGIN;
SAVEPOINT s;
DELETE FROM regress_comments WHERE id = 4;
ROLLBACK TO s;
DELETE FROM regress_comments WHERE id = 999;                 -- a rolled-back DELETE leaves nothing pending
COMMIT;
SELECT id, deleted_at IS NOT NULL AS deleted FROM regress_comments WHERE id = 4;
CREATE TABLE regress_cascading (id int PRIMARY KEY, comment_id int REFERENCES regress_comments ON DELETE CASCADE);
SELECT lifecycle.enable_soft_delete('regress_cascading', intercept_delete => true);
CREATE TABLE regress_parted_sd (id int PRIMARY KEY) PARTITION BY RANGE (id);
SELECT lifecycle.enable_soft_delete('regress_parted_sd', intercept_delete => true);
DROP TABLE regress_cascading, regress_comments, regress_parted_sd CASCADE;

--
-- only the extension's owner sets the tenant table; its key must be uuid
--
CREATE TABLE public.accounts (id text PRIMARY KEY);
SELECT lifecycle.enable_soft_delete('public.accounts');
SELECT lifecycle.soft_delete_account('a0000000-0000-4000-8000-000000000002');
SELECT lifecycle.restore_account('a0000000-0000-4000-8000-000000000002');
DROP TABLE public.accounts CASCADE;
SET ROLE regress_member;
SELECT lifecycle.set_tenant_table('regress_accounts');
RESET ROLE;

--
-- errors: each clear, nothing changed
--
SELECT lifecycle.soft_delete('regress_notes', 1);            -- not enabled
SELECT lifecycle.soft_delete('regress_tags', 1);             -- no single-column primary key
SELECT lifecycle.soft_delete('regress_projects', NULL::bigint);
SELECT lifecycle.soft_delete(NULL, 1);
SELECT lifecycle.soft_delete('regress_projects_active', 1);  -- a view
SELECT lifecycle.soft_delete('regress_nothing', 1);
SELECT lifecycle.soft_delete_account(NULL);
SELECT lifecycle.set_tenant_table('regress_projects');       -- key is not uuid
SELECT lifecycle.set_tenant_table('regress_notes');          -- not enabled
SELECT lifecycle.soft_delete_account('a0000000-0000-4000-8000-000000000002');

--
-- the tenant table
--
SELECT lifecycle.set_tenant_table('regress_accounts');
SELECT lifecycle.soft_delete_account('a0000000-0000-4000-8000-000000000002');
SELECT lifecycle.restore_account('a0000000-0000-4000-8000-000000000002');
SELECT lifecycle.restore_account('a0000000-0000-4000-8000-000000000002');

--
-- exact restore whatever the foreign-key graph: a self-reference where two
-- users invited each other, a cycle across two tables (a team's lead is
-- one of its members), and a member's buddy in the same table; then the
-- cleanup of the whole soft-deleted cycle
--
CREATE TABLE regress_user_roles (id int PRIMARY KEY, name text);
CREATE TABLE regress_users (id int PRIMARY KEY, account_id uuid REFERENCES regress_accounts,
                            invited_by int REFERENCES regress_users,
                            role_id int REFERENCES regress_user_roles);
CREATE TABLE regress_teams (id int PRIMARY KEY, account_id uuid REFERENCES regress_accounts, lead_id int);
CREATE TABLE regress_team_members (id int PRIMARY KEY, team_id int REFERENCES regress_teams,
                                   buddy int REFERENCES regress_team_members);
ALTER TABLE regress_teams ADD FOREIGN KEY (lead_id) REFERENCES regress_team_members;
SELECT lifecycle.enable_soft_delete(t)
  FROM unnest('{regress_user_roles,regress_users,regress_teams,regress_team_members}'::regclass[]) t;
INSERT INTO regress_accounts VALUES ('a0000000-0000-4000-8000-000000000009', 'cyclic');
INSERT INTO regress_user_roles VALUES (1, 'admin'), (2, 'viewer');
INSERT INTO regress_users VALUES (1, 'a0000000-0000-4000-8000-000000000009', NULL, 1),
                                 (2, 'a0000000-0000-4000-8000-000000000009', 1, 2);
UPDATE regress_users SET invited_by = 2 WHERE id = 1;
INSERT INTO regress_teams VALUES (10, 'a0000000-0000-4000-8000-000000000009', NULL);
INSERT INTO regress_team_members VALUES (100, 10, NULL), (101, 10, 100);
UPDATE regress_teams SET lead_id = 101;
UPDATE regress_team_members SET buddy = 101 WHERE id = 100;
CREATE VIEW regress_cycle_state AS
SELECT 'user' AS kind, id, deleted_at IS NOT NULL AS deleted FROM regress_users
UNION ALL SELECT 'team', id, deleted_at IS NOT NULL FROM regress_teams
UNION ALL SELECT 'member', id, deleted_at IS NOT NULL FROM regress_team_members
UNION ALL SELECT 'account', 9, deleted_at IS NOT NULL FROM regress_accounts
 WHERE id = 'a0000000-0000-4000-8000-000000000009'
ORDER BY 1, 2;
SELECT lifecycle.soft_delete_account('a0000000-0000-4000-8000-000000000009');
SELECT * FROM regress_cycle_state;
SELECT lifecycle.restore_account('a0000000-0000-4000-8000-000000000009');   -- all of it comes back
SELECT * FROM regress_cycle_state;
-- one user of the pair: the other, which it invited and which invited it, comes with it
SELECT lifecycle.soft_delete_cascade('regress_users', 2);
SELECT lifecycle.restore_cascade('regress_users', 1);
SELECT * FROM regress_cycle_state WHERE kind = 'user';
-- any member of a cycle restores the whole cycle its cascade took
SELECT lifecycle.soft_delete('regress_team_members', 100);
SELECT * FROM regress_cycle_state WHERE kind IN ('team', 'member');
SELECT lifecycle.restore_cascade('regress_team_members', 101);
SELECT * FROM regress_cycle_state WHERE kind IN ('team', 'member');
-- a row of a cycle whose other parent stays deleted stays deleted, and so
-- does the rest of its cycle: user 2's role was deleted on its own
SELECT lifecycle.soft_delete_account('a0000000-0000-4000-8000-000000000009');
SELECT lifecycle.soft_delete_cascade('regress_user_roles', 2);
SELECT lifecycle.restore_account('a0000000-0000-4000-8000-000000000009');
SELECT * FROM regress_cycle_state;
SELECT count(*) AS live_under_deleted FROM regress_users c JOIN regress_users p ON p.id = c.invited_by
 WHERE c.deleted_at IS NULL AND p.deleted_at IS NOT NULL;
SELECT lifecycle.restore_cascade('regress_users', 1);            -- its cycle's role is still deleted
SELECT lifecycle.restore_deleted('regress_user_roles', 2);
SELECT lifecycle.restore_cascade('regress_users', 1);
SELECT * FROM regress_cycle_state WHERE kind = 'user';
-- cleanup removes the soft-deleted cycle, in one statement where tables reference each other
SELECT lifecycle.soft_delete_account('a0000000-0000-4000-8000-000000000009');
UPDATE regress_accounts SET deleted_at = deleted_at - interval '100 days'
 WHERE id = 'a0000000-0000-4000-8000-000000000009';
SELECT lifecycle.cleanup_soft_deleted_records('regress_accounts', 90);
SELECT count(*) AS cycle_rows_left FROM regress_cycle_state;
SELECT count(*) AS roles_left FROM regress_user_roles;          -- not below the account
DROP VIEW regress_cycle_state;
DROP TABLE regress_users, regress_user_roles, regress_teams, regress_team_members CASCADE;

--
-- partitioned tables: the root row, and a cascade into partitions
--
CREATE TABLE regress_events (id int PRIMARY KEY, account_id uuid REFERENCES regress_accounts, v text)
    PARTITION BY RANGE (id);
CREATE TABLE regress_events_1 PARTITION OF regress_events FOR VALUES FROM (0) TO (100);
CREATE TABLE regress_events_2 PARTITION OF regress_events FOR VALUES FROM (100) TO (200);
SELECT lifecycle.enable_soft_delete('regress_events');
INSERT INTO regress_events VALUES (1, 'a0000000-0000-4000-8000-000000000002', 'x'),
                                  (150, 'a0000000-0000-4000-8000-000000000002', 'y'),
                                  (2, 'a0000000-0000-4000-8000-000000000001', 'z');
SELECT lifecycle.soft_delete('regress_events', 150);
SELECT lifecycle.soft_delete('regress_events', 1);
SELECT tableoid::regclass, id, deleted_at IS NOT NULL AS deleted FROM regress_events ORDER BY id;
SELECT lifecycle.restore_deleted('regress_events', 150);
SELECT lifecycle.soft_delete_account('a0000000-0000-4000-8000-000000000002');
SELECT tableoid::regclass, id, deleted_at IS NOT NULL AS deleted FROM regress_events ORDER BY id;
SELECT lifecycle.restore_account('a0000000-0000-4000-8000-000000000002');   -- 1 stays: deleted before
SELECT tableoid::regclass, id, deleted_at IS NOT NULL AS deleted FROM regress_events ORDER BY id;
DROP TABLE regress_events CASCADE;

--
-- a child table of another owner, in a schema the caller may not use: the
-- cascade reaches it as its owner (as a foreign key's action would), and
-- neither blocks the parent's owner
--
CREATE ROLE regress_other;
CREATE SCHEMA regress_private AUTHORIZATION regress_other;
GRANT REFERENCES ON regress_projects TO regress_other;
SET ROLE regress_other;
CREATE TABLE regress_private.attachments (id int PRIMARY KEY,
                                          project_id bigint REFERENCES public.regress_projects, name text);
SELECT lifecycle.enable_soft_delete('regress_private.attachments');
INSERT INTO regress_private.attachments VALUES (1, 1, 'spec.pdf'), (2, 2, 'logo.png');
RESET ROLE;
SET ROLE regress_member;
SELECT has_schema_privilege('regress_private', 'USAGE') AS member_uses_the_schema;
RESET ROLE;
GRANT UPDATE ON regress_projects TO regress_member;
GRANT SELECT ON regress_projects TO regress_member;
SET ROLE regress_member;
SELECT lifecycle.soft_delete_cascade('regress_projects', 1);
SELECT lifecycle.restore_cascade('regress_projects', 1);
RESET ROLE;
SELECT lifecycle.soft_delete_cascade('regress_projects', 2);
SET ROLE regress_other;
SELECT id, deleted_at IS NOT NULL AS deleted FROM regress_private.attachments ORDER BY id;
RESET ROLE;
SELECT lifecycle.restore_cascade('regress_projects', 2);
REVOKE ALL ON regress_projects FROM regress_member;
SET client_min_messages = warning;
DROP SCHEMA regress_private CASCADE;
RESET client_min_messages;
REVOKE ALL ON regress_projects FROM regress_other;
DROP ROLE regress_other;

--
-- bad input changes nothing: a key that is not one value of the key's type,
-- the extension's own tables, and its triggers attached by hand
--
SELECT lifecycle.soft_delete('regress_projects', ARRAY[2]);
SELECT lifecycle.soft_delete('regress_projects', '[2]'::jsonb);
SELECT lifecycle.soft_delete('regress_accounts', ARRAY['a0000000-0000-4000-8000-000000000001'::uuid]);
SELECT lifecycle.soft_delete('regress_projects', 2.0);           -- numeric would round: refused
SELECT lifecycle.soft_delete('regress_projects', 2::smallint);   -- another integer type is fine
SELECT lifecycle.soft_delete('regress_columns', 424242::bigint);  -- bigint for an integer key: no such row
SELECT lifecycle.soft_delete('regress_columns', 4242424242);      -- ... and one that does not fit: an error
SELECT lifecycle.restore_deleted('regress_projects', 2);
SELECT lifecycle.enable_soft_delete('lifecycle.audit_log');
SELECT lifecycle.enable_soft_delete('lifecycle.soft_delete_tables');
SELECT count(*) AS columns_added FROM pg_attribute
 WHERE attrelid = 'lifecycle.audit_log'::regclass AND attname IN ('deleted_at', 'deleted_by');
CREATE TABLE regress_plain (id int PRIMARY KEY, v text);
CREATE TRIGGER hand_made BEFORE DELETE ON regress_plain
    FOR EACH ROW EXECUTE FUNCTION lifecycle.soft_delete_intercept();
INSERT INTO regress_plain VALUES (1, 'kept');
DELETE FROM regress_plain;
DROP TRIGGER hand_made ON regress_plain;
CREATE TRIGGER lifecycle_soft_delete_intercept BEFORE DELETE ON regress_plain
    FOR EACH ROW EXECUTE FUNCTION lifecycle.soft_delete_intercept();
DELETE FROM regress_plain;                                        -- the right name, not registered
DROP TRIGGER lifecycle_soft_delete_intercept ON regress_plain;
CREATE TRIGGER lifecycle_soft_delete_guard_ins AFTER INSERT ON regress_plain
    FOR EACH ROW EXECUTE FUNCTION lifecycle.soft_delete_guard();
INSERT INTO regress_plain VALUES (2, 'guarded by hand');
DROP TRIGGER lifecycle_soft_delete_guard_ins ON regress_plain;
CREATE TRIGGER lifecycle_soft_delete_guard_ins AFTER INSERT ON regress_plain
    FOR EACH STATEMENT EXECUTE FUNCTION lifecycle.soft_delete_guard();
INSERT INTO regress_plain VALUES (3, 'at the wrong level');
SELECT * FROM regress_plain;
DROP TABLE regress_plain;

--
-- a leaf table that gains an enabled child: the next cascade reaches it
-- (the cascade into a childless table is a plain UPDATE, its plan cached per table)
--
CREATE TABLE regress_leaf_parent (id int PRIMARY KEY);
CREATE TABLE regress_leaf (id int PRIMARY KEY, parent_id int REFERENCES regress_leaf_parent);
SELECT lifecycle.enable_soft_delete('regress_leaf_parent'), lifecycle.enable_soft_delete('regress_leaf');
INSERT INTO regress_leaf_parent VALUES (1), (2);
INSERT INTO regress_leaf VALUES (10, 1), (11, 1), (20, 2);
SELECT lifecycle.soft_delete('regress_leaf_parent', 1) AS leaf_cascade;
CREATE TABLE regress_leaf_child (id int PRIMARY KEY, leaf_id int REFERENCES regress_leaf);
INSERT INTO regress_leaf_child VALUES (200, 20), (201, 20);
SELECT lifecycle.enable_soft_delete('regress_leaf_child');
SELECT lifecycle.soft_delete('regress_leaf_parent', 2) AS cascade_after_growth;
SELECT 'leaf' AS t, id, deleted_at IS NOT NULL AS deleted FROM regress_leaf
UNION ALL SELECT 'child', id, deleted_at IS NOT NULL FROM regress_leaf_child ORDER BY 1, 2;
SELECT lifecycle.restore_cascade('regress_leaf_parent', 2) AS restored;
SELECT count(*) FILTER (WHERE deleted_at IS NULL) AS live_children FROM regress_leaf_child;
SET client_min_messages = warning;
DROP TABLE regress_leaf_child, regress_leaf, regress_leaf_parent CASCADE;
RESET client_min_messages;

--
-- a rule on UPDATE of a table a cascade writes stops the cascade, whatever
-- the rule: an INSTEAD UPDATE of another table would be counted as the
-- table's rows, a conditional INSTEAD would leave rows live under a
-- deleted parent, an ALSO rule would write more than the cascade names;
-- nothing changes, the rule's own writes included
--
CREATE TABLE regress_rule_parent (id int PRIMARY KEY);
CREATE TABLE regress_rule_mid (id int PRIMARY KEY, parent_id int REFERENCES regress_rule_parent);
CREATE TABLE regress_rule_leaf (id int PRIMARY KEY, mid_id int REFERENCES regress_rule_mid,
                                flag boolean NOT NULL DEFAULT false);
CREATE TABLE regress_rule_seen (leaf_id int, deleted boolean, deleted_at timestamptz);
SELECT lifecycle.enable_soft_delete('regress_rule_parent'), lifecycle.enable_soft_delete('regress_rule_mid'),
       lifecycle.enable_soft_delete('regress_rule_leaf');
INSERT INTO regress_rule_parent VALUES (1), (2);
INSERT INTO regress_rule_mid VALUES (10, 1), (20, 2);
INSERT INTO regress_rule_leaf VALUES (100, 10, true), (101, 10, false), (200, 20, false);
INSERT INTO regress_rule_seen SELECT g, false FROM generate_series(1, 50) g;
SELECT lifecycle.soft_delete('regress_rule_parent', 1) AS deleted_before_rules;   -- a plain cascade is cached
SELECT lifecycle.restore_cascade('regress_rule_parent', 1) AS restored_before_rules;
CREATE RULE regress_r AS ON UPDATE TO regress_rule_leaf
    DO INSTEAD UPDATE regress_rule_seen SET deleted_at = new.deleted_at;
SELECT lifecycle.soft_delete('regress_rule_parent', 1);
DROP RULE regress_r ON regress_rule_leaf;
CREATE RULE regress_r AS ON UPDATE TO regress_rule_leaf WHERE old.flag DO INSTEAD NOTHING;
SELECT lifecycle.soft_delete('regress_rule_parent', 1);
DROP RULE regress_r ON regress_rule_leaf;
CREATE RULE regress_r AS ON UPDATE TO regress_rule_leaf
    DO ALSO INSERT INTO regress_rule_seen VALUES (old.id, new.deleted_at IS NOT NULL);
SELECT lifecycle.soft_delete('regress_rule_parent', 1);
SELECT 'parent' AS t, id, deleted_at IS NOT NULL AS deleted FROM regress_rule_parent WHERE id = 1
UNION ALL SELECT 'leaf', id, deleted_at IS NOT NULL FROM regress_rule_leaf WHERE mid_id = 10 ORDER BY 1, 2;
SELECT count(*) AS seen, count(deleted_at) AS seen_stamped FROM regress_rule_seen;
-- the restore of a leaf table is refused alike, and changes nothing
DROP RULE regress_r ON regress_rule_leaf;
SELECT lifecycle.soft_delete('regress_rule_parent', 1) AS deleted_without_rules;
CREATE RULE regress_r AS ON UPDATE TO regress_rule_leaf WHERE NOT old.flag DO INSTEAD NOTHING;
SELECT lifecycle.restore_cascade('regress_rule_parent', 1);
SELECT 'parent' AS t, id, deleted_at IS NOT NULL AS deleted FROM regress_rule_parent WHERE id = 1
UNION ALL SELECT 'leaf', id, deleted_at IS NOT NULL FROM regress_rule_leaf WHERE mid_id = 10 ORDER BY 1, 2;
DROP RULE regress_r ON regress_rule_leaf;
SELECT lifecycle.restore_cascade('regress_rule_parent', 1) AS restored_without_rules;
-- a table with children: the same
CREATE RULE regress_r_mid AS ON UPDATE TO regress_rule_mid
    DO ALSO INSERT INTO regress_rule_seen VALUES (old.id, new.deleted_at IS NOT NULL);
SELECT lifecycle.soft_delete('regress_rule_parent', 2);
SELECT 'parent' AS t, id, deleted_at IS NOT NULL AS deleted FROM regress_rule_parent WHERE id = 2
UNION ALL SELECT 'leaf', id, deleted_at IS NOT NULL FROM regress_rule_leaf WHERE id = 200;
SELECT count(*) AS seen FROM regress_rule_seen;
SET client_min_messages = warning;
DROP TABLE regress_rule_leaf, regress_rule_mid, regress_rule_parent, regress_rule_seen CASCADE;
RESET client_min_messages;

--
-- disable_soft_delete keeps the columns and their data; dropping forgets
--
SELECT lifecycle.soft_delete('regress_columns', 6);
SELECT lifecycle.disable_soft_delete('regress_columns');
SELECT lifecycle.disable_soft_delete('regress_columns');
SELECT count(*) AS views FROM pg_class WHERE relname = 'regress_columns_active';
SELECT count(*) FILTER (WHERE deleted_at IS NOT NULL) AS still_marked FROM regress_columns;
DROP TABLE regress_tags CASCADE;
SELECT relid FROM lifecycle.soft_delete_tables ORDER BY relid::text;

SET client_min_messages = warning;
DROP TABLE regress_docs, regress_notes, regress_folders, regress_columns, regress_datasets,
           regress_projects, regress_accounts, regress_wrong CASCADE;
RESET client_min_messages;
SELECT count(*) AS tables_left FROM lifecycle.soft_delete_tables;
SELECT count(*) AS tenant_left FROM lifecycle.soft_delete_tenant;
RESET request.jwt.claims;
DROP ROLE regress_member;
DROP EXTENSION pg_lifecycle;
