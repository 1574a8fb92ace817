--
-- On a Supabase-style database (test/fixtures/supabase.sql loaded; run only
-- in that pass): current_actor() agrees with auth.uid(), the API roles get
-- what they need and no more, and writes through PostgREST's roles are
-- stamped with the JWT's user.
--
CREATE EXTENSION pg_lifecycle;
SET timezone = 'UTC';

-- Same answer as auth.uid()/auth.role() wherever auth.uid() has one.
CREATE FUNCTION regress_compare(sub_claim text, claims text)
RETURNS TABLE (ours uuid, theirs uuid, our_role text, their_role text)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('request.jwt.claim.sub', coalesce(sub_claim, ''), true);
    PERFORM set_config('request.jwt.claims', coalesce(claims, ''), true);
    RETURN QUERY SELECT lifecycle.current_actor(), auth.uid(),
                        lifecycle.current_actor_role(), auth.role();
END
$$;
SELECT c.*
  FROM (VALUES (NULL, '{"sub": "8d4a3b4e-95f7-4c7e-8e8f-2b1c6d0a9e11", "role": "authenticated"}'),
               ('0b7f9e5c-0000-4000-8000-000000000001', '{"sub": "8d4a3b4e-95f7-4c7e-8e8f-2b1c6d0a9e11", "role": "anon"}'),
               ('', '{"role": "service_role"}'),
               (NULL, NULL)) v(s, c),
       LATERAL regress_compare(v.s, v.c) c;

-- The API roles may call the actor functions (RLS policies use them) but
-- cannot read or change the configuration.
SELECT r.rolname,
       has_schema_privilege(r.rolname, 'lifecycle', 'USAGE') AS schema_usage,
       has_function_privilege(r.rolname, 'lifecycle.current_actor()', 'EXECUTE') AS current_actor,
       has_table_privilege(r.rolname, 'lifecycle.updated_at_tables', 'SELECT') AS read_config,
       has_table_privilege(r.rolname, 'lifecycle.updated_at_tables', 'INSERT,UPDATE,DELETE') AS write_config
  FROM pg_roles r WHERE r.rolname IN ('anon', 'authenticated', 'service_role')
 ORDER BY 1;

-- A table as Supabase projects write it, RLS on, owner-only updates.
CREATE TABLE public.regress_projects (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id   uuid NOT NULL DEFAULT auth.uid(),
    name       text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by uuid
);
ALTER TABLE public.regress_projects ENABLE ROW LEVEL SECURITY;
CREATE POLICY owner_all ON public.regress_projects TO authenticated
    USING (owner_id = auth.uid()) WITH CHECK (owner_id = auth.uid());
SELECT lifecycle.enable_updated_at('public.regress_projects', 'updated_at', 'updated_by');
INSERT INTO public.regress_projects (id, owner_id, name, updated_at) VALUES
    ('aaaaaaaa-0000-4000-8000-000000000001', '8d4a3b4e-95f7-4c7e-8e8f-2b1c6d0a9e11', 'alpha', '2000-01-01'),
    ('aaaaaaaa-0000-4000-8000-000000000002', '0b7f9e5c-0000-4000-8000-000000000001', 'beta', '2000-01-01');

-- An authenticated request, as PostgREST makes it.
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = '{"sub": "8d4a3b4e-95f7-4c7e-8e8f-2b1c6d0a9e11", "role": "authenticated"}';
UPDATE public.regress_projects SET name = 'alpha 2';
SELECT name, updated_at = now() AS stamped_now, updated_by FROM public.regress_projects;
COMMIT;

-- anon sees and changes nothing here (no policy for it).
BEGIN;
SET LOCAL ROLE anon;
SET LOCAL request.jwt.claims = '{"role": "anon"}';
UPDATE public.regress_projects SET name = 'hacked';
COMMIT;

