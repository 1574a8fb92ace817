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
\echo Use "CREATE EXTENSION pg_lifecycle" to load this file. \quit

-- Audit capture: statement-level C triggers write every change of an
-- audited table into the append-only lifecycle.audit_log.

CREATE TYPE lifecycle.audit_operation AS ENUM
    ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'SOFT_DELETE', 'RESTORE', 'RETENTION');

CREATE TABLE lifecycle.audit_log (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at      timestamptz NOT NULL,      -- the statement's start
    txid             bigint NOT NULL,           -- top-level transaction id
    schema_name      text NOT NULL,             -- names, not an OID: they mean
    table_name       text NOT NULL,             -- the same after dump/restore
    op               lifecycle.audit_operation NOT NULL,
    record_id        text,                      -- primary key as text; NULL without one
    old_values       jsonb,
    new_values       jsonb,
    changed_columns  text[],
    actor_id         uuid,                      -- lifecycle.current_actor()
    actor_role       text,                      -- lifecycle.current_actor_role()
    db_user          text NOT NULL,
    client_addr      text,                      -- x-forwarded-for, else the connection's
    application_name text
);
CREATE INDEX audit_log_record_idx ON lifecycle.audit_log (schema_name, table_name, record_id, id);
CREATE INDEX audit_log_actor_idx ON lifecycle.audit_log (actor_id, id) WHERE actor_id IS NOT NULL;
CREATE INDEX audit_log_time_idx ON lifecycle.audit_log USING brin (occurred_at);
SELECT pg_catalog.pg_extension_config_dump('lifecycle.audit_log', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.audit_log_id_seq', '');

COMMENT ON TABLE lifecycle.audit_log IS
  'Every change of an audited table (a retention batch: one RETENTION row); append-only: rows leave only through a retention policy on it';

-- Append-only for everyone, the table owner included.
CREATE FUNCTION lifecycle.audit_log_append_only()
RETURNS trigger AS 'MODULE_PATHNAME', 'audit_log_append_only' LANGUAGE C;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON lifecycle.audit_log
    FOR EACH ROW EXECUTE FUNCTION lifecycle.audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON lifecycle.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION lifecycle.audit_log_append_only();
-- ALWAYS: also with session_replication_role = replica
ALTER TABLE lifecycle.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;
ALTER TABLE lifecycle.audit_log ENABLE ALWAYS TRIGGER audit_log_no_truncate;

-- Nobody writes it directly; who reads what is decided by RLS.
REVOKE ALL ON lifecycle.audit_log FROM PUBLIC;
ALTER TABLE lifecycle.audit_log ENABLE ROW LEVEL SECURITY;

-- Tables set up with enable_audit(); change only through enable_audit()/disable_audit().
CREATE TABLE lifecycle.audit_tables (
    relid           regclass    PRIMARY KEY,
    exclude_columns text[]      NOT NULL DEFAULT '{}',
    redact_columns  text[]      NOT NULL DEFAULT '{}',
    enabled_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);
REVOKE ALL ON lifecycle.audit_tables FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('lifecycle.audit_tables', '');

CREATE VIEW lifecycle.audited_tables AS
SELECT relid AS table_name, exclude_columns, redact_columns, enabled_at
  FROM lifecycle.audit_tables;

COMMENT ON VIEW lifecycle.audited_tables IS
  'Audited tables and their options';

CREATE FUNCTION lifecycle.enable_audit(tbl regclass, exclude_columns text[] DEFAULT '{}',
                                       redact_columns text[] DEFAULT '{}')
RETURNS void AS 'MODULE_PATHNAME', 'enable_audit' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.enable_audit(regclass, text[], text[]) IS
  'Audit a table you own into lifecycle.audit_log; idempotent, re-running changes the options';

CREATE FUNCTION lifecycle.disable_audit(tbl regclass)
RETURNS void AS 'MODULE_PATHNAME', 'disable_audit' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.disable_audit(regclass) IS
  'Stop auditing a table you own; the log keeps what it has';

-- Its two arguments, set by enable_audit(), are the excluded and redacted
-- columns' attribute numbers.
CREATE FUNCTION lifecycle.audit_trigger()
RETURNS trigger AS 'MODULE_PATHNAME', 'audit_trigger' LANGUAGE C;

COMMENT ON FUNCTION lifecycle.audit_trigger() IS
  'Trigger of enable_audit(): writes the statement''s changes into lifecycle.audit_log';

-- What a reader may see of the log.  Roles that bypass row-level security
-- (service_role) and members of the extension owner's role read all of it.
-- Any other role sees a change only if it made it itself: the row's
-- actor_id is its own JWT user and the statement ran as its own role (not
-- a foreign key's cascade, nor a function or trigger running as another
-- owner); and then only what it may SELECT on the audited table now:
-- values and changed columns of columns it may not read are left out, an
-- UPDATE that changed only such columns is not shown, and neither is any
-- change of a table whose primary key it may not read.
CREATE FUNCTION lifecycle.audit_row_visible(schema_name text, table_name text,
                                            actor_id uuid, db_user text, changed_columns text[])
RETURNS boolean AS 'MODULE_PATHNAME', 'audit_row_visible' LANGUAGE C STABLE;
CREATE FUNCTION lifecycle.audit_visible_values(schema_name text, table_name text, v jsonb)
RETURNS jsonb AS 'MODULE_PATHNAME', 'audit_visible_values' LANGUAGE C STABLE;
CREATE FUNCTION lifecycle.audit_visible_columns(schema_name text, table_name text, c text[])
RETURNS text[] AS 'MODULE_PATHNAME', 'audit_visible_columns' LANGUAGE C STABLE;

CREATE VIEW lifecycle.audit_log_visible WITH (security_barrier = true) AS
SELECT a.id, a.occurred_at, a.txid, a.schema_name, a.table_name, a.op,
       a.record_id,
       lifecycle.audit_visible_values(a.schema_name, a.table_name, a.old_values) AS old_values,
       lifecycle.audit_visible_values(a.schema_name, a.table_name, a.new_values) AS new_values,
       lifecycle.audit_visible_columns(a.schema_name, a.table_name, a.changed_columns) AS changed_columns,
       a.actor_id, a.actor_role, a.db_user, a.client_addr, a.application_name
  FROM lifecycle.audit_log a
 WHERE lifecycle.audit_row_visible(a.schema_name, a.table_name, a.actor_id, a.db_user,
                                   a.changed_columns);

COMMENT ON VIEW lifecycle.audit_log_visible IS
  'The audit log as the current role may see it: its own changes, and only what it may SELECT on the audited tables (everything for roles that bypass RLS)';

-- The history of one row, oldest first, as the caller may see the log.
CREATE FUNCTION lifecycle.record_history(tbl regclass, record_id text)
RETURNS SETOF lifecycle.audit_log
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    nsp name;
    rel name;
BEGIN
    IF tbl IS NULL OR record_id IS NULL THEN
        RAISE EXCEPTION 'table and record_id must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the table and the primary key value as text, e.g. lifecycle.record_history(''public.projects'', ''42'').';
    END IF;
    SELECT n.nspname, c.relname INTO nsp, rel
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl;
    IF NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = tbl AND i.indisprimary) THEN
        RAISE EXCEPTION 'table "%" has no primary key', rel
            USING ERRCODE = 'invalid_table_definition',
                  DETAIL = 'The audit log identifies rows by their primary key.',
                  HINT = 'Add a primary key; rows of tables without one are logged with a NULL record_id.';
    END IF;
    RETURN QUERY
        SELECT h.* FROM (
            SELECT a.* FROM lifecycle.audit_log_visible a
             WHERE a.schema_name = nsp AND a.table_name = rel
               AND a.record_id = record_history.record_id
            UNION ALL
            SELECT a.* FROM lifecycle.audit_log_visible a
             WHERE a.schema_name = nsp AND a.table_name = rel
               AND a.record_id IS NULL AND a.op = 'TRUNCATE') h
         ORDER BY h.id;
