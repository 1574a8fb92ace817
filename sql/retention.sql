--
-- Retention and archival: policies and their errors, runs in batches
-- (delete, archive, purge of soft-deleted rows), per-owner preferences,
-- legal holds, rows that children still reference, max_runtime, the run
-- records and views, restore from the archive, what other roles may do.
--
CREATE EXTENSION pg_lifecycle;
SET timezone = 'UTC';

CREATE TABLE regress_prefs (user_id uuid PRIMARY KEY, data_retention_days integer, label text);
INSERT INTO regress_prefs VALUES
    ('00000000-0000-4000-8000-000000000001', 30, 'keeps 30 days'),
    ('00000000-0000-4000-8000-000000000002', 0, 'wants none: min_keep applies');
-- 100 events, one a day back from now, owners 0..3 in turn
CREATE TABLE regress_events (id bigint PRIMARY KEY, user_id uuid, created_at timestamptz NOT NULL,
                             body text);
CREATE INDEX ON regress_events (created_at);
INSERT INTO regress_events
SELECT g, ('00000000-0000-4000-8000-00000000000' || (g % 4))::uuid,
       now() - g * interval '1 day' - interval '1 minute', 'event ' || g
  FROM generate_series(1, 100) g;
-- parents, three of them referenced by children (NO ACTION / RESTRICT)
CREATE TABLE regress_parents (id int PRIMARY KEY, created_at timestamptz NOT NULL);
CREATE TABLE regress_kids (id int PRIMARY KEY, parent_id int REFERENCES regress_parents);
CREATE TABLE regress_pets (id int PRIMARY KEY, parent_id int REFERENCES regress_parents ON DELETE RESTRICT);
INSERT INTO regress_parents SELECT g, now() - g * interval '1 day' - interval '1 minute'
  FROM generate_series(1, 50) g;
INSERT INTO regress_kids VALUES (1, 45), (2, 46), (3, 20), (4, 5);
INSERT INTO regress_pets VALUES (1, 30);

--
-- set_retention: every error, and nothing changed by any of them
--
SELECT lifecycle.set_retention(NULL, '1 day');
SELECT lifecycle.set_retention('regress_events', NULL);
SELECT lifecycle.set_retention('regress_events', '0 days');
SELECT lifecycle.set_retention('regress_events', '-1 day');
SELECT lifecycle.set_retention('regress_events', '1 day', timestamp_column => 'nope');
SELECT lifecycle.set_retention('regress_events', '1 day', timestamp_column => 'body');
SELECT lifecycle.set_retention('regress_events', '1 day', batch_size => 0);
SELECT lifecycle.set_retention('regress_events', '1 day', min_keep => '-1 day');
SELECT lifecycle.set_retention('regress_events', '1 day', owner_column => 'user_id',
                               preference_table => 'regress_prefs');
SELECT lifecycle.set_retention('regress_events', '1 day', owner_column => 'id',
                               preference_table => 'regress_prefs', preference_key => 'user_id',
                               preference_column => 'data_retention_days');
SELECT lifecycle.set_retention('regress_events', '1 day', owner_column => 'user_id',
                               preference_table => 'regress_prefs', preference_key => 'user_id',
                               preference_column => 'label');
SELECT lifecycle.set_retention('regress_events', '1 day', owner_column => 'user_id',
                               preference_table => 'regress_prefs', preference_key => 'nope',
                               preference_column => 'label');
