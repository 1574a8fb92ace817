\echo Use "ALTER EXTENSION pg_lifecycle UPDATE TO '0.4.0'" to load this file. \quit

-- pg_lifecycle 0.3.0 -> 0.4.0: retention and archival.  Data and
-- configuration are kept; what changes:

-- Audit logs a retention batch as one RETENTION row, and the log itself
-- may have a retention policy (its only way out).
ALTER TYPE lifecycle.audit_operation ADD VALUE 'RETENTION';
COMMENT ON TABLE lifecycle.audit_log IS
  'Every change of an audited table (a retention batch: one RETENTION row); append-only: rows leave only through a retention policy on it';

-- The rest is new.

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