-- service_role bypasses RLS; with no user in the token the actor is NULL.
BEGIN;
SET LOCAL ROLE service_role;
SET LOCAL request.jwt.claims = '{"role": "service_role"}';
SELECT lifecycle.current_actor_role();
UPDATE public.regress_projects SET name = 'beta 2' WHERE name = 'beta';
COMMIT;
SELECT name, updated_at > '2000-01-01' AS stamped, updated_by
  FROM public.regress_projects ORDER BY name;

-- service_role may read which tables are stamped; the API roles may not
-- enable stamping on tables they do not own.
SET ROLE service_role;
SELECT relid, timestamp_column, actor_column FROM lifecycle.updated_at_tables;
SELECT lifecycle.enable_updated_at('public.regress_projects');
RESET ROLE;
SET ROLE authenticated;
SELECT lifecycle.disable_updated_at('public.regress_projects');
RESET ROLE;

DROP TABLE public.regress_projects;

--
-- Soft delete through the API roles: each acts with its own authority on
-- the root row; the cascade below it follows with the root's authority.
--
CREATE TABLE public.regress_tenants (id uuid PRIMARY KEY, name text);
CREATE TABLE public.regress_members (tenant_id uuid REFERENCES public.regress_tenants,
                                     user_id uuid, is_admin boolean,
                                     PRIMARY KEY (tenant_id, user_id));
CREATE TABLE public.regress_items (id int PRIMARY KEY, tenant_id uuid NOT NULL REFERENCES public.regress_tenants,
                                   name text);
SELECT lifecycle.enable_soft_delete(t)
  FROM unnest('{public.regress_tenants,public.regress_members,public.regress_items}'::regclass[]) t;
SELECT lifecycle.set_tenant_table('public.regress_tenants');
CREATE FUNCTION public.regress_my_tenants(admin_only boolean) RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT tenant_id FROM public.regress_members
     WHERE user_id = auth.uid() AND deleted_at IS NULL AND (is_admin OR NOT admin_only)
$$;
ALTER TABLE public.regress_tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.regress_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.regress_items ENABLE ROW LEVEL SECURITY;
-- the usual Supabase policies: members see live rows, admins close tenants
CREATE POLICY see ON public.regress_tenants FOR SELECT TO authenticated
    USING (deleted_at IS NULL AND id IN (SELECT public.regress_my_tenants(false)));
CREATE POLICY close ON public.regress_tenants FOR UPDATE TO authenticated
    USING (id IN (SELECT public.regress_my_tenants(true)));
CREATE POLICY see ON public.regress_items FOR SELECT TO authenticated
    USING (deleted_at IS NULL AND tenant_id IN (SELECT public.regress_my_tenants(false)));
CREATE POLICY edit ON public.regress_items FOR UPDATE TO authenticated
    USING (tenant_id IN (SELECT public.regress_my_tenants(false)));
INSERT INTO public.regress_tenants VALUES ('70000000-0000-4000-8000-000000000001', 'acme'),
                                          ('70000000-0000-4000-8000-000000000002', 'globex');
INSERT INTO public.regress_members VALUES
    ('70000000-0000-4000-8000-000000000001', 'a11ce000-0000-4000-8000-000000000001', true),
    ('70000000-0000-4000-8000-000000000001', 'b0b00000-0000-4000-8000-000000000002', false),
    ('70000000-0000-4000-8000-000000000002', 'ca201000-0000-4000-8000-000000000003', true);
INSERT INTO public.regress_items SELECT g, '70000000-0000-4000-8000-000000000001', 'item ' || g
  FROM generate_series(1, 5) g;
INSERT INTO public.regress_items VALUES (6, '70000000-0000-4000-8000-000000000002', 'globex item');

