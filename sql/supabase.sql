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
DROP FUNCTION regress_compare(text, text);
DROP EXTENSION pg_lifecycle;