CREATE VIEW regress_events_view AS SELECT * FROM regress_events;
SELECT lifecycle.set_retention('regress_events_view', '1 day');
DROP VIEW regress_events_view;
CREATE TABLE regress_nokey (created_at timestamptz);
SELECT lifecycle.set_retention('regress_nokey', '1 day', action => 'archive');
-- archiving parents would delete or change the children's rows too
CREATE TABLE regress_cascading (id int PRIMARY KEY, created_at timestamptz);
CREATE TABLE regress_cascaded (id int PRIMARY KEY, c int REFERENCES regress_cascading ON DELETE CASCADE);
SELECT lifecycle.set_retention('regress_cascading', '1 day', action => 'archive');
SELECT lifecycle.set_retention('regress_cascading', '1 day');     -- delete: the foreign key decides
SELECT lifecycle.drop_retention('regress_cascading');
CREATE TABLE regress_has_archived_at (id int PRIMARY KEY, created_at timestamptz, archived_at timestamptz);
SELECT lifecycle.set_retention('regress_has_archived_at', '1 day', action => 'archive');
-- partitions: set it on the root
CREATE TABLE regress_parted (id int, created_at timestamptz NOT NULL) PARTITION BY RANGE (created_at);
CREATE TABLE regress_parted_old PARTITION OF regress_parted FOR VALUES FROM ('2000-01-01') TO ('2020-01-01');
CREATE TABLE regress_parted_new PARTITION OF regress_parted FOR VALUES FROM ('2020-01-01') TO ('2100-01-01');
SELECT lifecycle.set_retention('regress_parted_old', '1 day');
CREATE TEMP TABLE regress_temp (created_at timestamptz);
SELECT lifecycle.set_retention('regress_temp', '1 day');
SELECT lifecycle.set_retention('lifecycle.retention_runs', '1 day', timestamp_column => 'started_at');
-- an archive schema of another role
CREATE ROLE regress_other;
CREATE SCHEMA regress_not_mine AUTHORIZATION regress_other;
SELECT lifecycle.set_retention('regress_events', '1 day', action => 'archive',
                               archive_schema => 'regress_not_mine');
SELECT count(*) AS policies, (SELECT count(*) FROM pg_namespace WHERE nspname = 'archive') AS archive_schemas
  FROM lifecycle.retention_policies;

--
-- delete: rows older than keep leave in batches; rows children still
-- reference are skipped and counted, never an aborted run
--
SELECT lifecycle.set_retention('regress_parents', '10 days', batch_size => 16);
SELECT lifecycle.set_retention('regress_parents', '10 days', batch_size => 16);   -- idempotent
SELECT relid, keep, timestamp_column, action, batch_size, owner_column, min_keep, enabled
  FROM lifecycle.retention_policies;
SELECT lifecycle.retention_waiting('regress_parents') AS waiting;
CALL lifecycle.run_retention();
SELECT run_id, relid, action, status, rows_deleted, rows_archived, rows_skipped, batches, error,
       finished_at >= started_at AS finished
  FROM lifecycle.retention_runs ORDER BY run_id, relid::text;
SELECT array_agg(id ORDER BY id) AS parents_left_older_than_10_days
  FROM regress_parents WHERE created_at < now() - interval '10 days';
SELECT count(*) AS young_parents_kept FROM regress_parents WHERE created_at >= now() - interval '10 days';
-- the overview: last run, what is waiting (the skipped rows), not scheduled
SELECT table_name, action, keep, enabled, last_run_id, last_status, last_rows_deleted,
       last_rows_skipped, next_due, rows_waiting
  FROM lifecycle.retention_overview;
-- a child let go: the next run removes its parent
DELETE FROM regress_kids WHERE parent_id = 45;
CALL lifecycle.run_retention(only_table => 'regress_parents');
SELECT run_id, status, rows_deleted, rows_skipped FROM lifecycle.retention_runs WHERE run_id = 2;
SELECT count(*) AS parent_45 FROM regress_parents WHERE id = 45;

--
-- archive, with each owner's own preference and a legal hold
--
SELECT lifecycle.set_retention('regress_events', '10 days', action => 'archive', batch_size => 7,
                               owner_column => 'user_id', preference_table => 'regress_prefs',
                               preference_key => 'user_id', preference_column => 'data_retention_days',
                               min_keep => '5 days');