-- anon: its policies show it nothing, so for anon the tenant is not there
-- (an empty report, nothing changed, and nothing said about the row)
BEGIN;
SET LOCAL ROLE anon;
SET LOCAL request.jwt.claims = '{"role": "anon"}';
SELECT lifecycle.soft_delete_account('70000000-0000-4000-8000-000000000001');
ROLLBACK;
-- bob, a member: may soft-delete an item (its SELECT policy hides deleted
-- items, which makes a plain UPDATE fail); he sees the tenant but may not
-- close it: permission denied
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = '{"sub": "b0b00000-0000-4000-8000-000000000002", "role": "authenticated"}';
SELECT lifecycle.soft_delete('public.regress_items', 1);
COMMIT;
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = '{"sub": "b0b00000-0000-4000-8000-000000000002", "role": "authenticated"}';
SELECT lifecycle.soft_delete('public.regress_items', 6);   -- another tenant's item: not there for bob
ROLLBACK;
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = '{"sub": "b0b00000-0000-4000-8000-000000000002", "role": "authenticated"}';
SELECT lifecycle.soft_delete_account('70000000-0000-4000-8000-000000000001');
ROLLBACK;
-- alice, the admin, closes the tenant: members and items go with it, though
-- she may not update them herself
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = '{"sub": "a11ce000-0000-4000-8000-000000000001", "role": "authenticated"}';
SELECT lifecycle.soft_delete_account('70000000-0000-4000-8000-000000000001');
-- once closed, her policies hide the tenant: for her it is not there
SELECT lifecycle.restore_account('70000000-0000-4000-8000-000000000001');
ROLLBACK;
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = '{"sub": "a11ce000-0000-4000-8000-000000000001", "role": "authenticated"}';
SELECT lifecycle.soft_delete_account('70000000-0000-4000-8000-000000000001');
COMMIT;
SELECT deleted_by, count(*) FROM public.regress_items GROUP BY 1 ORDER BY 1;
-- service_role (BYPASSRLS) restores exactly what the closing removed:
-- bob's earlier delete of item 1 stays
BEGIN;
SET LOCAL ROLE service_role;
SET LOCAL request.jwt.claims = '{"role": "service_role"}';
SELECT lifecycle.restore_account('70000000-0000-4000-8000-000000000001');
SELECT * FROM lifecycle.soft_delete_stats ORDER BY table_name::text;
COMMIT;
-- the stats view is for the owner and service_role (it lists every enabled table)
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = '{"sub": "ca201000-0000-4000-8000-000000000003", "role": "authenticated"}';
SELECT table_name, active_count, deleted_count FROM lifecycle.soft_delete_stats ORDER BY table_name::text;
ROLLBACK;
SELECT id, deleted_at IS NOT NULL AS deleted FROM public.regress_items ORDER BY id;

SET client_min_messages = warning;
DROP TABLE public.regress_items, public.regress_members, public.regress_tenants CASCADE;
RESET client_min_messages;
DROP FUNCTION public.regress_my_tenants(boolean);

--
-- The audit log through the API roles: writes by anon and authenticated are
-- logged; service_role reads everything, authenticated only its own
-- changes, anon nothing, and nobody writes the log directly.
--
CREATE TABLE public.regress_notes (id int PRIMARY KEY, body text);
SELECT lifecycle.enable_audit('public.regress_notes');
ALTER TABLE public.regress_notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY anyone ON public.regress_notes TO anon, authenticated USING (true) WITH CHECK (true);
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = '{"sub": "a11ce000-0000-4000-8000-000000000001", "role": "authenticated"}';
SET LOCAL request.headers = '{"x-forwarded-for": "198.51.100.7"}';
INSERT INTO public.regress_notes VALUES (1, 'by alice');
COMMIT;
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = '{"sub": "b0b00000-0000-4000-8000-000000000002", "role": "authenticated"}';
INSERT INTO public.regress_notes VALUES (2, 'by bob');
UPDATE public.regress_notes SET body = 'bob was here';
COMMIT;
BEGIN;
SET LOCAL ROLE anon;
SET LOCAL request.jwt.claims = '{"role": "anon"}';
INSERT INTO public.regress_notes VALUES (3, 'by anon');
SELECT count(*) FROM lifecycle.audit_log;
ROLLBACK;
BEGIN;
SET LOCAL ROLE anon;
SET LOCAL request.jwt.claims = '{"role": "anon"}';
INSERT INTO public.regress_notes VALUES (3, 'by anon');
COMMIT;
-- alice sees her own change only, through the view; the log itself is closed to her
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = '{"sub": "a11ce000-0000-4000-8000-000000000001", "role": "authenticated"}';
SELECT op, record_id, actor_role, db_user, client_addr FROM lifecycle.audit_log_visible ORDER BY id;
SAVEPOINT s;
SELECT count(*) FROM lifecycle.audit_log;
ROLLBACK TO SAVEPOINT s;
INSERT INTO lifecycle.audit_log (occurred_at, txid, schema_name, table_name, op, db_user)
VALUES (now(), 1, 'public', 'regress_notes', 'DELETE', 'authenticated');
ROLLBACK;
-- service_role sees all of it, anon's write included
BEGIN;
SET LOCAL ROLE service_role;
SELECT op, record_id, actor_id, actor_role, db_user FROM lifecycle.audit_log ORDER BY id;
DELETE FROM lifecycle.audit_log;
ROLLBACK;
SET client_min_messages = warning;
DROP TABLE public.regress_notes;
RESET client_min_messages;

