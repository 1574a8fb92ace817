--
-- Usage counters and limits: counts follow inserts, deletes, moves, soft
-- delete and restore, permanent deletes, TRUNCATE and bulk statements;
-- limits refuse what would pass them and change nothing; metered usage,
-- its ledger and resets; repair of drift; who may do what; every error.
--
CREATE EXTENSION pg_lifecycle;
SET timezone = 'UTC';

CREATE TABLE regress_accounts (
    id                    uuid PRIMARY KEY,
    name                  text NOT NULL,
    current_project_count integer NOT NULL DEFAULT 0,
    max_projects          integer,
    current_dataset_count bigint NOT NULL DEFAULT 0,
    max_datasets          bigint,
    ai_requests           integer NOT NULL DEFAULT 0,
    max_ai_requests       integer
);
CREATE TABLE regress_projects (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id uuid REFERENCES regress_accounts,
    name       text NOT NULL
);
CREATE TABLE regress_datasets (
    id         bigint PRIMARY KEY,
    account_id uuid NOT NULL REFERENCES regress_accounts,
    deleted_at timestamptz
);
INSERT INTO regress_accounts (id, name, max_projects, max_ai_requests) VALUES
    ('11111111-1111-4111-8111-111111111111', 'acme', 3, 10),
    ('22222222-2222-4222-8222-222222222222', 'globex', NULL, NULL);
-- rows that exist before tracking starts are counted by the backfill
INSERT INTO regress_projects (account_id, name) VALUES
    ('11111111-1111-4111-8111-111111111111', 'p1'), (NULL, 'orphan');
INSERT INTO regress_datasets VALUES
    (1, '11111111-1111-4111-8111-111111111111', NULL),
    (2, '11111111-1111-4111-8111-111111111111', now());   -- soft-deleted: not counted

SELECT lifecycle.track_usage('projects', 'regress_accounts', 'current_project_count',
                             'regress_projects', 'account_id', 'max_projects');
SELECT lifecycle.track_usage('datasets', 'regress_accounts', 'current_dataset_count',
                             'regress_datasets', 'account_id', 'max_datasets');
SELECT lifecycle.track_usage('ai_requests', 'regress_accounts', 'ai_requests',
                             NULL, NULL, 'max_ai_requests');
-- idempotent
SELECT lifecycle.track_usage('projects', 'regress_accounts', 'current_project_count',
                             'regress_projects', 'account_id', 'max_projects');
SELECT resource_type, counter_table, counter_column, source_table, source_column, limit_column
  FROM lifecycle.usage_resources ORDER BY 1;
SELECT tgrelid::regclass, tgname FROM pg_trigger
 WHERE tgrelid IN ('regress_accounts'::regclass, 'regress_projects'::regclass) AND NOT tgisinternal
 ORDER BY 1, 2;

CREATE VIEW regress_counts AS
SELECT a.name, a.current_project_count AS projects, a.current_dataset_count AS datasets,
       a.ai_requests AS ai,
       (SELECT count(*) FROM regress_projects p WHERE p.account_id = a.id) AS real_projects,
       (SELECT count(*) FROM regress_datasets d WHERE d.account_id = a.id AND d.deleted_at IS NULL) AS real_datasets
  FROM regress_accounts a ORDER BY a.name;
SELECT * FROM regress_counts;

-- insert, one row and several, several accounts in one statement
INSERT INTO regress_projects (account_id, name) VALUES ('11111111-1111-4111-8111-111111111111', 'p2');
INSERT INTO regress_projects (account_id, name) VALUES
    ('22222222-2222-4222-8222-222222222222', 'g1'), ('22222222-2222-4222-8222-222222222222', 'g2'),
    ('11111111-1111-4111-8111-111111111111', 'p3'), (NULL, 'orphan2');
SELECT * FROM regress_counts;

-- the limit (3 for acme): an insert that would pass it fails, names the
-- account, the resource and the limit, and changes nothing
INSERT INTO regress_projects (account_id, name) VALUES ('11111111-1111-4111-8111-111111111111', 'p4');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- a statement of several rows fails as a whole
INSERT INTO regress_projects (account_id, name) VALUES
    ('22222222-2222-4222-8222-222222222222', 'g3'), ('11111111-1111-4111-8111-111111111111', 'p4');