-- the archive exists before the first run, owned by the table's owner, no access for others
SELECT c.relname, n.nspname, c.relowner = (SELECT relowner FROM pg_class WHERE oid = 'regress_events'::regclass) AS same_owner,
       (SELECT bool_and(a.grantee = c.relowner) FROM aclexplode(c.relacl) a) AS only_owner_may,
       obj_description(c.oid, 'pg_class') AS comment,
       EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e') AS extension_member
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'archive' AND c.relkind = 'r';
SELECT indexrelid::regclass AS archive_index FROM pg_index WHERE indrelid = 'archive.regress_events'::regclass ORDER BY 1::text;
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'archive.regress_events'::regclass AND attnum > 0 ORDER BY attnum;
-- holds: a reason is required, the value is read by the owner column's type
SELECT lifecycle.hold_retention('regress_events', '00000000-0000-4000-8000-000000000003', '');
SELECT lifecycle.hold_retention('regress_events', 'not a uuid', 'litigation');
SELECT lifecycle.hold_retention('regress_parents', '1', 'litigation');
SELECT lifecycle.hold_retention('regress_kids', '1', 'litigation');
SELECT lifecycle.hold_retention('regress_events', '00000000-0000-4000-8000-000000000003', 'litigation, case 14');
SELECT lifecycle.hold_retention('regress_events', '00000000-0000-4000-8000-000000000000', 'expired hold',
                                until => now() - interval '1 second');
SELECT relid, owner_value, reason, held_until IS NOT NULL AS has_until FROM lifecycle.retention_holds ORDER BY 2;
SELECT lifecycle.retention_waiting('regress_events') AS waiting;
CALL lifecycle.run_retention(only_table => 'regress_events');
SELECT run_id, relid, status, rows_deleted, rows_archived, rows_skipped, batches, bytes_archived > 0 AS bytes
  FROM lifecycle.retention_runs WHERE relid = 'regress_events'::regclass;
-- owner 0: keep (10 days); 1: its 30 days; 2: its 0 days, raised to min_keep 5; 3: held
SELECT user_id, count(*) AS kept, max(extract(day FROM now() - created_at)) AS oldest_days
  FROM regress_events GROUP BY 1 ORDER BY 1;
SELECT count(*) AS archived, count(DISTINCT retention_run_id) AS runs,
       bool_and(archived_at IS NOT NULL) AS stamped FROM archive.regress_events;
-- every row in exactly one place
SELECT (SELECT count(*) FROM regress_events) + (SELECT count(*) FROM archive.regress_events) AS total;
SELECT day = date_trunc('day', now()) AS today, table_name, rows_archived, bytes_archived > 0 AS bytes
  FROM lifecycle.archive_statistics;

-- a column added to the table reaches the archive at the next run
ALTER TABLE regress_events ADD COLUMN source text DEFAULT 'api';
SELECT lifecycle.release_retention_hold('regress_events', '00000000-0000-4000-8000-000000000003');
SELECT lifecycle.release_retention_hold('regress_events', '00000000-0000-4000-8000-000000000003');
CALL lifecycle.run_retention();
SELECT count(*) AS archived, count(source) AS with_source FROM archive.regress_events;
SELECT user_id, count(*) AS kept FROM regress_events GROUP BY 1 ORDER BY 1;

-- restore_archived: one row by its key (the latest copy), or a time range
SELECT lifecycle.restore_archived('regress_events', '12');
SELECT lifecycle.restore_archived('regress_events', '12');    -- no longer archived
SELECT id, user_id, body, source FROM regress_events WHERE id = 12;
SELECT lifecycle.restore_archived('regress_events', now() - interval '1 hour', now() + interval '1 hour')
    AS restored;
SELECT count(*) AS events, (SELECT count(*) FROM archive.regress_events) AS archived FROM regress_events;
SELECT lifecycle.restore_archived('regress_parents', '1');
SELECT lifecycle.restore_archived('regress_events', NULL::text);

-- a type change the archive cannot follow stops that policy, not the run
UPDATE regress_events SET created_at = created_at - interval '1 year' WHERE id > 90;
ALTER TABLE regress_events ALTER COLUMN body TYPE varchar(200);
SELECT lifecycle.cleanup_retention_data();
SELECT relid, status, error FROM lifecycle.retention_runs
 WHERE run_id = (SELECT max(run_id) FROM lifecycle.retention_runs) ORDER BY relid::text;