-- Usage counters under RLS: alice (authenticated) sees only her account
-- and may not update it, yet her inserts are counted and limited; she
-- may meter her own usage but not lower it, nor touch another account.
CREATE TABLE public.regress_orgs (
    id             uuid PRIMARY KEY,
    owner_id       uuid NOT NULL,
    project_count  integer NOT NULL DEFAULT 0,
    max_projects   integer,
    ai_requests    integer NOT NULL DEFAULT 0,
    max_ai         integer
);
ALTER TABLE public.regress_orgs ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_org ON public.regress_orgs FOR SELECT TO authenticated
    USING (owner_id = auth.uid());
CREATE POLICY own_org_update ON public.regress_orgs FOR UPDATE TO authenticated
    USING (owner_id = auth.uid());
GRANT SELECT, UPDATE ON public.regress_orgs TO authenticated;
CREATE TABLE public.regress_org_projects (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES public.regress_orgs,
    name   text
);
ALTER TABLE public.regress_org_projects ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_projects ON public.regress_org_projects TO authenticated
    USING (org_id IN (SELECT id FROM public.regress_orgs)) WITH CHECK (org_id IN (SELECT id FROM public.regress_orgs));
GRANT SELECT, INSERT, DELETE ON public.regress_org_projects TO authenticated;
INSERT INTO public.regress_orgs (id, owner_id, max_projects, max_ai) VALUES
    ('0a000000-0000-4000-8000-00000000000a', 'a11ce000-0000-4000-8000-000000000001', 2, 5),
    ('0b000000-0000-4000-8000-00000000000b', 'b0b00000-0000-4000-8000-000000000002', NULL, NULL);
SELECT lifecycle.track_usage('org_projects', 'public.regress_orgs', 'project_count',
                             'public.regress_org_projects', 'org_id', 'max_projects');
