\echo Use "CREATE EXTENSION pg_lifecycle" to load this file. \quit

-- set_updated_at: stamp updated_at (and an actor column) on INSERT/UPDATE.

CREATE FUNCTION lifecycle.set_updated_at()
RETURNS trigger
AS 'MODULE_PATHNAME', 'set_updated_at'
LANGUAGE C;

COMMENT ON FUNCTION lifecycle.set_updated_at() IS
  'BEFORE INSERT OR UPDATE row trigger: stamps updated_at (or the column named by the first argument) with now() and the column named by the second argument with current_actor(); argument ''always'' stamps no-op updates too';

-- The name hand-written schemas use, for drop-in replacement.
CREATE FUNCTION lifecycle.update_updated_at_column()
RETURNS trigger
AS 'MODULE_PATHNAME', 'set_updated_at'
LANGUAGE C;

COMMENT ON FUNCTION lifecycle.update_updated_at_column() IS
  'Same as lifecycle.set_updated_at(), under the name hand-written schemas use';

-- Tables set up with enable_updated_at().  Users change it only through
-- enable_updated_at()/disable_updated_at(), which check table ownership.
CREATE TABLE lifecycle.updated_at_tables (
    relid            regclass    PRIMARY KEY,
    timestamp_column name        NOT NULL,
    actor_column     name,
    enabled_at       timestamptz NOT NULL DEFAULT pg_catalog.now()
);
REVOKE ALL ON lifecycle.updated_at_tables FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('lifecycle.updated_at_tables', '');

COMMENT ON TABLE lifecycle.updated_at_tables IS
  'Tables whose updated_at is kept by lifecycle.enable_updated_at(); change only through enable_updated_at()/disable_updated_at()';

-- Not STRICT: a NULL table gets an error rather than a silent no-op.
CREATE FUNCTION lifecycle.enable_updated_at(
    tbl regclass,
    timestamp_column name DEFAULT 'updated_at',
    actor_column name DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'enable_updated_at'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.enable_updated_at(regclass, name, name) IS
  'Install (or change) the lifecycle_updated_at trigger on a table you own; idempotent';

CREATE FUNCTION lifecycle.disable_updated_at(tbl regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'disable_updated_at'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.disable_updated_at(regclass) IS
  'Remove the lifecycle_updated_at trigger from a table you own; idempotent';

-- Supabase: the API's admin role may read which tables are stamped.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'service_role') THEN
        GRANT SELECT ON lifecycle.updated_at_tables TO service_role;
    END IF;
END
$$;