SELECT * FROM regress_counts;

-- delete and move
DELETE FROM regress_projects WHERE name = 'p3';
UPDATE regress_projects SET account_id = '22222222-2222-4222-8222-222222222222' WHERE name = 'p2';
UPDATE regress_projects SET name = 'p1 renamed' WHERE name = 'p1';      -- no change
SELECT * FROM regress_counts;
-- a move into a full account is refused
UPDATE regress_accounts SET max_projects = 1 WHERE name = 'acme';
UPDATE regress_projects SET account_id = '11111111-1111-4111-8111-111111111111' WHERE name = 'g1';
-- a lower limit than the count allows decrements, no increments
UPDATE regress_accounts SET max_projects = 0 WHERE name = 'acme';
DELETE FROM regress_projects WHERE name = 'p1 renamed';
INSERT INTO regress_projects (account_id, name) VALUES ('11111111-1111-4111-8111-111111111111', 'p5');
-- NULL limit: unlimited
UPDATE regress_accounts SET max_projects = NULL WHERE name = 'acme';
INSERT INTO regress_projects (account_id, name)
SELECT '11111111-1111-4111-8111-111111111111', 'bulk ' || i FROM generate_series(1, 50) i;
SELECT * FROM regress_counts;
-- a limit put back under the count: nothing more fits
UPDATE regress_accounts SET max_projects = 50 WHERE name = 'acme';
INSERT INTO regress_projects (account_id, name) VALUES ('11111111-1111-4111-8111-111111111111', 'p6');
UPDATE regress_accounts SET max_projects = 52 WHERE name = 'acme';
INSERT INTO regress_projects (account_id, name) VALUES ('11111111-1111-4111-8111-111111111111', 'p6');
SELECT * FROM regress_counts;

-- soft delete, restore, permanent delete of a soft-deleted row (no double
-- decrement), a restore that would pass the limit
INSERT INTO regress_datasets VALUES (3, '11111111-1111-4111-8111-111111111111', NULL),
                                    (4, '22222222-2222-4222-8222-222222222222', NULL);
UPDATE regress_datasets SET deleted_at = now() WHERE id = 1;
SELECT * FROM regress_counts;
UPDATE regress_datasets SET deleted_at = NULL WHERE id = 2;
DELETE FROM regress_datasets WHERE id = 1;
SELECT * FROM regress_counts;
-- soft delete through the lifecycle functions is the same UPDATE
SELECT lifecycle.enable_soft_delete('regress_datasets');
SELECT lifecycle.soft_delete('regress_datasets', 3);
SELECT * FROM regress_counts;
SELECT lifecycle.restore_deleted('regress_datasets', 3);
SELECT * FROM regress_counts;
-- a restore that would pass the limit is refused
UPDATE regress_accounts SET max_datasets = 2 WHERE name = 'acme';
SELECT lifecycle.soft_delete('regress_datasets', 3);
INSERT INTO regress_datasets VALUES (5, '11111111-1111-4111-8111-111111111111', NULL);
SELECT lifecycle.restore_deleted('regress_datasets', 3);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM regress_counts;

-- TRUNCATE recounts
TRUNCATE regress_datasets;
SELECT * FROM regress_counts;

-- the counter columns are pg_lifecycle's
UPDATE regress_accounts SET current_project_count = 99;
INSERT INTO regress_accounts (id, name, current_project_count)
VALUES ('33333333-3333-4333-8333-333333333333', 'initech', 5);
INSERT INTO regress_accounts (id, name) VALUES ('33333333-3333-4333-8333-333333333333', 'initech');
UPDATE regress_accounts SET name = 'Initech' WHERE name = 'initech';   -- other columns as before
SELECT * FROM regress_counts;

-- the exact counts, per resource, and repair of drift
SELECT * FROM lifecycle.calculate_account_usage('11111111-1111-4111-8111-111111111111');
ALTER TABLE regress_projects DISABLE TRIGGER lifecycle_usage_insert;
INSERT INTO regress_projects (account_id, name) VALUES ('22222222-2222-4222-8222-222222222222', 'missed');
ALTER TABLE regress_projects ENABLE TRIGGER lifecycle_usage_insert;
SELECT resource_type, stored_count, actual_count FROM lifecycle.calculate_account_usage('22222222-2222-4222-8222-222222222222');
SELECT lifecycle.sync_usage_counters('22222222-2222-4222-8222-222222222222');
SELECT lifecycle.sync_usage_counters();       -- nothing left to correct
SELECT * FROM regress_counts;
SELECT lifecycle.refresh_usage_counters();    -- columns already right