SELECT lifecycle.track_usage('org_ai', 'public.regress_orgs', 'ai_requests', NULL, NULL, 'max_ai');
-- her inserts are counted even while she may not update the accounts at all
REVOKE UPDATE ON public.regress_orgs FROM authenticated;
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = '{"sub": "a11ce000-0000-4000-8000-000000000001", "role": "authenticated"}';
SELECT has_table_privilege('public.regress_orgs', 'UPDATE') AS may_update_accounts;
INSERT INTO public.regress_org_projects (org_id, name) VALUES ('0a000000-0000-4000-8000-00000000000a', 'one');
INSERT INTO public.regress_org_projects (org_id, name) VALUES ('0a000000-0000-4000-8000-00000000000a', 'two');
SELECT id, project_count FROM public.regress_orgs;
SAVEPOINT s;
INSERT INTO public.regress_org_projects (org_id, name) VALUES ('0a000000-0000-4000-8000-00000000000a', 'three');
ROLLBACK TO SAVEPOINT s;
COMMIT;
GRANT UPDATE ON public.regress_orgs TO authenticated;
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = '{"sub": "a11ce000-0000-4000-8000-000000000001", "role": "authenticated"}';
SAVEPOINT s;
-- with update rights she may update her account, but not its counter
UPDATE public.regress_orgs SET project_count = 0;
ROLLBACK TO SAVEPOINT s;
SELECT lifecycle.increment_usage_counter('0a000000-0000-4000-8000-00000000000a', 'org_ai', 2);
SAVEPOINT s2;
-- bob's account is hidden from her, and she may not lower her usage
SELECT lifecycle.increment_usage_counter('0b000000-0000-4000-8000-00000000000b', 'org_ai', 2);
ROLLBACK TO SAVEPOINT s2;
SELECT lifecycle.decrement_usage_counter('0a000000-0000-4000-8000-00000000000a', 'org_ai', 1);
ROLLBACK TO SAVEPOINT s2;
SELECT * FROM lifecycle.calculate_account_usage('0a000000-0000-4000-8000-00000000000a');
SELECT * FROM lifecycle.calculate_account_usage('0b000000-0000-4000-8000-00000000000b');
ROLLBACK TO SAVEPOINT s2;
SELECT account_id, resource_type, quantity, actor_id FROM lifecycle.usage_events;
COMMIT;
-- service_role (BYPASSRLS) may lower and reset; the ledger names alice
BEGIN;
SET LOCAL ROLE service_role;
SELECT lifecycle.decrement_usage_counter('0a000000-0000-4000-8000-00000000000a', 'org_ai', 1);
SELECT lifecycle.reset_usage_counter('org_ai');
SELECT account_id, resource_type, quantity, actor_id FROM lifecycle.usage_events ORDER BY id;
COMMIT;
SELECT id, project_count, ai_requests FROM public.regress_orgs ORDER BY id;
-- anon sees no accounts: nothing to meter
BEGIN;
SET LOCAL ROLE anon;
SELECT lifecycle.increment_usage_counter('0a000000-0000-4000-8000-00000000000a', 'org_ai');
ROLLBACK;
SET client_min_messages = warning;
DROP TABLE public.regress_org_projects, public.regress_orgs;
RESET client_min_messages;

--
-- What an API user may learn, through PostgREST-style requests (role
-- switched and claims set per transaction): the audit log shows a user
-- only what it could have SELECTed from the audited table, and errors say
-- nothing about another tenant's rows.
--
CREATE TABLE public.regress_t_accounts (id uuid PRIMARY KEY, owner_id uuid NOT NULL,
                                        n_shares int NOT NULL DEFAULT 0, max_shares int);
CREATE TABLE public.regress_t_docs (id int PRIMARY KEY, account_id uuid NOT NULL REFERENCES public.regress_t_accounts,
                                    body text, internal_score int DEFAULT 42);
CREATE TABLE public.regress_t_comments (id int PRIMARY KEY,
                                        doc_id int REFERENCES public.regress_t_docs ON DELETE CASCADE,
                                        author_id uuid, body text);
CREATE TABLE public.regress_t_shares (id int PRIMARY KEY, doc_id int REFERENCES public.regress_t_docs ON DELETE CASCADE,
                                      account_id uuid REFERENCES public.regress_t_accounts);
SELECT lifecycle.enable_soft_delete(t) FROM unnest('{public.regress_t_accounts,public.regress_t_docs,public.regress_t_comments,public.regress_t_shares}'::regclass[]) t;
SELECT lifecycle.enable_audit('public.regress_t_docs');
SELECT lifecycle.enable_audit('public.regress_t_comments');
SELECT lifecycle.track_usage('shares', 'public.regress_t_accounts', 'n_shares',
                             'public.regress_t_shares', 'account_id', 'max_shares');
ALTER TABLE public.regress_t_accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.regress_t_docs ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.regress_t_comments ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.regress_t_shares ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON public.regress_t_accounts TO authenticated USING (owner_id = auth.uid());
CREATE POLICY own ON public.regress_t_docs TO authenticated
    USING (account_id IN (SELECT id FROM public.regress_t_accounts)) WITH CHECK (true);