ALTER TABLE archive.regress_events ALTER COLUMN body TYPE varchar(200);
SELECT lifecycle.cleanup_retention_data();
SELECT count(*) AS events, (SELECT count(*) FROM archive.regress_events) AS archived FROM regress_events;

--
-- max_runtime: a run always does one batch, then stops with "partial";
-- the next run goes on
--
SELECT lifecycle.restore_archived('regress_events', now() - interval '1 hour', now() + interval '1 hour')
    AS restored;
UPDATE regress_events SET created_at = created_at - interval '1 year';
SELECT lifecycle.set_retention('regress_events', '10 days', action => 'archive', batch_size => 10);
CALL lifecycle.run_retention(max_runtime => '1 microsecond', only_table => 'regress_events');
SELECT relid, status, rows_archived, batches FROM lifecycle.retention_runs
 WHERE run_id = (SELECT max(run_id) FROM lifecycle.retention_runs) ORDER BY relid::text;
CALL lifecycle.run_retention(max_runtime => '1 microsecond', only_table => 'regress_events');
SELECT relid, status, rows_archived, batches FROM lifecycle.retention_runs
 WHERE run_id = (SELECT max(run_id) FROM lifecycle.retention_runs);
-- several policies: the one not reached is partial too, and goes first next time
CALL lifecycle.run_retention(max_runtime => '1 microsecond');
SELECT relid, status, rows_archived, batches FROM lifecycle.retention_runs
 WHERE run_id = (SELECT max(run_id) FROM lifecycle.retention_runs) ORDER BY relid::text;
CALL lifecycle.run_retention();
SELECT relid, status, rows_archived, batches FROM lifecycle.retention_runs
 WHERE run_id = (SELECT max(run_id) FROM lifecycle.retention_runs) ORDER BY relid::text;
SELECT count(*) AS events_left FROM regress_events;
-- lifecycle.retention_pause: after each batch, wait that many times its duration
SET lifecycle.retention_pause = -1;
SET lifecycle.retention_pause = 2;
INSERT INTO regress_events (id, user_id, created_at, body)
SELECT 5000 + g, NULL, now() - interval '1 year', 'paused' FROM generate_series(1, 25) g;
CALL lifecycle.run_retention(only_table => 'regress_events');
SELECT status, rows_archived, batches FROM lifecycle.retention_runs
 WHERE run_id = (SELECT max(run_id) FROM lifecycle.retention_runs);
RESET lifecycle.retention_pause;
SHOW lifecycle.retention_pause;
CALL lifecycle.run_retention(max_runtime => '0 seconds');
CALL lifecycle.run_retention(max_runtime => NULL);
CALL lifecycle.run_retention(only_table => 'regress_kids');
-- a CALL inside a transaction block cannot commit as it goes
BEGIN;
CALL lifecycle.run_retention();
ROLLBACK;