-- metered usage: increments within the limit (10), the ledger, decrements
-- never below zero, resets
SELECT lifecycle.increment_usage_counter('11111111-1111-4111-8111-111111111111', 'ai_requests', 4);
SELECT lifecycle.increment_usage_counter('11111111-1111-4111-8111-111111111111', 'ai_requests');
SELECT lifecycle.increment_usage_counter('11111111-1111-4111-8111-111111111111', 'ai_requests', 6);  -- would be 11
SELECT lifecycle.increment_usage_counter('11111111-1111-4111-8111-111111111111', 'ai_requests', 5);
SELECT lifecycle.decrement_usage_counter('11111111-1111-4111-8111-111111111111', 'ai_requests', 11); -- below zero
SELECT lifecycle.decrement_usage_counter('11111111-1111-4111-8111-111111111111', 'ai_requests', 2);
SELECT lifecycle.increment_usage_counter('22222222-2222-4222-8222-222222222222', 'ai_requests', 1000);
SELECT name, ai FROM regress_counts;
SELECT account_id, resource_type, quantity, actor_id FROM lifecycle.usage_events ORDER BY id;
SELECT lifecycle.reset_usage_counter('ai_requests', '22222222-2222-4222-8222-222222222222');
SELECT lifecycle.reset_usage_counter('ai_requests');
SELECT lifecycle.reset_usage_counter('ai_requests');  -- all zero already
SELECT name, ai FROM regress_counts;
SELECT lifecycle.increment_usage_counter('11111111-1111-4111-8111-111111111111', 'ai_requests', 10);
SELECT lifecycle.increment_usage_counter('11111111-1111-4111-8111-111111111111', 'ai_requests', 1);

-- a partitioned source table: rows written through the root or straight
-- into a partition, and moved between partitions, are counted once
CREATE TABLE regress_events (id int, account_id uuid, kind text) PARTITION BY LIST (kind);
CREATE TABLE regress_events_a PARTITION OF regress_events FOR VALUES IN ('a');
CREATE TABLE regress_events_b PARTITION OF regress_events FOR VALUES IN ('b');
ALTER TABLE regress_accounts ADD COLUMN event_count integer NOT NULL DEFAULT 0;
SELECT lifecycle.track_usage('events', 'regress_accounts', 'event_count', 'regress_events', 'account_id');
SELECT lifecycle.track_usage('x', 'regress_accounts', 'event_count', 'regress_events_a', 'account_id');
SELECT lifecycle.track_usage('x', 'regress_accounts', 'event_count', NULL, NULL);
INSERT INTO regress_events VALUES (1, '11111111-1111-4111-8111-111111111111', 'a'),
                                  (2, '11111111-1111-4111-8111-111111111111', 'b');
INSERT INTO regress_events_a VALUES (3, '11111111-1111-4111-8111-111111111111', 'a');
UPDATE regress_events SET kind = 'b' WHERE id = 1;
DELETE FROM regress_events_b WHERE id = 2;
SELECT event_count, (SELECT count(*) FROM regress_events) AS real_events
  FROM regress_accounts WHERE name = 'acme';
SELECT lifecycle.untrack_usage('events');
ALTER TABLE regress_accounts DROP COLUMN event_count;
DROP TABLE regress_events;

-- the triggers run with a table owner's rights: operators planted earlier
-- in the writer's search_path must not be called
CREATE SCHEMA regress_evil;
CREATE FUNCTION regress_evil.neg(bigint) RETURNS bigint LANGUAGE plpgsql AS
  $$BEGIN RAISE EXCEPTION 'planted operator called as %', current_user; END$$;
CREATE FUNCTION regress_evil.ne(integer, bigint) RETURNS boolean LANGUAGE plpgsql AS
  $$BEGIN RAISE EXCEPTION 'planted operator called as %', current_user; END$$;
