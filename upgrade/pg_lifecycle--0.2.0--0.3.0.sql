\echo Use "ALTER EXTENSION pg_lifecycle UPDATE TO '0.3.0'" to load this file. \quit

-- pg_lifecycle 0.2.0 -> 0.3.0: the shared core and the security review.
-- Data and configuration are kept; what changes:

-- One sql_drop event trigger for the whole extension instead of four.
DROP EVENT TRIGGER lifecycle_updated_at_forget_dropped;
DROP EVENT TRIGGER lifecycle_soft_delete_forget_dropped;
DROP EVENT TRIGGER lifecycle_audit_forget_dropped;
DROP EVENT TRIGGER lifecycle_usage_forget_dropped;
DROP FUNCTION lifecycle.updated_at_forget_dropped();
DROP FUNCTION lifecycle.soft_delete_forget_dropped();
DROP FUNCTION lifecycle.audit_forget_dropped();
DROP FUNCTION lifecycle.usage_forget_dropped();

CREATE FUNCTION lifecycle.forget_dropped()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'forget_dropped'
LANGUAGE C;
REVOKE ALL ON FUNCTION lifecycle.forget_dropped() FROM PUBLIC;

CREATE EVENT TRIGGER lifecycle_forget_dropped ON sql_drop
    EXECUTE FUNCTION lifecycle.forget_dropped();

-- soft_delete_stats: the counts are read in C, after checking that each
-- table is still a table.
CREATE OR REPLACE FUNCTION lifecycle.soft_delete_counts(tbl regclass,
                                             OUT active_count bigint, OUT deleted_count bigint)
AS 'MODULE_PATHNAME', 'soft_delete_counts'
LANGUAGE C STABLE;

-- The audit log as a reader may see it.
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

CREATE OR REPLACE FUNCTION lifecycle.record_history(tbl regclass, record_id text)
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

-- authenticated reads the log through the view only.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'service_role') THEN
        GRANT SELECT ON lifecycle.audit_log_visible TO service_role;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'authenticated') THEN
        DROP POLICY IF EXISTS audit_log_own_changes ON lifecycle.audit_log;
        REVOKE SELECT ON lifecycle.audit_log FROM authenticated;
        GRANT SELECT ON lifecycle.audit_log_visible TO authenticated;
    END IF;
END
$$;

-- Audited tables get the trigger that notes who each statement runs as
-- (so that a foreign key's cascade, which runs as the table's owner, is
-- told apart from the user's own statements), with their tables' options.
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT tg.tgrelid::regclass AS tbl,
                    pg_catalog.string_to_array(pg_catalog.encode(tg.tgargs, 'escape'), '\000') AS args
               FROM pg_catalog.pg_trigger tg
              WHERE tg.tgname OPERATOR(pg_catalog.=) 'lifecycle_audit_insert'
                AND tg.tgnargs OPERATOR(pg_catalog.=) 2
                -- enable_audit of the new library, run before the update, made it already
                AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger s
                                 WHERE s.tgrelid OPERATOR(pg_catalog.=) tg.tgrelid
                                   AND s.tgname OPERATOR(pg_catalog.=) 'lifecycle_audit_start')
    LOOP
        EXECUTE pg_catalog.format(
            'CREATE TRIGGER lifecycle_audit_start BEFORE INSERT OR UPDATE OR DELETE ON %s'
            ' FOR EACH STATEMENT EXECUTE FUNCTION lifecycle.audit_trigger(%L, %L)',
            t.tbl, t.args[1], t.args[2]);
    END LOOP;
END
$$;