--
-- purge_soft_deleted: rows soft-deleted more than keep ago, with their
-- soft-deleted descendants, children first
--
CREATE TABLE regress_folders (id int PRIMARY KEY, created_at timestamptz DEFAULT now());
CREATE TABLE regress_files (id int PRIMARY KEY, folder_id int REFERENCES regress_folders);
SELECT lifecycle.enable_soft_delete('regress_folders'), lifecycle.enable_soft_delete('regress_files');
INSERT INTO regress_folders (id) VALUES (1), (2), (3);
INSERT INTO regress_files VALUES (10, 1), (11, 1), (20, 2), (30, 3);
SELECT lifecycle.soft_delete('regress_folders', 1), lifecycle.soft_delete('regress_folders', 2);
UPDATE regress_folders SET deleted_at = now() - interval '40 days' WHERE id = 1;
UPDATE regress_files SET deleted_at = now() - interval '40 days' WHERE folder_id = 1;
SELECT lifecycle.set_retention('regress_folders', '30 days', action => 'purge_soft_deleted');
SELECT lifecycle.hold_retention('regress_folders', '1', 'no owner column anyway');
SELECT lifecycle.retention_waiting('regress_folders') AS waiting;
SELECT lifecycle.cleanup_retention_data() -> 'public.regress_folders' AS purged;
SELECT 'folder' AS t, id, deleted_at IS NOT NULL AS deleted FROM regress_folders
UNION ALL SELECT 'file', id, deleted_at IS NOT NULL FROM regress_files ORDER BY 1, 2;
-- a table whose DELETEs become soft deletes cannot have a delete policy
CREATE TABLE regress_intercepted (id int PRIMARY KEY, created_at timestamptz);
SELECT lifecycle.enable_soft_delete('regress_intercepted', intercept_delete => true);
SELECT lifecycle.set_retention('regress_intercepted', '1 day');
-- nor one whose trigger keeps rows: the batch is undone, the policy fails
CREATE TABLE regress_sticky (id int PRIMARY KEY, created_at timestamptz);
INSERT INTO regress_sticky SELECT g, now() - interval '1 year' FROM generate_series(1, 5) g;
CREATE FUNCTION regress_keep() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE TRIGGER keep BEFORE DELETE ON regress_sticky FOR EACH ROW EXECUTE FUNCTION regress_keep();
SELECT lifecycle.set_retention('regress_sticky', '1 day');
CALL lifecycle.run_retention(only_table => 'regress_sticky');
SELECT status, rows_deleted, error FROM lifecycle.retention_runs
 WHERE relid = 'regress_sticky'::regclass;
SELECT count(*) AS sticky_rows FROM regress_sticky;

--
-- disabled policies do not run; drop_retention forgets; DROP TABLE too
--
SELECT lifecycle.set_retention('regress_sticky', '1 day', enabled => false);
CALL lifecycle.run_retention();
SELECT count(*) AS sticky_runs FROM lifecycle.retention_runs WHERE relid = 'regress_sticky'::regclass;
SELECT lifecycle.drop_retention('regress_sticky');
SELECT lifecycle.drop_retention('regress_sticky');
DROP TABLE regress_kids, regress_pets;
DROP TABLE regress_parents;
SELECT relid FROM lifecycle.retention_policies ORDER BY 1::text;

--
-- Range-partitioned on the timestamp column: partitions whose every row
-- has expired are dropped whole (no row-by-row work); the one holding the
-- cutoff goes row by row.  Not so when a DROP would bypass what a DELETE
-- does (audited here): then every partition goes row by row.
--
CREATE TABLE regress_metrics (id int, at date NOT NULL, v int) PARTITION BY RANGE (at);
CREATE TABLE regress_metrics_old PARTITION OF regress_metrics FOR VALUES FROM ('2000-01-01') TO ('2020-01-01');
CREATE TABLE regress_metrics_2020 PARTITION OF regress_metrics FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
CREATE TABLE regress_metrics_now PARTITION OF regress_metrics FOR VALUES FROM ('2021-01-01') TO (MAXVALUE);
INSERT INTO regress_metrics SELECT g, DATE '2019-12-01' + g, g FROM generate_series(0, 99) g;   -- old and 2020
INSERT INTO regress_metrics SELECT 1000 + g, current_date - g, g FROM generate_series(0, 59) g;  -- the last 60 days
SELECT lifecycle.set_retention('regress_metrics', '30 days', timestamp_column => 'at', batch_size => 10);
CALL lifecycle.run_retention(only_table => 'regress_metrics');
SELECT status, rows_deleted, batches FROM lifecycle.retention_runs
 WHERE relid = 'regress_metrics'::regclass;
SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'regress_metrics'::regclass ORDER BY 1;
SELECT count(*) AS kept, min(at) >= current_date - 30 AS only_young FROM regress_metrics;
-- archive: expired partitions are detached and moved into the archive
-- schema whole, as inheritance children of the archive table (which reads,
-- and restore_archived(), see); the partition holding the cutoff row by row
CREATE TABLE regress_readings (id int, at date NOT NULL, v int,
                               user_id uuid REFERENCES regress_prefs (user_id)) PARTITION BY RANGE (at);