CREATE OPERATOR regress_evil.- (RIGHTARG = bigint, FUNCTION = regress_evil.neg);
CREATE OPERATOR regress_evil.<> (LEFTARG = integer, RIGHTARG = bigint, FUNCTION = regress_evil.ne);
CREATE OPERATOR regress_evil.= (LEFTARG = integer, RIGHTARG = bigint, FUNCTION = regress_evil.ne);
SET search_path = regress_evil, pg_catalog, public;
INSERT INTO regress_projects (account_id, name) VALUES
    ('22222222-2222-4222-8222-222222222222', 'e1'), ('22222222-2222-4222-8222-222222222222', 'e2');
DELETE FROM regress_projects WHERE name IN ('e1', 'e2');
SELECT lifecycle.sync_usage_counters(), lifecycle.refresh_usage_counters();
RESET search_path;
DROP SCHEMA regress_evil CASCADE;

-- a limit set by a later BEFORE trigger of the table (plan -> limit) is
-- the limit that counts
CREATE FUNCTION regress_plan_limits() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.max_projects := CASE NEW.name WHEN 'globex free' THEN 4 ELSE NEW.max_projects END;
    RETURN NEW;
END $$;
CREATE TRIGGER zz_plan_limits BEFORE UPDATE ON regress_accounts
    FOR EACH ROW EXECUTE FUNCTION regress_plan_limits();
UPDATE regress_accounts SET max_projects = 100 WHERE name = 'globex';
INSERT INTO regress_projects (account_id, name) VALUES ('22222222-2222-4222-8222-222222222222', 'g5');
UPDATE regress_accounts SET name = 'globex free' WHERE name = 'globex';
SELECT name, max_projects, current_project_count FROM regress_accounts WHERE id = '22222222-2222-4222-8222-222222222222';
INSERT INTO regress_projects (account_id, name) VALUES ('22222222-2222-4222-8222-222222222222', 'g6');
UPDATE regress_accounts SET name = 'globex', max_projects = NULL WHERE name = 'globex free';
DROP TRIGGER zz_plan_limits ON regress_accounts;
DROP FUNCTION regress_plan_limits();

-- columns are found by name: a dropped column of the counter table moves
-- the others' numbers, the guard still watches the right ones
ALTER TABLE regress_accounts ADD COLUMN scratch int;
ALTER TABLE regress_accounts DROP COLUMN scratch;
ALTER TABLE regress_accounts ADD COLUMN note text;
UPDATE regress_accounts SET note = 'ok' WHERE name = 'globex';
UPDATE regress_accounts SET current_dataset_count = 7 WHERE name = 'globex';

-- the owner's triggers on the counter table run with the database's
-- search_path when pg_lifecycle writes the counter as the owner: a
-- function planted in the writer's search_path is not called
CREATE ROLE regress_writer;
GRANT INSERT, SELECT ON regress_projects TO regress_writer;
GRANT SELECT ON regress_accounts TO regress_writer;
CREATE SCHEMA regress_writer_schema AUTHORIZATION regress_writer;
CREATE FUNCTION regress_owner_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.name := lower(NEW.name);   -- unqualified, as triggers are often written
    RETURN NEW;
END $$;
CREATE TRIGGER regress_owner_stamp BEFORE UPDATE ON regress_accounts
    FOR EACH ROW EXECUTE FUNCTION regress_owner_stamp();
SET ROLE regress_writer;
CREATE FUNCTION regress_writer_schema.lower(text) RETURNS text LANGUAGE plpgsql AS
  $$BEGIN RAISE EXCEPTION 'planted function called as %', current_user; END$$;
SET search_path = regress_writer_schema, pg_catalog, public;
INSERT INTO regress_projects (account_id, name) VALUES ('22222222-2222-4222-8222-222222222222', 'w1');
RESET search_path;
RESET ROLE;
SELECT name, current_project_count = (SELECT count(*) FROM regress_projects p WHERE p.account_id = a.id) AS exact
  FROM regress_accounts a WHERE id = '22222222-2222-4222-8222-222222222222';
DROP TRIGGER regress_owner_stamp ON regress_accounts;
DROP FUNCTION regress_owner_stamp();
DROP SCHEMA regress_writer_schema CASCADE;
REVOKE ALL ON regress_projects, regress_accounts FROM regress_writer;
DROP ROLE regress_writer;

