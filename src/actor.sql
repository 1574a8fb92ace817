\echo Use "CREATE EXTENSION pg_lifecycle" to load this file. \quit

-- Who is acting: the request's JWT claims as PostgREST/Supabase set them.
-- Both are harmless to call (they read the caller's own settings), so they
-- stay executable by everyone: RLS policies of anon/authenticated use them.

CREATE FUNCTION lifecycle.current_actor()
RETURNS uuid
AS 'MODULE_PATHNAME', 'current_actor'
LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION lifecycle.current_actor() IS
  'uuid of the "sub" claim of the request JWT (request.jwt.claim.sub, else request.jwt.claims ->> ''sub''); NULL when absent or not a uuid';

CREATE FUNCTION lifecycle.current_actor_role()
RETURNS text
AS 'MODULE_PATHNAME', 'current_actor_role'
LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION lifecycle.current_actor_role() IS
  '"role" claim of the request JWT (request.jwt.claim.role, else request.jwt.claims ->> ''role''), else current_user';