CREATE TABLE regress_readings_2019 PARTITION OF regress_readings FOR VALUES FROM ('2019-01-01') TO ('2020-01-01');
CREATE TABLE regress_readings_2020 PARTITION OF regress_readings FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
CREATE TABLE regress_readings_now PARTITION OF regress_readings FOR VALUES FROM ('2021-01-01') TO (MAXVALUE);
CREATE TABLE regress_readings_other PARTITION OF regress_readings DEFAULT;
ALTER TABLE regress_readings ADD PRIMARY KEY (id, at);
INSERT INTO regress_readings SELECT g, DATE '2019-06-01' + g * 3, g, '00000000-0000-4000-8000-000000000001' FROM generate_series(0, 99) g;
INSERT INTO regress_readings SELECT 1000 + g, current_date - g, g FROM generate_series(0, 59) g;
SELECT lifecycle.set_retention('regress_readings', '30 days', timestamp_column => 'at', action => 'archive',
                               batch_size => 10);
CALL lifecycle.run_retention(only_table => 'regress_readings');
SELECT status, rows_archived, batches, bytes_archived > 0 AS bytes FROM lifecycle.retention_runs
 WHERE relid = 'regress_readings'::regclass;
SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'regress_readings'::regclass ORDER BY 1;
SELECT c.relname, (SELECT count(*) FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'f') AS foreign_keys,
       (SELECT bool_and(a.grantee = c.relowner) FROM aclexplode(c.relacl) a) AS only_owner_may
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'archive.regress_readings'::regclass ORDER BY 1;
SELECT count(*) AS archived, count(*) FILTER (WHERE retention_run_id IS NOT NULL) AS with_run,
       count(*) FILTER (WHERE tableoid = 'archive.regress_readings'::regclass) AS row_by_row
  FROM archive.regress_readings;
SELECT count(*) AS kept FROM regress_readings;
-- the rows back: those of the moved partitions go into the default partition
SELECT lifecycle.restore_archived('regress_readings', now() - interval '1 hour', now() + interval '1 hour') AS restored;
SELECT count(*) AS back, count(*) FILTER (WHERE tableoid = 'regress_readings_other'::regclass) AS in_default
  FROM regress_readings;