CREATE POLICY own ON public.regress_t_comments TO authenticated
    USING (author_id = auth.uid()) WITH CHECK (author_id = auth.uid());
CREATE POLICY own ON public.regress_t_shares TO authenticated
    USING (doc_id IN (SELECT id FROM public.regress_t_docs)) WITH CHECK (doc_id IN (SELECT id FROM public.regress_t_docs));
-- authenticated may not read a doc's internal score (it may still write it)
REVOKE SELECT ON public.regress_t_docs FROM authenticated;
GRANT SELECT (id, account_id, body, deleted_at, deleted_by) ON public.regress_t_docs TO authenticated;
INSERT INTO public.regress_t_accounts (id, owner_id, max_shares) VALUES
    ('aaaa0000-0000-4000-8000-00000000000a', 'a11ce000-0000-4000-8000-000000000001', 5),
    ('bbbb0000-0000-4000-8000-00000000000b', 'b0b00000-0000-4000-8000-000000000002', 1);
INSERT INTO public.regress_t_docs (id, account_id, body) VALUES (2, 'bbbb0000-0000-4000-8000-00000000000b', 'bob''s');
-- alice writes: a doc (its score from the default), a change of the score
-- only, a change of the body; a comment; a share with bob's account
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "a11ce000-0000-4000-8000-000000000001", "role": "authenticated"}', true);
INSERT INTO public.regress_t_docs (id, account_id, body) VALUES (1, 'aaaa0000-0000-4000-8000-00000000000a', 'v1');
UPDATE public.regress_t_docs SET internal_score = 7 WHERE id = 1;
UPDATE public.regress_t_docs SET body = 'v2' WHERE id = 1;
INSERT INTO public.regress_t_comments VALUES (11, 1, 'a11ce000-0000-4000-8000-000000000001', 'mine');
INSERT INTO public.regress_t_shares VALUES (100, 1, 'bbbb0000-0000-4000-8000-00000000000b');
COMMIT;
-- bob comments on alice's doc
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "b0b00000-0000-4000-8000-000000000002", "role": "authenticated"}', true);
INSERT INTO public.regress_t_comments VALUES (10, 1, 'b0b00000-0000-4000-8000-000000000002', 'bob''s');
COMMIT;
-- what alice reads of the log: her own changes, without the score (not
-- the score-only UPDATE at all), not bob's comment
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "a11ce000-0000-4000-8000-000000000001", "role": "authenticated"}', true);
SELECT table_name, op, record_id, old_values, new_values, changed_columns
  FROM lifecycle.audit_log_visible ORDER BY id;
SELECT op, new_values FROM lifecycle.record_history('public.regress_t_docs', '1');
SELECT lifecycle.record_at('public.regress_t_docs', '1', now());
COMMIT;
-- the log holds the score all the same, for those who may read it
SELECT op, new_values->'internal_score' AS score, changed_columns
  FROM lifecycle.audit_log WHERE table_name = 'regress_t_docs' AND record_id = '1' ORDER BY id;