-- a limit that the owner's trigger sets while pg_lifecycle writes the
-- counter (plan -> limit from another table) is noticed too
CREATE TABLE regress_plans (plan text PRIMARY KEY, max_projects int);
INSERT INTO regress_plans VALUES ('pro', 100);
ALTER TABLE regress_accounts ADD COLUMN plan text;
UPDATE regress_accounts SET plan = 'pro' WHERE name = 'globex';
CREATE FUNCTION regress_plan_limit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.plan IS NOT NULL THEN
        NEW.max_projects := (SELECT p.max_projects FROM public.regress_plans p WHERE p.plan = NEW.plan);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER regress_plan_limit BEFORE UPDATE ON regress_accounts
    FOR EACH ROW EXECUTE FUNCTION regress_plan_limit();
INSERT INTO regress_projects (account_id, name) VALUES ('22222222-2222-4222-8222-222222222222', 'p100');
UPDATE regress_plans SET max_projects = 2;
INSERT INTO regress_projects (account_id, name) VALUES ('22222222-2222-4222-8222-222222222222', 'p101');
INSERT INTO regress_projects (account_id, name) VALUES ('22222222-2222-4222-8222-222222222222', 'p102');
SELECT name, max_projects FROM regress_accounts WHERE id = '22222222-2222-4222-8222-222222222222';
DROP TRIGGER regress_plan_limit ON regress_accounts;
DROP FUNCTION regress_plan_limit();
ALTER TABLE regress_accounts DROP COLUMN plan;
DROP TABLE regress_plans;
UPDATE regress_accounts SET max_projects = NULL WHERE name = 'globex';

-- calculate_account_usage only reads: it works in a read-only transaction
BEGIN READ ONLY;
SELECT resource_type, stored_count = actual_count AS exact
  FROM lifecycle.calculate_account_usage('22222222-2222-4222-8222-222222222222') WHERE actual_count IS NOT NULL;
COMMIT;

-- a renamed counter column stops writes with an error that says what to do
ALTER TABLE regress_accounts RENAME COLUMN current_dataset_count TO datasets_now;
INSERT INTO regress_datasets VALUES (20, '22222222-2222-4222-8222-222222222222', NULL);
ALTER TABLE regress_accounts RENAME COLUMN datasets_now TO current_dataset_count;
INSERT INTO regress_datasets VALUES (20, '22222222-2222-4222-8222-222222222222', NULL);
DELETE FROM regress_datasets WHERE id = 20;

-- a metered counter tracked when its column already holds usage: that is
-- the usage so far, and the limit applies to it from the first increment
CREATE TABLE regress_meter (id uuid PRIMARY KEY, used integer, lim integer);
INSERT INTO regress_meter VALUES ('11111111-1111-4111-8111-111111111111', 4, 5);
SELECT lifecycle.track_usage('meter', 'regress_meter', 'used', NULL, NULL, 'lim');
SELECT n, cap IS NOT NULL AS limited FROM lifecycle.usage_counts WHERE resource_type = 'meter';
SELECT lifecycle.increment_usage_counter('11111111-1111-4111-8111-111111111111', 'meter', 2);
SELECT lifecycle.increment_usage_counter('11111111-1111-4111-8111-111111111111', 'meter', 1);
SELECT used FROM regress_meter;
SELECT lifecycle.untrack_usage('meter');
DROP TABLE regress_meter;

