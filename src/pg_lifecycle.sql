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