-- audited: the same partitions stay, their rows go row by row (and are logged)
CREATE TABLE regress_metrics_a (id int, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE regress_metrics_a_old PARTITION OF regress_metrics_a FOR VALUES FROM ('2000-01-01') TO ('2020-01-01');
CREATE TABLE regress_metrics_a_now PARTITION OF regress_metrics_a FOR VALUES FROM ('2020-01-01') TO (MAXVALUE);
INSERT INTO regress_metrics_a SELECT g, DATE '2019-12-01' + g FROM generate_series(0, 9) g;
SELECT lifecycle.enable_audit('regress_metrics_a');
SELECT lifecycle.set_retention('regress_metrics_a', '30 days', timestamp_column => 'at');
CALL lifecycle.run_retention(only_table => 'regress_metrics_a');
SELECT status, rows_deleted, batches FROM lifecycle.retention_runs
 WHERE relid = 'regress_metrics_a'::regclass;
SELECT count(*) AS partitions_kept FROM pg_inherits WHERE inhparent = 'regress_metrics_a'::regclass;
SELECT count(*) AS rows_left FROM regress_metrics_a;
SELECT op, old_values->>'rows' AS rows FROM lifecycle.audit_log WHERE table_name = 'regress_metrics_a' AND op = 'RETENTION'
 ORDER BY id;
SELECT lifecycle.disable_audit('regress_metrics_a');

--
-- An audited table: each retention batch is one RETENTION row in the log
-- (how many, how, the run and the key range), not one row per row
--
CREATE TABLE regress_audited (id int PRIMARY KEY, created_at timestamptz NOT NULL);
SELECT lifecycle.enable_audit('regress_audited');
INSERT INTO regress_audited SELECT g, now() - g * interval '1 day' - interval '1 hour' FROM generate_series(1, 12) g;
SELECT lifecycle.set_retention('regress_audited', '2 days', action => 'archive', batch_size => 4);
CALL lifecycle.run_retention(only_table => 'regress_audited');
SELECT op, count(*) FROM lifecycle.audit_log WHERE table_name = 'regress_audited' GROUP BY 1 ORDER BY 1;
SELECT record_id, old_values - 'run_id' AS batch, new_values
  FROM lifecycle.audit_log WHERE op = 'RETENTION' ORDER BY id;

--
-- The audit log is append-only, except through a retention policy on it;
-- its archive is append-only too and cannot be restored from
--
DELETE FROM lifecycle.audit_log;
SELECT lifecycle.set_retention('lifecycle.audit_log', '1 day');
SELECT lifecycle.set_retention('lifecycle.audit_log', '1 day', timestamp_column => 'occurred_at',
                               action => 'purge_soft_deleted');
UPDATE lifecycle.audit_log SET occurred_at = occurred_at - interval '1 year'
 WHERE op = 'INSERT' AND table_name = 'regress_audited';
-- (an old log, made here by a superuser dropping the trigger for a moment)
BEGIN;
DROP TRIGGER audit_log_append_only ON lifecycle.audit_log;
UPDATE lifecycle.audit_log SET occurred_at = occurred_at - interval '1 year'
 WHERE op = 'INSERT' AND table_name = 'regress_audited';
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON lifecycle.audit_log
    FOR EACH ROW EXECUTE FUNCTION lifecycle.audit_log_append_only();
ALTER TABLE lifecycle.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;
COMMIT;
SELECT lifecycle.set_retention('lifecycle.audit_log', '30 days', timestamp_column => 'occurred_at',
                               action => 'archive', batch_size => 5);
CALL lifecycle.run_retention(only_table => 'lifecycle.audit_log');
SELECT status, rows_archived, batches, error FROM lifecycle.retention_runs
 WHERE relid = 'lifecycle.audit_log'::regclass;
SELECT op, count(*) FROM lifecycle.audit_log WHERE table_name = 'regress_audited' GROUP BY 1 ORDER BY 1;
SELECT op, count(*) FROM archive.audit_log GROUP BY 1 ORDER BY 1;
DELETE FROM archive.audit_log;
UPDATE archive.audit_log SET op = 'DELETE';
TRUNCATE archive.audit_log;
SELECT lifecycle.restore_archived('lifecycle.audit_log', '1');
SELECT lifecycle.drop_retention('lifecycle.audit_log');

--
-- Found in review: holds compare in the owner column's own type; a policy
-- may not drop its owner column from under active holds; a preference key
-- must be unique; a cascading foreign key to a partition stops archiving;
-- an audited table with a uuid key; cleanup_retention_data() leaves the
-- caller's transaction settings alone
--
CREATE TABLE regress_num (id int PRIMARY KEY, owner numeric, created_at timestamptz NOT NULL);
CREATE INDEX ON regress_num (created_at);
INSERT INTO regress_num VALUES (1, 42, now() - interval '1 year'), (2, 43, now() - interval '1 year');
SELECT lifecycle.set_retention('regress_num', '1 day', owner_column => 'owner');
SELECT lifecycle.hold_retention('regress_num', '42.0', 'the same owner as 42');
SELECT owner_value FROM lifecycle.retention_holds WHERE relid = 'regress_num'::regclass;
SELECT lifecycle.set_retention('regress_num', '2 days');
SELECT lifecycle.cleanup_retention_data() -> 'public.regress_num' AS removed;
SELECT id, owner FROM regress_num;
CREATE TABLE regress_dup_prefs (owner numeric, days int);
SELECT lifecycle.set_retention('regress_num', '1 day', owner_column => 'owner',
                               preference_table => 'regress_dup_prefs', preference_key => 'owner',
                               preference_column => 'days');
CREATE TABLE regress_pc (id int, at date NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE regress_pc_old PARTITION OF regress_pc FOR VALUES FROM ('2000-01-01') TO ('2020-01-01');
CREATE TABLE regress_pc_kid (id int PRIMARY KEY, pc int, pat date,
                             FOREIGN KEY (pc, pat) REFERENCES regress_pc_old ON DELETE CASCADE);
SELECT lifecycle.set_retention('regress_pc', '1 day', timestamp_column => 'at', action => 'archive');
CREATE TABLE regress_uuid_audited (id uuid PRIMARY KEY, created_at timestamptz NOT NULL);
CREATE INDEX ON regress_uuid_audited (created_at);
SELECT lifecycle.enable_audit('regress_uuid_audited');
INSERT INTO regress_uuid_audited VALUES ('00000000-0000-4000-8000-00000000000b', now() - interval '1 year'),
                                        ('00000000-0000-4000-8000-00000000000a', now() - interval '1 year');
SELECT lifecycle.set_retention('regress_uuid_audited', '1 day');
BEGIN;
SET LOCAL lock_timeout = '7s';
SELECT lifecycle.cleanup_retention_data() -> 'public.regress_uuid_audited' AS removed;
SELECT current_setting('lock_timeout') AS lock_timeout_after;
COMMIT;
SELECT old_values->>'first_key' AS first_key, old_values->>'last_key' AS last_key
  FROM lifecycle.audit_log WHERE table_name = 'regress_uuid_audited' AND op = 'RETENTION';
SELECT lifecycle.disable_audit('regress_uuid_audited');

--
-- pg_cron is not installed here: a clear error
--
SELECT lifecycle.schedule_retention();
SELECT lifecycle.unschedule_retention();
SELECT lifecycle.schedule_usage_refresh();
SELECT lifecycle.retention_next_due() AS next_due;

--
-- other roles: only the table's owner sets policies, places holds and
-- restores; running retention and its records are the extension owner's
--
CREATE ROLE regress_member;
GRANT SELECT, INSERT ON regress_events TO regress_member;
SET ROLE regress_member;
SELECT lifecycle.set_retention('regress_events', '1 day');
SELECT lifecycle.drop_retention('regress_events');
SELECT lifecycle.hold_retention('regress_events', '00000000-0000-4000-8000-000000000001', 'mine');
SELECT lifecycle.release_retention_hold('regress_events', '00000000-0000-4000-8000-000000000001');
CALL lifecycle.run_retention();
SELECT lifecycle.cleanup_retention_data();
SELECT lifecycle.schedule_retention();
SELECT lifecycle.restore_archived('regress_events', '13');
SELECT count(*) FROM lifecycle.retention_runs;
SELECT count(*) FROM lifecycle.retention_overview;
-- counts as the caller: rows it may read
SELECT lifecycle.retention_waiting('regress_events') AS waiting_as_member;
RESET ROLE;

--
-- DROP EXTENSION leaves the archived data
--
SELECT count(*) > 0 AS archived_rows FROM archive.regress_events;
SET client_min_messages = warning;
DROP TABLE regress_files, regress_folders, regress_intercepted, regress_events, regress_prefs, regress_audited,
           regress_metrics, regress_metrics_a, regress_readings, regress_num, regress_dup_prefs,
           regress_pc_kid, regress_pc, regress_uuid_audited,
           regress_nokey, regress_cascaded, regress_cascading, regress_has_archived_at,
           regress_parted, regress_sticky CASCADE;
DROP FUNCTION regress_keep();
DROP EXTENSION pg_lifecycle;
RESET client_min_messages;
SELECT count(*) > 0 AS archive_kept FROM archive.regress_events;
SELECT op, count(*) AS log_archive_kept FROM archive.audit_log GROUP BY 1;
DROP SCHEMA archive CASCADE;
DROP SCHEMA regress_not_mine;
DROP ROLE regress_other;
DROP ROLE regress_member;