-- alice soft-deletes her doc (the share with bob goes with it), bob's
-- account gets another share meanwhile, and alice restores: the share
-- would pass bob's limit, and alice learns no more than that
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "a11ce000-0000-4000-8000-000000000001", "role": "authenticated"}', true);
SELECT lifecycle.soft_delete_cascade('public.regress_t_docs', 1);
COMMIT;
INSERT INTO public.regress_t_shares VALUES (101, 2, 'bbbb0000-0000-4000-8000-00000000000b');
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "a11ce000-0000-4000-8000-000000000001", "role": "authenticated"}', true);
SELECT lifecycle.restore_cascade('public.regress_t_docs', 1);
ROLLBACK;
BEGIN;
SET LOCAL ROLE service_role;
SELECT lifecycle.restore_cascade('public.regress_t_docs', 1);   -- service_role sees the account
ROLLBACK;
-- bob, who cannot see alice's docs, references her soft-deleted doc: the
-- same error as for a doc that does not exist
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "b0b00000-0000-4000-8000-000000000002", "role": "authenticated"}', true);
SAVEPOINT s;
INSERT INTO public.regress_t_comments VALUES (12, 1, 'b0b00000-0000-4000-8000-000000000002', 'on a deleted doc');
ROLLBACK TO SAVEPOINT s;
INSERT INTO public.regress_t_comments VALUES (13, 999, 'b0b00000-0000-4000-8000-000000000002', 'on no doc');
ROLLBACK;
-- alice, who may see it, is told it is soft-deleted
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "a11ce000-0000-4000-8000-000000000001", "role": "authenticated"}', true);
INSERT INTO public.regress_t_comments VALUES (14, 1, 'a11ce000-0000-4000-8000-000000000001', 'on my deleted doc');
ROLLBACK;
-- alice deletes her doc for good: the foreign key's cascade deletes bob's
-- comment (and hers) as the table's owner, logged under alice's actor id;
-- alice does not see those deletions, service_role does
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "a11ce000-0000-4000-8000-000000000001", "role": "authenticated"}', true);
SELECT lifecycle.permanent_delete('public.regress_t_docs', 1);
SELECT table_name, op, record_id FROM lifecycle.audit_log_visible
 WHERE op = 'DELETE' ORDER BY id;
COMMIT;
SELECT table_name, op, record_id, actor_id, db_user FROM lifecycle.audit_log
 WHERE op = 'DELETE' ORDER BY id;
SET client_min_messages = warning;
DROP TABLE public.regress_t_shares, public.regress_t_comments, public.regress_t_docs, public.regress_t_accounts CASCADE;
RESET client_min_messages;

--
-- Retention through PostgREST-style requests.  A team that granted the
-- API roles default privileges on every new table still gets an archive
-- they cannot read; authenticated may count what it may see, but not set
-- policies, place holds, run retention, restore or read archived rows or
-- the run records; service_role reads the records.
--
ALTER DEFAULT PRIVILEGES GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO anon, authenticated;
CREATE TABLE public.regress_telemetry (id bigint PRIMARY KEY, user_id uuid NOT NULL,
                                       occurred_at timestamptz NOT NULL, body text);
ALTER TABLE public.regress_telemetry ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON public.regress_telemetry TO authenticated
    USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());
INSERT INTO public.regress_telemetry
SELECT g, CASE WHEN g % 2 = 0 THEN 'a11ce000-0000-4000-8000-000000000001'::uuid
               ELSE 'b0b00000-0000-4000-8000-000000000002'::uuid END,
       now() - g * interval '10 days' + interval '1 hour', 'event ' || g
  FROM generate_series(1, 10) g;
SELECT lifecycle.set_retention('public.regress_telemetry', '30 days', timestamp_column => 'occurred_at',
                               action => 'archive', owner_column => 'user_id');
ALTER DEFAULT PRIVILEGES REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM anon, authenticated;
SELECT r.rolname,
       has_table_privilege(r.rolname, 'archive.regress_telemetry', 'SELECT') AS read_archive,
       has_table_privilege(r.rolname, 'archive.regress_telemetry', 'INSERT,UPDATE,DELETE') AS write_archive,
       has_function_privilege(r.rolname, 'lifecycle.cleanup_retention_data()', 'EXECUTE') AS run,
       has_table_privilege(r.rolname, 'lifecycle.retention_runs', 'SELECT') AS read_runs,
       has_table_privilege(r.rolname, 'lifecycle.retention_policies', 'INSERT,UPDATE,DELETE') AS write_policies
  FROM pg_roles r WHERE r.rolname IN ('anon', 'authenticated', 'service_role')
 ORDER BY 1;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "a11ce000-0000-4000-8000-000000000001", "role": "authenticated"}', true);