END
$$;

COMMENT ON FUNCTION lifecycle.record_history(regclass, text) IS
  'Audit log rows of one row (and the table''s TRUNCATEs), oldest first, as the caller may see them (lifecycle.audit_log_visible)';

-- The row as it was at a time, rebuilt from the log; NULL if it did not
-- exist.  For a row that existed before auditing began, only the columns
-- changed since are known.
CREATE FUNCTION lifecycle.record_at(tbl regclass, record_id text, at timestamptz)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    h   lifecycle.audit_log;
    row jsonb;
BEGIN
    IF at IS NULL THEN
        RAISE EXCEPTION 'at must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    FOR h IN SELECT * FROM lifecycle.record_history(tbl, record_id) x WHERE x.occurred_at <= at LOOP
        row := CASE h.op
                 WHEN 'INSERT' THEN h.new_values
                 WHEN 'DELETE' THEN NULL
                 WHEN 'TRUNCATE' THEN NULL
                 ELSE coalesce(row, '{}') || h.new_values
               END;
    END LOOP;
    RETURN row;
END
$$;

COMMENT ON FUNCTION lifecycle.record_at(regclass, text, timestamptz) IS
  'The row as it was at a time, rebuilt from the audit log (excluded columns absent, redacted ones masked); NULL if it did not exist';

