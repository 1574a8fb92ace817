--
-- No internal error (SQLSTATE XX000) is reachable from SQL: every
-- SQL-callable function of the extension is called with NULLs, with the
-- wrong kinds of relation, and on tables whose columns were dropped or
-- renamed and which were renamed themselves; every error must carry a
-- proper SQLSTATE.
--
CREATE EXTENSION pg_lifecycle;
SET client_min_messages = warning;
CREATE TABLE regress_fuzz_acc (id uuid PRIMARY KEY, n int NOT NULL DEFAULT 0, lim int);
CREATE TABLE regress_fuzz_t (id int PRIMARY KEY, acc uuid REFERENCES regress_fuzz_acc, v text,
                             updated_at timestamptz, updated_by uuid);
CREATE VIEW regress_fuzz_v AS SELECT * FROM regress_fuzz_t;
CREATE SEQUENCE regress_fuzz_s;
CREATE TABLE regress_fuzz_results (call text, state text);

-- call: runs one statement in a subtransaction and keeps its SQLSTATE
CREATE FUNCTION regress_fuzz(sql text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        EXECUTE sql;
        INSERT INTO regress_fuzz_results VALUES (sql, '00000');
    EXCEPTION WHEN OTHERS THEN
        INSERT INTO regress_fuzz_results VALUES (sql, SQLSTATE);
    END;
END $$;

-- a value of each argument type: plausible, NULL, or the wrong relation
CREATE FUNCTION regress_fuzz_value(t regtype, how text) RETURNS text LANGUAGE sql AS $$
SELECT CASE
    WHEN how = 'null' THEN format('NULL::%s', CASE WHEN t = 'anyelement'::regtype THEN 'int' ELSE t::text END)
    WHEN t = 'regclass'::regtype THEN
        CASE how WHEN 'view' THEN '''regress_fuzz_v''::regclass' WHEN 'sequence' THEN '''regress_fuzz_s''::regclass'
                 WHEN 'catalog' THEN '''pg_class''::regclass' WHEN 'own' THEN '''lifecycle.audit_log''::regclass'
                 ELSE '''regress_fuzz_t''::regclass' END
    WHEN t = 'uuid'::regtype THEN '''a0000000-0000-4000-8000-000000000001''::uuid'
    WHEN t IN ('integer'::regtype, 'anyelement'::regtype) THEN '1'
    WHEN t = 'boolean'::regtype THEN 'true'
    WHEN t = 'timestamp with time zone'::regtype THEN 'now()'
    WHEN t = 'interval'::regtype THEN '''1 day''::interval'
    WHEN t = 'text[]'::regtype THEN '''{v}''::text[]'
    WHEN t = 'name'::regtype THEN '''v''::name'
    WHEN t = 'jsonb'::regtype THEN '''{}''::jsonb'
    ELSE '''v''::' || t::text
END $$;

-- every function but the triggers, with each way of getting its arguments wrong
DO $$
DECLARE
    f record;
    how text;
    i int;
    args text[];
BEGIN
    FOR f IN SELECT p.oid, p.proname, p.proargtypes::regtype[] AS types, p.pronargs
               FROM pg_proc p
              WHERE p.pronamespace = 'lifecycle'::regnamespace
                AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype)
              ORDER BY p.proname, p.oid
    LOOP
        FOREACH how IN ARRAY ARRAY['plausible', 'view', 'sequence', 'catalog', 'own'] LOOP
            args := ARRAY[]::text[];
            FOR i IN 0 .. f.pronargs - 1 LOOP
                args := args || regress_fuzz_value(f.types[i], how);
            END LOOP;
            PERFORM regress_fuzz(format('SELECT lifecycle.%I(%s)', f.proname, array_to_string(args, ', ')));
        END LOOP;
        FOR i IN 0 .. f.pronargs - 1 LOOP
            args := ARRAY[]::text[];
            FOR how IN SELECT generate_series(0, f.pronargs - 1) LOOP
                args := args || regress_fuzz_value(f.types[how::int], CASE WHEN how::int = i THEN 'null' ELSE 'plausible' END);
            END LOOP;
            PERFORM regress_fuzz(format('SELECT lifecycle.%I(%s)', f.proname, array_to_string(args, ', ')));
        END LOOP;
    END LOOP;
END $$;

-- tables set up, then changed under the extension's feet
INSERT INTO regress_fuzz_acc VALUES ('a0000000-0000-4000-8000-000000000001', 0, 10);
SELECT lifecycle.enable_updated_at('regress_fuzz_t', 'updated_at', 'updated_by');
SELECT lifecycle.enable_soft_delete('regress_fuzz_acc');
SELECT lifecycle.enable_soft_delete('regress_fuzz_t', intercept_delete => true);
SELECT lifecycle.enable_audit('regress_fuzz_t', '{v}');
SELECT lifecycle.track_usage('fuzz', 'regress_fuzz_acc', 'n', 'regress_fuzz_t', 'acc', 'lim');
INSERT INTO regress_fuzz_t (id, acc, v) VALUES (1, 'a0000000-0000-4000-8000-000000000001', 'a'),
                                               (2, 'a0000000-0000-4000-8000-000000000001', 'b');
DO $$
DECLARE
    change text;
    probe text;
BEGIN
    FOREACH change IN ARRAY ARRAY[
        'ALTER TABLE regress_fuzz_t RENAME TO regress_fuzz_t2',
        'ALTER TABLE regress_fuzz_t2 RENAME TO regress_fuzz_t',
        'ALTER TABLE regress_fuzz_t RENAME COLUMN v TO w',
        'ALTER TABLE regress_fuzz_t RENAME COLUMN acc TO account',
        'ALTER TABLE regress_fuzz_acc RENAME COLUMN n TO count_n',
        'ALTER TABLE regress_fuzz_t RENAME COLUMN updated_at TO changed_at',
        'ALTER TABLE regress_fuzz_t DROP COLUMN updated_by',
        'ALTER TABLE regress_fuzz_t DROP COLUMN deleted_by',
        'ALTER TABLE regress_fuzz_t DROP COLUMN deleted_at',
        'ALTER TABLE regress_fuzz_acc DROP COLUMN lim',
        'ALTER TABLE regress_fuzz_t DROP CONSTRAINT regress_fuzz_t_pkey CASCADE',
        'ALTER TABLE regress_fuzz_acc DROP COLUMN count_n']
    LOOP
        PERFORM regress_fuzz(change);
        FOREACH probe IN ARRAY ARRAY[
            'INSERT INTO regress_fuzz_t (id) SELECT coalesce(max(id), 0) + 1 FROM regress_fuzz_t',
            'UPDATE regress_fuzz_t SET id = id WHERE id = 1',
            'UPDATE regress_fuzz_t SET id = id',
            'DELETE FROM regress_fuzz_t WHERE id = 2',
            'SELECT lifecycle.soft_delete(''regress_fuzz_t'', 1)',
            'SELECT lifecycle.restore_deleted(''regress_fuzz_t'', 1)',
            'SELECT lifecycle.soft_delete_account(''a0000000-0000-4000-8000-000000000001'')',
            'SELECT lifecycle.permanent_delete(''regress_fuzz_t'', 1)',
            'SELECT lifecycle.cleanup_soft_deleted_records(''regress_fuzz_acc'', 0)',
            'SELECT lifecycle.sync_usage_counters()',
            'SELECT * FROM lifecycle.calculate_account_usage(''a0000000-0000-4000-8000-000000000001'')',
            'SELECT lifecycle.increment_usage_counter(''a0000000-0000-4000-8000-000000000001'', ''fuzz'')',
            'SELECT * FROM lifecycle.soft_delete_stats',
            'SELECT * FROM lifecycle.record_history(''regress_fuzz_t'', ''1'')',
            'SELECT * FROM lifecycle.audit_log_visible',
            'SELECT lifecycle.enable_audit(''regress_fuzz_t'', ''{v}'')',
            'SELECT lifecycle.enable_updated_at(''regress_fuzz_t'')',
            'TRUNCATE regress_fuzz_t']
        LOOP
            PERFORM regress_fuzz(probe);
        END LOOP;
    END LOOP;
END $$;

-- rules: an owner may put a DO INSTEAD (or ALSO) rule on its enabled table
-- at any time; the statements pg_lifecycle runs on it are then rewritten
CREATE TABLE regress_fuzz_p (id int PRIMARY KEY);
CREATE TABLE regress_fuzz_c (id int PRIMARY KEY, p_id int REFERENCES regress_fuzz_p);
CREATE TABLE regress_fuzz_ra (id uuid PRIMARY KEY, n int NOT NULL DEFAULT 0);
CREATE TABLE regress_fuzz_rs (id int PRIMARY KEY, acc uuid REFERENCES regress_fuzz_ra);
SELECT lifecycle.enable_soft_delete('regress_fuzz_p') IS NOT NULL AS p_enabled,
       lifecycle.enable_soft_delete('regress_fuzz_c') IS NOT NULL AS c_enabled,
       lifecycle.track_usage('rules', 'regress_fuzz_ra', 'n', 'regress_fuzz_rs', 'acc') IS NOT NULL AS tracked;
INSERT INTO regress_fuzz_p VALUES (1), (2);
INSERT INTO regress_fuzz_c VALUES (1, 1), (2, 2);
INSERT INTO regress_fuzz_ra (id) VALUES ('a0000000-0000-4000-8000-000000000001');
SELECT lifecycle.soft_delete('regress_fuzz_p', 1);
CREATE RULE regress_nothing AS ON UPDATE TO regress_fuzz_c DO INSTEAD NOTHING;
CREATE RULE regress_nothing_del AS ON DELETE TO regress_fuzz_c DO INSTEAD NOTHING;
CREATE RULE regress_nothing AS ON UPDATE TO regress_fuzz_ra DO INSTEAD NOTHING;
SELECT lifecycle.restore_cascade('regress_fuzz_p', 1);
DO $$
DECLARE
    probe text;
BEGIN
    FOREACH probe IN ARRAY ARRAY[
        'SELECT lifecycle.restore_cascade(''regress_fuzz_p'', 1) -- rules',
        'SELECT lifecycle.soft_delete_cascade(''regress_fuzz_p'', 2) -- rules',
        'SELECT lifecycle.cleanup_soft_deleted_records(''regress_fuzz_p'', 0) -- rules',
        'SELECT lifecycle.permanent_delete(''regress_fuzz_c'', 1) -- rules',
        'INSERT INTO regress_fuzz_rs VALUES (1, ''a0000000-0000-4000-8000-000000000001'') -- rules',
        'SELECT lifecycle.refresh_usage_counters() -- rules',
        'SELECT lifecycle.sync_usage_counters() -- rules',
        'SELECT lifecycle.reset_usage_counter(''rules'') -- rules']
    LOOP
        PERFORM regress_fuzz(probe);
    END LOOP;
END $$;
SELECT call, state FROM regress_fuzz_results WHERE call LIKE '%-- rules' ORDER BY call;
SELECT id, deleted_at IS NOT NULL AS deleted FROM regress_fuzz_c ORDER BY id;

-- a superuser's DROP of what the extension relies on is out of scope; what
-- every other call gives:
SELECT count(*) FILTER (WHERE state = 'XX000') AS internal_errors,
       count(*) > 400 AS calls_made
  FROM regress_fuzz_results;
SELECT call, state FROM regress_fuzz_results WHERE state = 'XX000' ORDER BY 1;
SELECT state, count(*) > 0 AS seen FROM regress_fuzz_results GROUP BY state ORDER BY state;

RESET client_min_messages;
SET client_min_messages = warning;
DROP FUNCTION regress_fuzz(text), regress_fuzz_value(regtype, text);
DROP TABLE regress_fuzz_results;
DROP TABLE regress_fuzz_t, regress_fuzz_acc, regress_fuzz_c, regress_fuzz_p, regress_fuzz_rs, regress_fuzz_ra CASCADE;
DROP VIEW IF EXISTS regress_fuzz_v;
DROP SEQUENCE regress_fuzz_s;
DROP EXTENSION pg_lifecycle;
RESET client_min_messages;
