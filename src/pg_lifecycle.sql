\echo Use "CREATE EXTENSION pg_lifecycle" to load this file. \quit

-- pg_lifecycle: what every feature shares.
--
-- Schema lifecycle belongs to the extension: DROP EXTENSION removes it.  A
-- schema of that name made by someone else is not taken over: installing
-- fails with "schema "lifecycle" already exists".  Everyone may look up
-- names in it; each object below grants only what its callers need.
CREATE SCHEMA lifecycle;
GRANT USAGE ON SCHEMA lifecycle TO PUBLIC;

COMMENT ON SCHEMA lifecycle IS
  'pg_lifecycle: updated_at and actor stamping, soft delete, audit, usage counters';

-- One event trigger for the whole extension: when tables (or triggers) are
-- dropped, every feature forgets them.  It runs as the dropping role and
-- writes the configuration as the extension's owner; each statement only
-- deletes rows whose object no longer exists.
CREATE FUNCTION lifecycle.forget_dropped()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'forget_dropped'
LANGUAGE C;
REVOKE ALL ON FUNCTION lifecycle.forget_dropped() FROM PUBLIC;

CREATE EVENT TRIGGER lifecycle_forget_dropped ON sql_drop
    EXECUTE FUNCTION lifecycle.forget_dropped();
