\echo Use "CREATE EXTENSION pg_lifecycle" to load this file. \quit

-- Soft delete: deleted_at/deleted_by, cascades along foreign keys between
-- enabled tables, exact restore, and the <table>_active views.

-- Tables set up with enable_soft_delete().  Change it only through
-- enable_soft_delete()/disable_soft_delete(), which check table ownership.
CREATE TABLE lifecycle.soft_delete_tables (
    relid            regclass    PRIMARY KEY,
    intercept_delete boolean     NOT NULL DEFAULT false,
    enabled_at       timestamptz NOT NULL DEFAULT pg_catalog.now()
);
REVOKE ALL ON lifecycle.soft_delete_tables FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('lifecycle.soft_delete_tables', '');

COMMENT ON TABLE lifecycle.soft_delete_tables IS
  'Tables with soft delete; change only through enable_soft_delete()/disable_soft_delete()';

-- The tenant table of soft_delete_account()/restore_account(); no row means
-- public.accounts.  Changed only through set_tenant_table().
CREATE TABLE lifecycle.soft_delete_tenant (
    singleton    boolean  PRIMARY KEY DEFAULT true CHECK (singleton),
    tenant_table regclass NOT NULL
);
REVOKE ALL ON lifecycle.soft_delete_tenant FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('lifecycle.soft_delete_tenant', '');

-- Numbers that make each cascade's deleted_at unique (see sd_next_stamp).
CREATE SEQUENCE lifecycle.soft_delete_stamp_seq;
REVOKE ALL ON SEQUENCE lifecycle.soft_delete_stamp_seq FROM PUBLIC;