-- Supabase: service_role reads the whole log; authenticated reads
-- lifecycle.audit_log_visible (its own changes, what it may SELECT); anon
-- nothing; nobody inserts directly.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'service_role') THEN
        GRANT SELECT ON lifecycle.audit_log, lifecycle.audit_tables, lifecycle.audited_tables,
                        lifecycle.audit_log_visible
            TO service_role;
        CREATE POLICY audit_log_service_role ON lifecycle.audit_log
            FOR SELECT TO service_role USING (true);
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'authenticated') THEN
        GRANT SELECT ON lifecycle.audit_log_visible TO authenticated;
    END IF;
END
$$;
\echo Use "CREATE EXTENSION pg_lifecycle" to load this file. \quit

-- Usage counters and plan limits: per-account counts of a table's live rows
-- (or metered usage), kept by statement-level triggers, with limits.

-- Each counted resource.  Change only through track_usage()/untrack_usage().
CREATE TABLE lifecycle.usage_resources (
    resource_type  text        PRIMARY KEY CHECK (resource_type <> ''),
    counter_table  regclass    NOT NULL,
    counter_column name        NOT NULL,
    source_table   regclass,                -- NULL: metered usage
    source_column  name,
    limit_column   name,
    tracked_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CHECK ((source_table IS NULL) = (source_column IS NULL))
);
REVOKE ALL ON lifecycle.usage_resources FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('lifecycle.usage_resources', '');

COMMENT ON TABLE lifecycle.usage_resources IS
  'Counted resources; change only through lifecycle.track_usage()/untrack_usage()';

-- The counts themselves.  A count is split over a few slots, one per group
-- of backends, so that concurrent writers of one account do not queue on one
-- row; the count is the sum of its slots.  With a limit, each slot may grow
-- up to its cap without looking at the others (the caps together stay within
-- the limit); a writer whose slot is full locks all slots of the count and
-- shares out what is left of the limit again.
CREATE TABLE lifecycle.usage_counts (
    resource_type text     NOT NULL,    -- no foreign key: pg_dump restores config tables in any order
    account_id    uuid     NOT NULL,
    slot          smallint NOT NULL,
    n             bigint   NOT NULL DEFAULT 0,
    cap           bigint,                   -- NULL: no limit
    PRIMARY KEY (resource_type, account_id, slot)
) WITH (fillfactor = 10);   -- slots of one count on separate pages, pruned often
REVOKE ALL ON lifecycle.usage_counts FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('lifecycle.usage_counts', '');