SELECT lifecycle.retention_waiting('public.regress_telemetry') AS alice_waiting;   -- hers only: 4 of 7
SAVEPOINT s;
SELECT lifecycle.set_retention('public.regress_telemetry', '1 day');
ROLLBACK TO SAVEPOINT s;
SELECT lifecycle.hold_retention('public.regress_telemetry', 'a11ce000-0000-4000-8000-000000000001', 'mine');
ROLLBACK TO SAVEPOINT s;
SELECT lifecycle.cleanup_retention_data();
ROLLBACK TO SAVEPOINT s;
SELECT lifecycle.schedule_retention();
ROLLBACK TO SAVEPOINT s;
SELECT count(*) FROM lifecycle.retention_overview;
ROLLBACK TO SAVEPOINT s;
ROLLBACK;
-- the run, as pg_cron would make it
CALL lifecycle.run_retention();
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "a11ce000-0000-4000-8000-000000000001", "role": "authenticated"}', true);
SELECT count(*) AS alice_sees FROM public.regress_telemetry;
SAVEPOINT s;
SELECT count(*) FROM archive.regress_telemetry;
ROLLBACK TO SAVEPOINT s;
SELECT lifecycle.restore_archived('public.regress_telemetry', '4');
ROLLBACK TO SAVEPOINT s;
SELECT lifecycle.restore_archived('public.regress_telemetry', now() - interval '1 day', now() + interval '1 day');
ROLLBACK TO SAVEPOINT s;
SELECT count(*) FROM lifecycle.retention_runs;
ROLLBACK;
BEGIN;
SET LOCAL ROLE service_role;
SELECT relid, status, rows_archived FROM lifecycle.retention_runs;
SELECT table_name, last_status, rows_waiting FROM lifecycle.retention_overview;
COMMIT;
SET client_min_messages = warning;
DROP TABLE public.regress_telemetry;
DROP SCHEMA archive CASCADE;
RESET client_min_messages;

-- Redaction through PostgREST: an authenticated request's telemetry is
-- scrubbed by the table's trigger under RLS; the API roles may read the
-- rules and call redact_jsonb/redaction_report, but not change rules.
CREATE TABLE public.regress_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id uuid NOT NULL DEFAULT auth.uid(),
    metadata jsonb NOT NULL);
ALTER TABLE public.regress_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_events ON public.regress_events FOR ALL TO authenticated
    USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());
GRANT SELECT, INSERT ON public.regress_events TO authenticated;
SELECT lifecycle.enable_redaction('public.regress_events', '{metadata}');
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = '{"sub": "8d4a3b4e-95f7-4c7e-8e8f-2b1c6d0a9e11", "role": "authenticated"}';
INSERT INTO public.regress_events (metadata)
VALUES ('{"event": "login", "accessToken": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", "email": "ann@example.com"}')
RETURNING metadata;
SELECT * FROM lifecycle.redaction_report('{"headers": {"cookie": "sid=1"}}');
SELECT count(*) > 0 AS reads_rules FROM lifecycle.redaction_rules_in_effect;
SAVEPOINT s;
SELECT lifecycle.set_redaction_rule('key', 'email', 'remove');
ROLLBACK TO SAVEPOINT s;
SELECT lifecycle.add_safe_key('access token');
ROLLBACK TO SAVEPOINT s;
SELECT lifecycle.disable_redaction('public.regress_events');
ROLLBACK TO SAVEPOINT s;
SET LOCAL lifecycle.redaction_key = 'k9:chosen-by-the-client-123456';
ROLLBACK TO SAVEPOINT s;
-- (PostgreSQL's own message differs between versions: the SQLSTATE)
DO $$
BEGIN
    PERFORM current_setting('lifecycle.redaction_key');
    RAISE NOTICE 'the key was readable';
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'the key is not readable (%)', SQLSTATE;
END
$$;
ROLLBACK;
DROP TABLE public.regress_events;

DROP FUNCTION regress_compare(text, text);
DROP EXTENSION pg_lifecycle;
