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
    enabled_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    hash_attnums    int2[]      NOT NULL DEFAULT '{}',  -- hash_columns, by number: they follow renames
    redact_values   boolean     NOT NULL DEFAULT false
);
REVOKE ALL ON lifecycle.audit_tables FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('lifecycle.audit_tables', '');

CREATE VIEW lifecycle.audited_tables AS
SELECT relid AS table_name, exclude_columns, redact_columns, enabled_at,
       ARRAY(SELECT a.attname::pg_catalog.text FROM pg_catalog.pg_attribute a
              WHERE a.attrelid OPERATOR(pg_catalog.=) t.relid
                AND a.attnum OPERATOR(pg_catalog.=) ANY (t.hash_attnums)
              ORDER BY a.attnum) AS hash_columns,
       redact_values
  FROM lifecycle.audit_tables t;

COMMENT ON VIEW lifecycle.audited_tables IS
  'Audited tables and their options';

CREATE FUNCTION lifecycle.enable_audit(tbl regclass, exclude_columns text[] DEFAULT '{}',
                                       redact_columns text[] DEFAULT '{}',
                                       hash_columns text[] DEFAULT '{}',
                                       redact_values boolean DEFAULT false)
RETURNS void AS 'MODULE_PATHNAME', 'enable_audit' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.enable_audit(regclass, text[], text[], text[], boolean) IS
  'Audit a table you own into lifecycle.audit_log; idempotent, re-running changes the options; hash_columns log keyed pseudonyms, redact_values passes logged values through the redaction rules';

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