COMMENT ON TABLE lifecycle.usage_counts IS
  'The exact count of each (resource, account): the sum of n over its slots; written only by pg_lifecycle';

-- Metered usage, for billing per period.
CREATE TABLE lifecycle.usage_events (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id    uuid        NOT NULL,
    resource_type text        NOT NULL,
    quantity      integer     NOT NULL,     -- negative for decrements
    actor_id      uuid,
    occurred_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX usage_events_account_idx ON lifecycle.usage_events (account_id, resource_type, occurred_at);
REVOKE ALL ON lifecycle.usage_events FROM PUBLIC;
ALTER TABLE lifecycle.usage_events ENABLE ROW LEVEL SECURITY;
SELECT pg_catalog.pg_extension_config_dump('lifecycle.usage_events', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.usage_events_id_seq', '');

COMMENT ON TABLE lifecycle.usage_events IS
  'Ledger of metered increments and decrements (increment_usage_counter/decrement_usage_counter)';

CREATE FUNCTION lifecycle.track_usage(
    resource_type text,
    counter_table regclass,
    counter_column name,
    source_table regclass,
    source_column name,
    limit_column name DEFAULT NULL)
RETURNS void AS 'MODULE_PATHNAME', 'track_usage' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.track_usage(text, regclass, name, regclass, name, name) IS
  'Count source_table''s live rows per account into counter_table.counter_column (source_table NULL: metered), limited by limit_column; backfills; idempotent';

CREATE FUNCTION lifecycle.untrack_usage(resource_type text)
RETURNS void AS 'MODULE_PATHNAME', 'untrack_usage' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.untrack_usage(text) IS
  'Stop counting a resource: drop its triggers and counts, keep the counter column''s last value';

CREATE FUNCTION lifecycle.increment_usage_counter(account_id uuid, resource_type text,
                                                  amount integer DEFAULT 1)
RETURNS boolean AS 'MODULE_PATHNAME', 'increment_usage_counter' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.increment_usage_counter(uuid, text, integer) IS
  'Add metered usage; false, and nothing changed, when it would pass the limit';

CREATE FUNCTION lifecycle.decrement_usage_counter(account_id uuid, resource_type text,
                                                  amount integer DEFAULT 1)
RETURNS boolean AS 'MODULE_PATHNAME', 'decrement_usage_counter' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.decrement_usage_counter(uuid, text, integer) IS
  'Take back metered usage; false, and nothing changed, when it would go below zero';

CREATE FUNCTION lifecycle.reset_usage_counter(resource_type text, account_id uuid DEFAULT NULL)
RETURNS integer AS 'MODULE_PATHNAME', 'reset_usage_counter' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.reset_usage_counter(text, uuid) IS
  'Set a metered counter to zero for one account or all (period resets, e.g. from pg_cron); returns how many were not zero';

CREATE FUNCTION lifecycle.calculate_account_usage(account_id uuid)
RETURNS TABLE (resource_type text, stored_count bigint, actual_count bigint, usage_limit bigint)
AS 'MODULE_PATHNAME', 'calculate_account_usage' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.calculate_account_usage(uuid) IS
  'Per resource: the count pg_lifecycle keeps, the count in the data (NULL when metered) and the limit';

CREATE FUNCTION lifecycle.sync_usage_counters(account_id uuid DEFAULT NULL)
RETURNS integer AS 'MODULE_PATHNAME', 'sync_usage_counters' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.sync_usage_counters(uuid) IS
  'Recount tracked resources from the data for one account or all, and bring counter columns up to date; returns how many counters it corrected';

CREATE FUNCTION lifecycle.refresh_usage_counters(account_id uuid DEFAULT NULL)
RETURNS integer AS 'MODULE_PATHNAME', 'refresh_usage_counters' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.refresh_usage_counters(uuid) IS
  'Bring counter columns up to the counts pg_lifecycle keeps (after bursts of concurrent writes), without recounting; returns how many it changed';

-- Triggers installed by track_usage(): on each source table (statement-level,
-- with transition tables) and on each counter table (the guard).
CREATE FUNCTION lifecycle.usage_trigger()
RETURNS trigger AS 'MODULE_PATHNAME', 'usage_trigger' LANGUAGE C;
CREATE FUNCTION lifecycle.usage_guard()
RETURNS trigger AS 'MODULE_PATHNAME', 'usage_guard' LANGUAGE C;

-- Make and lock every slot of one count, in slot order (waits for the
-- writers of the others, and for a change of the account's limit whose
-- guard holds them).  Internal, as usage_rebalance.
CREATE FUNCTION lifecycle.usage_lock_slots(res text, acct uuid, nslots integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO lifecycle.usage_counts (resource_type, account_id, slot, n, cap)
    SELECT res, acct, s, 0, 0 FROM generate_series(0, nslots - 1) s
    ON CONFLICT DO NOTHING;
    PERFORM 1 FROM lifecycle.usage_counts u
     WHERE u.resource_type = res AND u.account_id = acct
     ORDER BY u.slot FOR UPDATE;
END
$$;
REVOKE ALL ON FUNCTION lifecycle.usage_lock_slots(text, uuid, integer) FROM PUBLIC;

-- Share out what is left of a limit among the slots of one count and add
-- delta to slot own.  Returns NULL when done; otherwise the count that
-- stopped it (the limit would be passed, or, with floor_zero, the count
-- would go below zero) and nothing is changed.  Internal: run by
-- pg_lifecycle as the extension's owner, when a writer's slot has no room
-- left.
CREATE FUNCTION lifecycle.usage_rebalance(res text, acct uuid, own smallint, delta bigint,
                                          lim bigint, nslots integer, floor_zero boolean)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    total bigint;
    room bigint;
BEGIN
    INSERT INTO lifecycle.usage_counts (resource_type, account_id, slot, n, cap)
    SELECT res, acct, s, 0, 0 FROM generate_series(0, nslots - 1) s
    ON CONFLICT DO NOTHING;
    -- all slots, in order: waits for the writers of the others to finish
    SELECT sum(c.n) INTO total FROM (
        SELECT u.n FROM lifecycle.usage_counts u
         WHERE u.resource_type = res AND u.account_id = acct
         ORDER BY u.slot FOR UPDATE) c;
    IF (floor_zero AND total + delta < 0) OR (lim IS NOT NULL AND delta > 0 AND total + delta > lim) THEN
        RETURN total;
    END IF;
    room := CASE WHEN lim IS NULL THEN NULL ELSE greatest(lim - total - delta, 0) END;
    UPDATE lifecycle.usage_counts u
       SET n = u.n + CASE WHEN u.slot = own THEN delta ELSE 0 END,
           cap = u.n + CASE WHEN u.slot = own THEN delta ELSE 0 END
                 + room / nslots + CASE WHEN u.slot = own THEN room % nslots ELSE 0 END
     WHERE u.resource_type = res AND u.account_id = acct;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION lifecycle.usage_rebalance(text, uuid, smallint, bigint, bigint, integer, boolean) FROM PUBLIC;

-- Supabase: service_role reads the configuration, counts and the whole
-- ledger; authenticated reads its own ledger rows; anon nothing.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'service_role') THEN
        GRANT SELECT ON lifecycle.usage_resources, lifecycle.usage_counts, lifecycle.usage_events
            TO service_role;
        CREATE POLICY usage_events_service_role ON lifecycle.usage_events
            FOR SELECT TO service_role USING (true);
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'authenticated') THEN
        GRANT SELECT ON lifecycle.usage_events TO authenticated;
        CREATE POLICY usage_events_own ON lifecycle.usage_events
            FOR SELECT TO authenticated
            USING (actor_id OPERATOR(pg_catalog.=) lifecycle.current_actor());
    END IF;
END
$$;
\echo Use "CREATE EXTENSION pg_lifecycle" to load this file. \quit

-- Retention and archival: rows older than a policy's keep leave their
-- table in small batches, deleted or moved into an archive table, by
-- CALL lifecycle.run_retention() (pg_cron: schedule_retention()).

CREATE TYPE lifecycle.retention_action AS ENUM ('delete', 'archive', 'purge_soft_deleted');
CREATE TYPE lifecycle.retention_status AS ENUM ('running', 'succeeded', 'partial', 'skipped', 'failed');

-- One policy per table.  Change only through set_retention()/drop_retention().
CREATE TABLE lifecycle.retention_policies (
    relid             regclass    PRIMARY KEY,
    keep              interval    NOT NULL,
    timestamp_column  name        NOT NULL,
    action            lifecycle.retention_action NOT NULL,
    batch_size        integer     NOT NULL,
    owner_column      name,
    preference_table  regclass,
    preference_key    name,
    preference_column name,
    min_keep          interval    NOT NULL,
    archive_schema    name,                 -- action archive: where its archive table is
    enabled           boolean     NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at        timestamptz NOT NULL DEFAULT pg_catalog.now()
);
REVOKE ALL ON lifecycle.retention_policies FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('lifecycle.retention_policies', '');

COMMENT ON TABLE lifecycle.retention_policies IS
  'Retention policies; change only through lifecycle.set_retention()/drop_retention()';

-- Legal holds: rows of a held owner are never removed by retention.
CREATE TABLE lifecycle.retention_holds (
    relid       regclass    NOT NULL,
    owner_value text        NOT NULL,
    reason      text        NOT NULL,
    held_until  timestamptz,                -- NULL: until released
    held_by     name        NOT NULL DEFAULT CURRENT_USER,
    held_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (relid, owner_value)
);
REVOKE ALL ON lifecycle.retention_holds FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('lifecycle.retention_holds', '');

COMMENT ON TABLE lifecycle.retention_holds IS
  'Legal holds; change only through lifecycle.hold_retention()/release_retention_hold()';

-- What each run did, one row per policy per run; kept 90 days.
CREATE SEQUENCE lifecycle.retention_run_id;
CREATE TABLE lifecycle.retention_runs (
    run_id        bigint      NOT NULL,
    relid         regclass    NOT NULL,
    action        lifecycle.retention_action NOT NULL,
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz,
    status        lifecycle.retention_status NOT NULL,
    rows_deleted  bigint      NOT NULL DEFAULT 0,
    rows_archived bigint      NOT NULL DEFAULT 0,
    rows_skipped  bigint      NOT NULL DEFAULT 0,
    bytes_archived bigint     NOT NULL DEFAULT 0,
    batches       integer     NOT NULL DEFAULT 0,
    error         text,
    PRIMARY KEY (run_id, relid)
);
CREATE INDEX retention_runs_started_idx ON lifecycle.retention_runs (started_at);
REVOKE ALL ON lifecycle.retention_runs, lifecycle.retention_run_id FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('lifecycle.retention_runs', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.retention_run_id', '');

COMMENT ON TABLE lifecycle.retention_runs IS
  'One row per policy per retention run: status, rows deleted, archived and skipped, batches, error; runs older than 90 days are removed by the run';

CREATE FUNCTION lifecycle.set_retention(
    tbl regclass,
    keep interval,
    timestamp_column name DEFAULT 'created_at',
    action lifecycle.retention_action DEFAULT 'delete',
    batch_size integer DEFAULT 5000,
    owner_column name DEFAULT NULL,
    preference_table regclass DEFAULT NULL,
    preference_key name DEFAULT NULL,
    preference_column name DEFAULT NULL,
    min_keep interval DEFAULT '1 day',
    enabled boolean DEFAULT true,
    archive_schema name DEFAULT 'archive')
RETURNS void AS 'MODULE_PATHNAME', 'set_retention' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.set_retention(regclass, interval, name, lifecycle.retention_action, integer,
                                            name, regclass, name, name, interval, boolean, name) IS
  'Remove (delete, archive, or purge soft-deleted) rows whose timestamp_column is older than keep, or than each owner''s own preference in days; idempotent';

CREATE FUNCTION lifecycle.drop_retention(tbl regclass)
RETURNS void AS 'MODULE_PATHNAME', 'drop_retention' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.drop_retention(regclass) IS
  'Forget a table''s retention policy and holds; its archive table and its runs are kept';

CREATE FUNCTION lifecycle.hold_retention(tbl regclass, owner_value text, reason text,
                                         until timestamptz DEFAULT NULL)
RETURNS void AS 'MODULE_PATHNAME', 'hold_retention' LANGUAGE C VOLATILE;

CREATE FUNCTION lifecycle.release_retention_hold(tbl regclass, owner_value text)
RETURNS boolean AS 'MODULE_PATHNAME', 'release_retention_hold' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.hold_retention(regclass, text, text, timestamptz) IS
  'Legal hold: retention removes no row of this owner (owner_column = owner_value) until released or until';
COMMENT ON FUNCTION lifecycle.release_retention_hold(regclass, text) IS
  'Release a legal hold; true when there was one';

CREATE PROCEDURE lifecycle.run_retention(max_runtime interval DEFAULT '10 minutes',
                                         only_table regclass DEFAULT NULL)
AS 'MODULE_PATHNAME', 'run_retention' LANGUAGE C;

COMMENT ON PROCEDURE lifecycle.run_retention(interval, regclass) IS
  'Run every enabled retention policy (or one), committing after every batch; one run at a time; stops at max_runtime with status partial';

CREATE FUNCTION lifecycle.cleanup_retention_data()
RETURNS jsonb AS 'MODULE_PATHNAME', 'cleanup_retention_data' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.cleanup_retention_data() IS
  'Every enabled policy in one transaction (for callers that cannot CALL); returns the rows removed per table';

CREATE FUNCTION lifecycle.restore_archived(tbl regclass, record_id text)
RETURNS boolean AS 'MODULE_PATHNAME', 'restore_archived_row' LANGUAGE C VOLATILE;

CREATE FUNCTION lifecycle.restore_archived(tbl regclass, since timestamptz, until timestamptz)
RETURNS bigint AS 'MODULE_PATHNAME', 'restore_archived_range' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.restore_archived(regclass, text) IS
  'Move an archived row (by primary key) back into its table; true when it did';
COMMENT ON FUNCTION lifecycle.restore_archived(regclass, timestamptz, timestamptz) IS
  'Move the rows archived between since and until back into their table; returns how many';

-- Rows waiting, counted as the caller (its rights and policies apply;
-- NULL when it may not read the table).
CREATE FUNCTION lifecycle.retention_waiting(tbl regclass)
RETURNS bigint AS 'MODULE_PATHNAME', 'retention_waiting' LANGUAGE C STABLE STRICT;

COMMENT ON FUNCTION lifecycle.retention_waiting(regclass) IS
  'How many rows of the table its retention policy would remove now, as far as the caller may see';

-- When the pg_cron job "pg_lifecycle retention" fires next (its schedule
-- read in UTC, as pg_cron does); NULL when it is not scheduled.
CREATE FUNCTION lifecycle.retention_next_due()
RETURNS timestamptz AS 'MODULE_PATHNAME', 'retention_next_due' LANGUAGE C STABLE;

-- Each policy with its last run, when it is due next and what is waiting.
CREATE VIEW lifecycle.retention_overview AS
SELECT p.relid AS table_name, p.action, p.keep, p.enabled,
       r.run_id AS last_run_id, r.started_at AS last_started_at, r.finished_at AS last_finished_at,
       r.status AS last_status, r.rows_deleted AS last_rows_deleted,
       r.rows_archived AS last_rows_archived, r.rows_skipped AS last_rows_skipped, r.error AS last_error,
       lifecycle.retention_next_due() AS next_due,
       lifecycle.retention_waiting(p.relid) AS rows_waiting
  FROM lifecycle.retention_policies p
  LEFT JOIN LATERAL (SELECT * FROM lifecycle.retention_runs x
                      WHERE x.relid OPERATOR(pg_catalog.=) p.relid
                      ORDER BY x.run_id DESC LIMIT 1) r ON true;

-- Rows and bytes archived per day and table.
CREATE VIEW lifecycle.archive_statistics AS
SELECT pg_catalog.date_trunc('day', r.started_at) AS day, r.relid AS table_name,
       pg_catalog.sum(r.rows_archived)::bigint AS rows_archived,
       pg_catalog.sum(r.bytes_archived)::bigint AS bytes_archived
  FROM lifecycle.retention_runs r
 WHERE r.rows_archived OPERATOR(pg_catalog.>) 0
 GROUP BY 1, 2;

REVOKE ALL ON lifecycle.retention_overview, lifecycle.archive_statistics FROM PUBLIC;

-- pg_cron: the job "pg_lifecycle retention", and "pg_lifecycle usage refresh".
CREATE FUNCTION lifecycle.schedule_retention(schedule text DEFAULT '17 3 * * *')
RETURNS bigint AS 'MODULE_PATHNAME', 'schedule_retention' LANGUAGE C VOLATILE;

CREATE FUNCTION lifecycle.unschedule_retention()
RETURNS boolean AS 'MODULE_PATHNAME', 'unschedule_retention' LANGUAGE C VOLATILE;

CREATE FUNCTION lifecycle.schedule_usage_refresh(schedule text DEFAULT '* * * * *')
RETURNS bigint AS 'MODULE_PATHNAME', 'schedule_usage_refresh' LANGUAGE C VOLATILE;

CREATE FUNCTION lifecycle.unschedule_usage_refresh()
RETURNS boolean AS 'MODULE_PATHNAME', 'unschedule_usage_refresh' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.schedule_retention(text) IS
  'Schedule CALL lifecycle.run_retention() with pg_cron as job "pg_lifecycle retention" in this database; returns the job id';
COMMENT ON FUNCTION lifecycle.unschedule_retention() IS
  'Remove the pg_cron job "pg_lifecycle retention"; true when there was one';
COMMENT ON FUNCTION lifecycle.schedule_usage_refresh(text) IS
  'Schedule refresh_usage_counters() alone with pg_cron as job "pg_lifecycle usage refresh"; returns the job id';
COMMENT ON FUNCTION lifecycle.unschedule_usage_refresh() IS
  'Remove the pg_cron job "pg_lifecycle usage refresh"; true when there was one';

-- Running retention removes rows of every policy's table: only the
-- extension's owner, and roles it grants, may.
REVOKE ALL ON PROCEDURE lifecycle.run_retention(interval, regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION lifecycle.cleanup_retention_data() FROM PUBLIC;
REVOKE ALL ON FUNCTION lifecycle.schedule_retention(text), lifecycle.unschedule_retention(),
                       lifecycle.schedule_usage_refresh(text), lifecycle.unschedule_usage_refresh()
    FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'service_role') THEN
        GRANT SELECT ON lifecycle.retention_policies, lifecycle.retention_runs, lifecycle.retention_holds,
                        lifecycle.retention_overview, lifecycle.archive_statistics
            TO service_role;
    END IF;
END
$$;