CREATE FUNCTION lifecycle.enable_soft_delete(tbl regclass, intercept_delete boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'enable_soft_delete'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.enable_soft_delete(regclass, boolean) IS
  'Add deleted_at/deleted_by, create the <table>_active view and start soft delete on a table you own; idempotent';

CREATE FUNCTION lifecycle.disable_soft_delete(tbl regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'disable_soft_delete'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.disable_soft_delete(regclass) IS
  'Stop soft delete on a table you own: drop its view and triggers, keep the columns and their data';

-- Only members of the extension owner's role may change it (checked inside).
CREATE FUNCTION lifecycle.set_tenant_table(tbl regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'set_tenant_table'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.set_tenant_table(regclass) IS
  'The table soft_delete_account()/restore_account() work on (default public.accounts); it must be soft-delete enabled';

-- record_id comes in two forms: the table's own key type (anyelement) and
-- text, which an untyped literal resolves to.  Both are converted to the
-- key column's type.
CREATE FUNCTION lifecycle.soft_delete(tbl regclass, record_id anyelement,
                                      deleted_by uuid DEFAULT lifecycle.current_actor())
RETURNS boolean AS 'MODULE_PATHNAME', 'soft_delete' LANGUAGE C VOLATILE;
CREATE FUNCTION lifecycle.soft_delete(tbl regclass, record_id text,
                                      deleted_by uuid DEFAULT lifecycle.current_actor())
RETURNS boolean AS 'MODULE_PATHNAME', 'soft_delete' LANGUAGE C VOLATILE;

CREATE FUNCTION lifecycle.soft_delete_cascade(tbl regclass, record_id anyelement,
                                              deleted_by uuid DEFAULT lifecycle.current_actor())
RETURNS jsonb AS 'MODULE_PATHNAME', 'soft_delete_cascade' LANGUAGE C VOLATILE;
CREATE FUNCTION lifecycle.soft_delete_cascade(tbl regclass, record_id text,
                                              deleted_by uuid DEFAULT lifecycle.current_actor())
RETURNS jsonb AS 'MODULE_PATHNAME', 'soft_delete_cascade' LANGUAGE C VOLATILE;

CREATE FUNCTION lifecycle.restore_deleted(tbl regclass, record_id anyelement)
RETURNS boolean AS 'MODULE_PATHNAME', 'restore_deleted' LANGUAGE C VOLATILE;
CREATE FUNCTION lifecycle.restore_deleted(tbl regclass, record_id text)
RETURNS boolean AS 'MODULE_PATHNAME', 'restore_deleted' LANGUAGE C VOLATILE;

CREATE FUNCTION lifecycle.restore_cascade(tbl regclass, record_id anyelement)
RETURNS jsonb AS 'MODULE_PATHNAME', 'restore_cascade' LANGUAGE C VOLATILE;
CREATE FUNCTION lifecycle.restore_cascade(tbl regclass, record_id text)
RETURNS jsonb AS 'MODULE_PATHNAME', 'restore_cascade' LANGUAGE C VOLATILE;

CREATE FUNCTION lifecycle.permanent_delete(tbl regclass, record_id anyelement)
RETURNS boolean AS 'MODULE_PATHNAME', 'permanent_delete' LANGUAGE C VOLATILE;
CREATE FUNCTION lifecycle.permanent_delete(tbl regclass, record_id text)
RETURNS boolean AS 'MODULE_PATHNAME', 'permanent_delete' LANGUAGE C VOLATILE;

CREATE FUNCTION lifecycle.soft_delete_account(account_id uuid,
                                              deleted_by uuid DEFAULT lifecycle.current_actor())
RETURNS jsonb AS 'MODULE_PATHNAME', 'soft_delete_account' LANGUAGE C VOLATILE;

CREATE FUNCTION lifecycle.restore_account(account_id uuid)
RETURNS jsonb AS 'MODULE_PATHNAME', 'restore_account' LANGUAGE C VOLATILE;

CREATE FUNCTION lifecycle.cleanup_soft_deleted_records(tbl regclass, days_old integer DEFAULT 90)
RETURNS integer AS 'MODULE_PATHNAME', 'cleanup_soft_deleted_records' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.soft_delete(regclass, anyelement, uuid) IS
  'Soft-delete a row and, along foreign keys, its live descendants in enabled tables; true when it deleted a live row';
COMMENT ON FUNCTION lifecycle.soft_delete_cascade(regclass, anyelement, uuid) IS
  'Like soft_delete(), reporting the rows changed per table as jsonb';
COMMENT ON FUNCTION lifecycle.restore_deleted(regclass, anyelement) IS
  'Restore a soft-deleted row and exactly the rows its cascade soft-deleted; true when it restored the row';
COMMENT ON FUNCTION lifecycle.restore_cascade(regclass, anyelement) IS
  'Like restore_deleted(), reporting the rows changed per table as jsonb';
COMMENT ON FUNCTION lifecycle.permanent_delete(regclass, anyelement) IS
  'Delete for good a row that is already soft-deleted; foreign keys decide what happens to rows referencing it';
COMMENT ON FUNCTION lifecycle.soft_delete_account(uuid, uuid) IS
  'soft_delete_cascade() on the tenant table (set_tenant_table(), default public.accounts)';
COMMENT ON FUNCTION lifecycle.restore_account(uuid) IS
  'restore_cascade() on the tenant table';
COMMENT ON FUNCTION lifecycle.cleanup_soft_deleted_records(regclass, integer) IS
  'Delete for good rows soft-deleted more than days_old days ago and their soft-deleted descendants, children first; returns the rows removed';

-- Row triggers the extension puts on enabled tables.
CREATE FUNCTION lifecycle.soft_delete_guard()
RETURNS trigger AS 'MODULE_PATHNAME', 'soft_delete_guard' LANGUAGE C;
COMMENT ON FUNCTION lifecycle.soft_delete_guard() IS
  'Trigger of enable_soft_delete(): refuses a live row that references a soft-deleted row';

CREATE FUNCTION lifecycle.soft_delete_intercept()
RETURNS trigger AS 'MODULE_PATHNAME', 'soft_delete_intercept' LANGUAGE C;
COMMENT ON FUNCTION lifecycle.soft_delete_intercept() IS
  'Trigger of enable_soft_delete(tbl, intercept_delete => true): turns DELETE into a soft delete with cascade';

-- Per-table counts, as the caller sees them (RLS applies); NULL for a
-- table the caller may not read.  In C: it checks at read time that the
-- table is still a table before reading it as the caller.
CREATE FUNCTION lifecycle.soft_delete_counts(tbl regclass,
                                             OUT active_count bigint, OUT deleted_count bigint)
AS 'MODULE_PATHNAME', 'soft_delete_counts'
LANGUAGE C STABLE;

CREATE VIEW lifecycle.soft_delete_stats AS
SELECT t.relid AS table_name,
       c.active_count,
       c.deleted_count,
       round(100.0 * c.deleted_count / nullif(c.active_count + c.deleted_count, 0), 2)
           AS deleted_percentage
  FROM lifecycle.soft_delete_tables t,
       LATERAL lifecycle.soft_delete_counts(t.relid) c;

COMMENT ON VIEW lifecycle.soft_delete_stats IS
  'Per soft-delete enabled table: live rows, soft-deleted rows and the deleted percentage, as the caller may see them';

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'service_role') THEN
        GRANT SELECT ON lifecycle.soft_delete_tables, lifecycle.soft_delete_tenant,
                        lifecycle.soft_delete_stats TO service_role;
    END IF;
END
$$;