-- errors: each changes nothing
SELECT lifecycle.increment_usage_counter('11111111-1111-4111-8111-111111111111', 'projects');
SELECT lifecycle.reset_usage_counter('projects');
SELECT lifecycle.increment_usage_counter('11111111-1111-4111-8111-111111111111', 'nope');
SELECT lifecycle.increment_usage_counter('11111111-1111-4111-8111-111111111111', 'ai_requests', 0);
SELECT lifecycle.increment_usage_counter(NULL, 'ai_requests');
SELECT lifecycle.increment_usage_counter('99999999-9999-4999-8999-999999999999', 'ai_requests');
SELECT lifecycle.track_usage(NULL, 'regress_accounts', 'ai_requests', NULL, NULL);
SELECT lifecycle.track_usage('x', 'regress_nope', 'c', NULL, NULL);
SELECT lifecycle.track_usage('x', 'regress_accounts', 'nope', NULL, NULL);
SELECT lifecycle.track_usage('x', 'regress_accounts', 'name', NULL, NULL);
SELECT lifecycle.track_usage('x', 'regress_accounts', 'current_project_count', 'regress_projects', 'nope');
SELECT lifecycle.track_usage('x', 'regress_accounts', 'current_project_count', 'regress_projects', 'name');
SELECT lifecycle.track_usage('x', 'regress_accounts', 'current_project_count', 'regress_projects', NULL);
SELECT lifecycle.track_usage('x', 'regress_accounts', 'ai_requests', NULL, NULL, 'name');
SELECT lifecycle.track_usage('x', 'regress_accounts', 'ai_requests', NULL, NULL, 'ai_requests');
SELECT lifecycle.track_usage('x', 'regress_accounts', 'id', NULL, NULL);
SELECT lifecycle.track_usage('projects', 'regress_accounts', 'current_project_count',
                             'regress_projects', 'account_id');      -- different definition
CREATE TABLE regress_nokey (id uuid, n int);
SELECT lifecycle.track_usage('x', 'regress_nokey', 'n', NULL, NULL);
CREATE TABLE regress_twokey (a uuid, b uuid, n int, PRIMARY KEY (a, b));
SELECT lifecycle.track_usage('x', 'regress_twokey', 'n', NULL, NULL);
CREATE TABLE regress_intkey (id int PRIMARY KEY, n int);
SELECT lifecycle.track_usage('x', 'regress_intkey', 'n', NULL, NULL);
CREATE VIEW regress_view AS SELECT * FROM regress_accounts;
SELECT lifecycle.track_usage('x', 'regress_view', 'ai_requests', NULL, NULL);
SELECT lifecycle.untrack_usage('nope');
SELECT count(*) AS resources FROM lifecycle.usage_resources;

-- who may do what: a role that may update the accounts may meter their
-- usage (one that may only read them may not), but only the owner (or a
-- role bypassing RLS) may lower, reset or repair
CREATE ROLE regress_counter_user;
GRANT SELECT ON regress_accounts TO regress_counter_user;
SET ROLE regress_counter_user;
SELECT lifecycle.increment_usage_counter('22222222-2222-4222-8222-222222222222', 'ai_requests', 3);
RESET ROLE;
GRANT UPDATE (name) ON regress_accounts TO regress_counter_user;
SET ROLE regress_counter_user;
SELECT lifecycle.increment_usage_counter('22222222-2222-4222-8222-222222222222', 'ai_requests', 3);
SELECT lifecycle.decrement_usage_counter('22222222-2222-4222-8222-222222222222', 'ai_requests', 1);
SELECT lifecycle.reset_usage_counter('ai_requests');
SELECT lifecycle.sync_usage_counters();
SELECT lifecycle.track_usage('y', 'regress_accounts', 'ai_requests', NULL, NULL);
SELECT lifecycle.untrack_usage('ai_requests');
SELECT * FROM lifecycle.usage_counts;
RESET ROLE;
SELECT name, ai FROM regress_counts;

-- untrack: triggers go, the column keeps its last value
SELECT lifecycle.untrack_usage('projects');
SELECT tgrelid::regclass, tgname FROM pg_trigger
 WHERE tgrelid IN ('regress_accounts'::regclass, 'regress_projects'::regclass) AND NOT tgisinternal
 ORDER BY 1, 2;
INSERT INTO regress_projects (account_id, name) VALUES ('11111111-1111-4111-8111-111111111111', 'untracked');
SELECT name, projects FROM regress_counts;
SELECT count(*) AS project_counts FROM lifecycle.usage_counts WHERE resource_type = 'projects';

-- dropping a source table forgets its resource
DROP VIEW regress_counts;
SELECT lifecycle.disable_soft_delete('regress_datasets');
DROP TABLE regress_datasets;
SELECT resource_type FROM lifecycle.usage_resources ORDER BY 1;

REVOKE ALL ON regress_accounts FROM regress_counter_user;
DROP ROLE regress_counter_user;
DROP VIEW regress_view;
DROP TABLE regress_projects, regress_accounts, regress_nokey, regress_twokey, regress_intkey;
DROP EXTENSION pg_lifecycle;
