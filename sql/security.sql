--
-- The classes of the 0.2.0 security review, as attacks that must fail.
--
-- Two attackers: regress_schemer owns one schema and plants in it, first
-- on its search_path, operators and functions shadowing the built-in ones
-- the extension's SQL uses; regress_temper has only TEMP and plants
-- temporary tables and views named like every relation the extension's
-- SQL names, with pg_temp first on its path.  Both then drive every
-- feature path: their own tables (every enable/disable, every trigger),
-- and the victim's tables they may write (triggers running as the
-- extension's owner and as the tables' owner, cascades, mirrors, limits,
-- reads of the stats, the log and the history).  Every planted object
-- writes its name and the role it ran as into regress_canary: the canary
-- must stay empty, and no role may end with more rights than it began.
-- (Casts between built-in types cannot be planted: CREATE CAST needs the
-- ownership of a type.)
--
CREATE EXTENSION pg_lifecycle;
SET timezone = 'UTC';
SET client_min_messages = warning;

CREATE TABLE public.regress_canary (ran_as name, what text);
GRANT INSERT ON public.regress_canary TO PUBLIC;

CREATE ROLE regress_victim;
CREATE ROLE regress_schemer;
CREATE ROLE regress_temper;
ALTER ROLE regress_victim SET search_path = regress_app, public;
GRANT CREATE ON SCHEMA public TO regress_victim;
CREATE SCHEMA regress_app AUTHORIZATION regress_victim;
CREATE SCHEMA regress_planted AUTHORIZATION regress_schemer;
GRANT USAGE ON SCHEMA regress_app, regress_planted TO regress_schemer, regress_temper;
-- what each role may do before: compared at the end
CREATE TABLE public.regress_rights_before AS
SELECT r.rolname, r.rolsuper, r.rolbypassrls,
       (SELECT array_agg(m.roleid::regrole::text ORDER BY 1) FROM pg_auth_members m WHERE m.member = r.oid) AS member_of,
       has_table_privilege(r.rolname, 'lifecycle.audit_log', 'INSERT,UPDATE,DELETE') AS writes_log,
       has_table_privilege(r.rolname, 'lifecycle.usage_counts', 'INSERT,UPDATE,DELETE') AS writes_counts,
       has_table_privilege(r.rolname, 'lifecycle.soft_delete_tables', 'INSERT,UPDATE,DELETE') AS writes_config
  FROM pg_roles r WHERE r.rolname IN ('regress_victim', 'regress_schemer', 'regress_temper');

--
-- The victim's application: accounts with a counter and a limit, projects
-- stamped, soft-deleted, audited and counted, tasks under projects (an
-- enum column: audit reads them as the owner), and the owner's own
-- triggers, which name things without a schema, as triggers often do.
--
SET ROLE regress_victim;
CREATE TYPE regress_app.mood AS ENUM ('ok', 'sad');
CREATE TABLE regress_app.accounts (id uuid PRIMARY KEY, name text, n_projects int NOT NULL DEFAULT 0,
                                   max_projects int, ai int NOT NULL DEFAULT 0, max_ai int);
CREATE TABLE regress_app.projects (id int PRIMARY KEY, account_id uuid REFERENCES regress_app.accounts,
                                   name text, updated_at timestamptz, updated_by uuid);
CREATE TABLE regress_app.tasks (id int PRIMARY KEY, project_id int REFERENCES regress_app.projects,
                                mood regress_app.mood, title text);
CREATE TABLE regress_app.project_log (project_id int, what text);
-- no SET search_path of its own: it runs with the path of whoever writes,
-- and pg_lifecycle's cascades and mirrors give it the victim's own
CREATE FUNCTION regress_app.tidy() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.name := lower(NEW.name);                        -- unqualified
    INSERT INTO project_log VALUES (NEW.id, 'tidied as ' || current_user);  -- unqualified
    RETURN NEW;
END $$;
CREATE TRIGGER tidy BEFORE UPDATE ON regress_app.projects FOR EACH ROW EXECUTE FUNCTION regress_app.tidy();
CREATE FUNCTION regress_app.note_writer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO project_log VALUES (0, lower(TG_TABLE_NAME) || ' as ' || current_user);  -- unqualified
    RETURN NEW;
END $$;
CREATE TRIGGER note_writer BEFORE UPDATE ON regress_app.accounts
    FOR EACH ROW EXECUTE FUNCTION regress_app.note_writer();
CREATE TRIGGER note_writer BEFORE UPDATE ON regress_app.tasks
    FOR EACH ROW EXECUTE FUNCTION regress_app.note_writer();
SELECT lifecycle.enable_updated_at('regress_app.projects', 'updated_at', 'updated_by');
SELECT lifecycle.enable_soft_delete('regress_app.accounts');
SELECT lifecycle.enable_soft_delete('regress_app.projects');
SELECT lifecycle.enable_soft_delete('regress_app.tasks', intercept_delete => true);
SELECT lifecycle.enable_audit('regress_app.projects');
SELECT lifecycle.enable_audit('regress_app.tasks');
SELECT lifecycle.track_usage('projects', 'regress_app.accounts', 'n_projects',
                             'regress_app.projects', 'account_id', 'max_projects');
SELECT lifecycle.track_usage('ai', 'regress_app.accounts', 'ai', NULL, NULL, 'max_ai');
INSERT INTO regress_app.accounts (id, name, max_projects, max_ai) VALUES
    ('a0000000-0000-4000-8000-00000000000a', 'acme', 20, 10),
    ('b0000000-0000-4000-8000-00000000000b', 'globex', 1, 10);
INSERT INTO regress_app.projects (id, account_id, name) VALUES
    (1, 'a0000000-0000-4000-8000-00000000000a', 'One'),
    (2, 'a0000000-0000-4000-8000-00000000000a', 'Two'),
    (9, 'b0000000-0000-4000-8000-00000000000b', 'Globex only');
INSERT INTO regress_app.tasks VALUES (1, 1, 'ok', 'a'), (2, 1, 'sad', 'b'), (3, 2, 'ok', 'c');
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA regress_app TO regress_schemer, regress_temper;
RESET ROLE;
-- both may read the log and the stats, so that those paths run for them too
GRANT SELECT ON lifecycle.audit_log_visible, lifecycle.soft_delete_stats TO regress_schemer, regress_temper;

--
-- The planted objects: every operator and function name the extension's
-- SQL uses, for the types it uses them on.
--
SET ROLE regress_schemer;
-- it notes only what runs with another role's rights: the planter's own
-- statements may well find its objects
CREATE FUNCTION regress_planted.note(what text) RETURNS void LANGUAGE sql AS
    $$ INSERT INTO public.regress_canary SELECT current_user, what
        WHERE current_user <> 'regress_schemer' $$;
DO $$
DECLARE
    op record;
BEGIN
    FOR op IN SELECT * FROM (VALUES
        ('=', 'uuid', 'uuid', 'boolean', 'uuid_eq'), ('=', 'text', 'text', 'boolean', 'texteq'),
        ('=', 'integer', 'integer', 'boolean', 'int4eq'), ('=', 'bigint', 'bigint', 'boolean', 'int8eq'),
        ('=', 'smallint', 'smallint', 'boolean', 'int2eq'), ('=', 'oid', 'oid', 'boolean', 'oideq'),
        ('=', 'timestamp with time zone', 'timestamp with time zone', 'boolean', 'timestamptz_eq'),
        ('=', 'tid', 'tid', 'boolean', 'tideq'), ('=', 'jsonb', 'jsonb', 'boolean', 'jsonb_eq'),
        ('<', 'timestamp with time zone', 'timestamp with time zone', 'boolean', 'timestamptz_lt'),
        ('<', 'integer', 'integer', 'boolean', 'int4lt'),
        ('<=', 'bigint', 'bigint', 'boolean', 'int8le'), ('<>', 'bigint', 'bigint', 'boolean', 'int8ne'),
        ('<>', 'boolean', 'boolean', 'boolean', 'boolne'),
        ('-', 'integer', 'integer', 'integer', 'int4mi'), ('-', 'bigint', 'bigint', 'bigint', 'int8mi'),
        ('+', 'integer', 'integer', 'integer', 'int4pl'), ('+', 'bigint', 'bigint', 'bigint', 'int8pl'),
        ('||', 'jsonb', 'jsonb', 'jsonb', 'jsonb_concat'), ('-', 'jsonb', 'text[]', 'jsonb', 'jsonb_delete_array'),
        ('-', 'timestamp with time zone', 'interval', 'timestamp with time zone', 'timestamptz_mi_interval'),
        ('>', 'timestamp with time zone', 'timestamp with time zone', 'boolean', 'timestamptz_gt'),
        ('>=', 'timestamp with time zone', 'timestamp with time zone', 'boolean', 'timestamptz_ge'))
        AS v(name, l, r, res, impl)
    LOOP
        EXECUTE format('CREATE FUNCTION regress_planted.%I(%s, %s) RETURNS %s LANGUAGE plpgsql AS '
                       '$f$ BEGIN PERFORM regress_planted.note(%L); RETURN pg_catalog.%I($1, $2); END $f$',
                       'op_' || op.impl, op.l, op.r, op.res, op.name || ' ' || op.l, op.impl);
        EXECUTE format('CREATE OPERATOR regress_planted.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = regress_planted.%I)',
                       op.name, op.l, op.r, 'op_' || op.impl);
    END LOOP;
END $$;
CREATE FUNCTION regress_planted.int8um(bigint) RETURNS bigint LANGUAGE plpgsql AS
    $$ BEGIN PERFORM regress_planted.note('unary -'); RETURN -$1; END $$;
CREATE OPERATOR regress_planted.- (RIGHTARG = bigint, FUNCTION = regress_planted.int8um);
CREATE FUNCTION regress_planted.make_interval(days integer) RETURNS interval LANGUAGE plpgsql AS
    $$ BEGIN PERFORM regress_planted.note('make_interval'); RETURN pg_catalog.make_interval(days => days); END $$;
CREATE FUNCTION regress_planted.now() RETURNS timestamptz LANGUAGE plpgsql AS
    $$ BEGIN PERFORM regress_planted.note('now'); RETURN pg_catalog.now(); END $$;
CREATE FUNCTION regress_planted.generate_series(integer, integer) RETURNS SETOF integer LANGUAGE plpgsql AS
    $$ BEGIN PERFORM regress_planted.note('generate_series'); RETURN QUERY SELECT pg_catalog.generate_series($1, $2); END $$;
CREATE FUNCTION regress_planted.unnest(anyarray) RETURNS SETOF anyelement LANGUAGE plpgsql AS
    $$ BEGIN PERFORM regress_planted.note('unnest'); RETURN QUERY SELECT pg_catalog.unnest($1); END $$;
CREATE FUNCTION regress_planted.to_jsonb(anyelement) RETURNS jsonb LANGUAGE plpgsql AS
    $$ BEGIN PERFORM regress_planted.note('to_jsonb'); RETURN pg_catalog.to_jsonb($1); END $$;
CREATE FUNCTION regress_planted.lower(text) RETURNS text LANGUAGE plpgsql AS
    $$ BEGIN PERFORM regress_planted.note('lower'); RETURN pg_catalog.lower($1); END $$;
CREATE FUNCTION regress_planted.format(text, anyelement) RETURNS text LANGUAGE plpgsql AS
    $$ BEGIN PERFORM regress_planted.note('format'); RETURN 'planted'; END $$;
CREATE FUNCTION regress_planted.current_setting(text) RETURNS text LANGUAGE plpgsql AS
    $$ BEGIN PERFORM regress_planted.note('current_setting'); RETURN pg_catalog.current_setting($1); END $$;
CREATE FUNCTION regress_planted.host(inet) RETURNS text LANGUAGE plpgsql AS
    $$ BEGIN PERFORM regress_planted.note('host'); RETURN pg_catalog.host($1); END $$;
CREATE FUNCTION regress_planted.jsonb_each(jsonb, OUT key text, OUT value jsonb) RETURNS SETOF record LANGUAGE plpgsql AS
    $$ BEGIN PERFORM regress_planted.note('jsonb_each'); RETURN QUERY SELECT * FROM pg_catalog.jsonb_each($1); END $$;
CREATE FUNCTION regress_planted.count_sfunc(bigint) RETURNS bigint LANGUAGE plpgsql AS
    $$ BEGIN PERFORM regress_planted.note('count'); RETURN $1 + 1; END $$;
CREATE AGGREGATE regress_planted.count(*) (SFUNC = regress_planted.count_sfunc, STYPE = bigint, INITCOND = '0');
CREATE FUNCTION regress_planted.sum_sfunc(bigint, bigint) RETURNS bigint LANGUAGE plpgsql AS
    $$ BEGIN PERFORM regress_planted.note('sum'); RETURN coalesce($1, 0) + $2; END $$;
CREATE AGGREGATE regress_planted.sum(bigint) (SFUNC = regress_planted.sum_sfunc, STYPE = bigint);
CREATE FUNCTION regress_planted.agg_sfunc(anycompatiblearray, anycompatible) RETURNS anycompatiblearray LANGUAGE plpgsql AS
    $$ BEGIN PERFORM regress_planted.note('array_agg'); RETURN $1 || $2; END $$;
CREATE AGGREGATE regress_planted.array_agg(anycompatible) (SFUNC = regress_planted.agg_sfunc, STYPE = anycompatiblearray);
-- relations named like the extension's own and like the victim's
CREATE TABLE regress_planted.project_log (project_id int, what text);
CREATE TABLE regress_planted.audit_log (id int);
CREATE TABLE regress_planted.usage_counts (id int);
RESET ROLE;
SELECT count(*) > 40 AS planted_objects FROM pg_proc WHERE pronamespace = 'regress_planted'::regnamespace;

--
-- regress_schemer, with its planted objects first on its path, on its own
-- tables: every enable/disable and every trigger; then on the victim's.
--
SET ROLE regress_schemer;
SET search_path = regress_planted, pg_catalog, public;
SET request.jwt.claims = '{"sub": "5c4e3e00-0000-4000-8000-000000000001"}';
CREATE TABLE regress_planted.accts (id uuid PRIMARY KEY, n int NOT NULL DEFAULT 0, lim int);
CREATE TABLE regress_planted.things (id int PRIMARY KEY, acct uuid REFERENCES regress_planted.accts,
                                     parent int REFERENCES regress_planted.things, v text,
                                     updated_at timestamptz);
SELECT lifecycle.enable_updated_at('regress_planted.things');
SELECT lifecycle.enable_soft_delete('regress_planted.accts');
SELECT lifecycle.enable_soft_delete('regress_planted.things', intercept_delete => true);
SELECT lifecycle.enable_audit('regress_planted.things');
SELECT lifecycle.track_usage('things', 'regress_planted.accts', 'n', 'regress_planted.things', 'acct', 'lim');
INSERT INTO regress_planted.accts VALUES ('c0000000-0000-4000-8000-00000000000c', 0, 5);
INSERT INTO regress_planted.things (id, acct, parent, v) VALUES
    (1, 'c0000000-0000-4000-8000-00000000000c', NULL, 'a'),
    (2, 'c0000000-0000-4000-8000-00000000000c', 1, 'b');
INSERT INTO regress_planted.things (id, acct, v) VALUES (3, 'c0000000-0000-4000-8000-00000000000c', 'one row');
UPDATE regress_planted.things SET v = v || '!';
UPDATE regress_planted.things SET v = 'single' WHERE id = 3;
SELECT lifecycle.soft_delete_cascade('regress_planted.things', 1);
SELECT lifecycle.restore_cascade('regress_planted.things', 1);
DELETE FROM regress_planted.things WHERE id = 3;                 -- intercepted
SELECT lifecycle.permanent_delete('regress_planted.things', 3);
SELECT lifecycle.soft_delete_account('c0000000-0000-4000-8000-00000000000c');   -- no tenant table here
INSERT INTO regress_planted.things (id, acct, v)
SELECT g, 'c0000000-0000-4000-8000-00000000000c', 'many' FROM generate_series(10, 20) g;   -- past the limit
SELECT lifecycle.sync_usage_counters();
SELECT lifecycle.refresh_usage_counters();
SELECT * FROM lifecycle.calculate_account_usage('c0000000-0000-4000-8000-00000000000c');
SELECT lifecycle.soft_delete('regress_planted.things', 2);
UPDATE regress_planted.things SET deleted_at = deleted_at - interval '9 days' WHERE id = 2;
SELECT lifecycle.cleanup_soft_deleted_records('regress_planted.things', 1);
SELECT op, record_id FROM lifecycle.record_history('regress_planted.things', '1');
SELECT lifecycle.record_at('regress_planted.things', '1', pg_catalog.now()) IS NOT NULL AS known;
SELECT table_name::text, active_count, deleted_count FROM lifecycle.soft_delete_stats ORDER BY 1;
TRUNCATE regress_planted.things;
SELECT lifecycle.disable_audit('regress_planted.things');
SELECT lifecycle.untrack_usage('things');
SELECT lifecycle.disable_soft_delete('regress_planted.things');
SELECT lifecycle.disable_updated_at('regress_planted.things');
-- the victim's tables: its triggers run as the extension's owner (audit,
-- counts) and as the victim (mirror, cascades, the owner's own triggers)
INSERT INTO regress_app.projects (id, account_id, name) VALUES (3, 'a0000000-0000-4000-8000-00000000000a', 'Three');
INSERT INTO regress_app.projects (id, account_id, name)
SELECT g, 'a0000000-0000-4000-8000-00000000000a', 'Bulk' FROM generate_series(4, 6) g;
UPDATE regress_app.projects SET name = 'ONE' WHERE id = 1;
UPDATE regress_app.projects SET name = name || '.' WHERE id > 3;
INSERT INTO regress_app.tasks VALUES (4, 3, 'sad', 'd');
UPDATE regress_app.tasks SET mood = 'ok' WHERE id = 4;
DELETE FROM regress_app.tasks WHERE id = 4;                      -- intercepted, as the owner
SELECT lifecycle.soft_delete_cascade('regress_app.projects', 1);
SELECT lifecycle.restore_cascade('regress_app.projects', 1);
INSERT INTO regress_app.projects (id, account_id, name) VALUES (10, 'b0000000-0000-4000-8000-00000000000b', 'over');
SELECT lifecycle.increment_usage_counter('a0000000-0000-4000-8000-00000000000a', 'ai', 2);
SELECT * FROM lifecycle.calculate_account_usage('a0000000-0000-4000-8000-00000000000a');
SELECT count(*) AS stats_rows FROM lifecycle.soft_delete_stats;
RESET request.jwt.claims;
RESET search_path;
RESET ROLE;

--
-- regress_temper, with pg_temp first: the same writes, and the
-- extension's trigger functions attached to its own temporary tables in
-- every way but the right one.
--
SET ROLE regress_temper;
CREATE FUNCTION pg_temp.note() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN
        IF current_user <> 'regress_temper' THEN
            INSERT INTO public.regress_canary VALUES (current_user, 'temp table ' || TG_TABLE_NAME);
        END IF;
        RETURN NULL;
    END $$;
CREATE FUNCTION pg_temp.evil() RETURNS int LANGUAGE plpgsql AS
    $$ BEGIN
        IF current_user <> 'regress_temper' THEN
            INSERT INTO public.regress_canary VALUES (current_user, 'temp view');
        END IF;
        RETURN 1;
    END $$;
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['audit_log', 'audit_tables', 'usage_counts', 'usage_resources', 'usage_events',
                             'soft_delete_tables', 'soft_delete_tenant', 'updated_at_tables',
                             'accounts', 'projects', 'tasks', 'project_log', 'pg_class', 'pg_trigger']
    LOOP
        EXECUTE format('CREATE TEMP TABLE %I (project_id int, what text, id int)', r);
        EXECUTE format('CREATE TRIGGER note AFTER INSERT OR UPDATE OR DELETE ON pg_temp.%I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.note()', r);
    END LOOP;
    FOREACH r IN ARRAY ARRAY['lifecycle_new', 'lifecycle_old']
    LOOP
        EXECUTE format('CREATE TEMP VIEW %I AS SELECT pg_temp.evil() AS id', r);
    END LOOP;
END $$;
SET search_path = pg_temp, regress_app, public, pg_catalog;
INSERT INTO regress_app.projects (id, account_id, name) VALUES (7, 'a0000000-0000-4000-8000-00000000000a', 'Seven');
INSERT INTO regress_app.projects (id, account_id, name)
SELECT g, 'a0000000-0000-4000-8000-00000000000a', 'Bulk' FROM pg_catalog.generate_series(11, 12) g;
UPDATE regress_app.projects SET name = 'Seven!' WHERE id = 7;
SELECT lifecycle.soft_delete_cascade('regress_app.projects', 2);
SELECT lifecycle.restore_cascade('regress_app.projects', 2);
DELETE FROM regress_app.tasks WHERE id = 3;
CREATE TEMP TABLE mine (id int PRIMARY KEY, account_id uuid, deleted_at timestamptz, deleted_by uuid);
CREATE TRIGGER a AFTER INSERT ON mine REFERENCING NEW TABLE AS foo
    FOR EACH STATEMENT EXECUTE FUNCTION lifecycle.audit_trigger('{}', '{}');
INSERT INTO mine VALUES (1);
DROP TRIGGER a ON mine;
CREATE TRIGGER lifecycle_audit_insert AFTER INSERT ON mine REFERENCING NEW TABLE AS lifecycle_new
    FOR EACH STATEMENT EXECUTE FUNCTION lifecycle.audit_trigger('{}', '{}');
INSERT INTO mine VALUES (2);                                     -- the right shape, not audited
DROP TRIGGER lifecycle_audit_insert ON mine;
CREATE TRIGGER lifecycle_usage_insert AFTER INSERT ON mine REFERENCING NEW TABLE AS foo
    FOR EACH STATEMENT EXECUTE FUNCTION lifecycle.usage_trigger();
INSERT INTO mine VALUES (3);
DROP TRIGGER lifecycle_usage_insert ON mine;
CREATE TRIGGER lifecycle_usage_insert AFTER INSERT ON mine REFERENCING NEW TABLE AS lifecycle_new
    FOR EACH STATEMENT EXECUTE FUNCTION lifecycle.usage_trigger();
INSERT INTO mine VALUES (4);
DROP TRIGGER lifecycle_usage_insert ON mine;
CREATE TRIGGER lifecycle_usage_guard AFTER INSERT OR UPDATE ON mine
    FOR EACH ROW EXECUTE FUNCTION lifecycle.usage_guard();
INSERT INTO mine VALUES (5);
DROP TRIGGER lifecycle_usage_guard ON mine;
CREATE TRIGGER lifecycle_soft_delete_guard_ins AFTER INSERT ON mine
    FOR EACH ROW EXECUTE FUNCTION lifecycle.soft_delete_guard();
INSERT INTO mine VALUES (6);
DROP TRIGGER lifecycle_soft_delete_guard_ins ON mine;
CREATE TRIGGER lifecycle_soft_delete_intercept BEFORE DELETE ON mine
    FOR EACH ROW EXECUTE FUNCTION lifecycle.soft_delete_intercept();
DELETE FROM mine;
DROP TRIGGER lifecycle_soft_delete_intercept ON mine;
-- its own temporary table, set up properly, is its own business
SELECT lifecycle.enable_audit('mine');
INSERT INTO mine VALUES (7);
SELECT count(*) AS own_rows_logged FROM lifecycle.record_history('mine', '7');
SELECT lifecycle.disable_audit('mine');
SELECT count(*) AS stats_rows FROM lifecycle.soft_delete_stats;
SELECT what, count(*) FROM pg_temp.project_log GROUP BY 1;     -- only its own writes
RESET search_path;
RESET ROLE;
DISCARD TEMP;

--
-- An owner turns a registered table into a view whose SELECT runs its
-- function, and waits for a privileged reader of the stats (PostgreSQL 15
-- still allows it for a table without triggers and rows; 16 and later do
-- not at all).  Either the conversion fails or the read is refused.
--
SET ROLE regress_schemer;
CREATE TABLE regress_planted.bait (id int PRIMARY KEY);
SELECT lifecycle.enable_soft_delete('regress_planted.bait');
DROP VIEW regress_planted.bait_active;
DROP TRIGGER lifecycle_soft_delete_guard_upd ON regress_planted.bait;
ALTER TABLE regress_planted.bait DROP CONSTRAINT bait_pkey;
VACUUM regress_planted.bait;                -- forgets that it had triggers
CREATE FUNCTION regress_planted.bait_rows() RETURNS TABLE (id int, deleted_at timestamptz, deleted_by uuid)
LANGUAGE plpgsql AS $$ BEGIN PERFORM regress_planted.note('view as ' || current_user); RETURN; END $$;
DO $$
BEGIN
    CREATE RULE "_RETURN" AS ON SELECT TO regress_planted.bait DO INSTEAD
        SELECT * FROM regress_planted.bait_rows();
EXCEPTION WHEN OTHERS THEN
    NULL;
END $$;
RESET ROLE;
DO $$
BEGIN
    PERFORM * FROM lifecycle.soft_delete_stats;
EXCEPTION WHEN wrong_object_type THEN
    NULL;
END $$;

--
-- A schema owner hangs a table of its own below the victim's projects (the
-- victim granted it REFERENCES), with a rule that would make the victim's
-- cascade count other rows as its own, or leave its rows live under a
-- soft-deleted project: the victim's cascade is refused, nothing changes.
--
SET ROLE regress_victim;
INSERT INTO regress_app.projects (id, account_id, name) VALUES (50, 'a0000000-0000-4000-8000-00000000000a', 'Hooked');
GRANT REFERENCES ON regress_app.projects TO regress_schemer;
RESET ROLE;
SET ROLE regress_schemer;
CREATE TABLE regress_planted.hooks (id int PRIMARY KEY, project_id int REFERENCES regress_app.projects);
CREATE TABLE regress_planted.padding (id int, deleted_at timestamptz);
INSERT INTO regress_planted.padding SELECT g FROM generate_series(1, 100) g;
SELECT lifecycle.enable_soft_delete('regress_planted.hooks') IS NOT NULL AS hooked;
INSERT INTO regress_planted.hooks VALUES (1, 50), (2, 50);
CREATE RULE hook AS ON UPDATE TO regress_planted.hooks
    DO INSTEAD UPDATE regress_planted.padding SET deleted_at = new.deleted_at;
RESET ROLE;
SET ROLE regress_victim;
SET search_path = regress_app, public;
SELECT lifecycle.soft_delete_cascade('regress_app.projects', 50);
RESET ROLE;
SET ROLE regress_schemer;
DROP RULE hook ON regress_planted.hooks;
CREATE RULE hook AS ON UPDATE TO regress_planted.hooks WHERE old.id = 2 DO INSTEAD NOTHING;
RESET ROLE;
SET ROLE regress_victim;
SELECT lifecycle.soft_delete_cascade('regress_app.projects', 50);
SELECT deleted_at IS NULL AS project_live FROM regress_app.projects WHERE id = 50;
RESET ROLE;
SET ROLE regress_schemer;
SELECT count(deleted_at) AS padding_written FROM regress_planted.padding;
SELECT count(*) FILTER (WHERE deleted_at IS NULL) AS hooks_live FROM regress_planted.hooks;
DROP TABLE regress_planted.hooks, regress_planted.padding CASCADE;   -- and its view
RESET ROLE;
SET ROLE regress_victim;
REVOKE REFERENCES ON regress_app.projects FROM regress_schemer;
DELETE FROM regress_app.projects WHERE id = 50;
RESET search_path;
RESET ROLE;

--
-- Retention.  The victim's events and the schemer's own logs under
-- archive policies (the schemer's with a preference table and a hold of
-- its own, its stored search_path pointing at its planted objects, and
-- triggers of its own on the table and on the archive that note who runs
-- them); then the extension's owner runs retention as pg_cron would, with
-- the planted schema first on its own path.  Each table's rows are removed
-- and archived as that table's owner; nothing planted runs as anyone else.
--
CREATE SCHEMA regress_app_archive AUTHORIZATION regress_victim;
SET ROLE regress_victim;
CREATE TABLE regress_app.events (id int PRIMARY KEY, account_id uuid, created_at timestamptz NOT NULL);
CREATE TABLE regress_app.secret_prefs (account_id uuid PRIMARY KEY, days int);
INSERT INTO regress_app.events
SELECT g, 'a0000000-0000-4000-8000-00000000000a', now() - g * interval '1 day' - interval '1 hour'
  FROM generate_series(1, 20) g;
SELECT lifecycle.set_retention('regress_app.events', '5 days', action => 'archive', batch_size => 4,
                               archive_schema => 'regress_app_archive', owner_column => 'account_id');
RESET ROLE;
CREATE SCHEMA regress_planted_archive AUTHORIZATION regress_schemer;
SET ROLE regress_schemer;
ALTER ROLE regress_schemer SET search_path = regress_planted, pg_catalog, public;
CREATE TABLE regress_planted.prefs (acct uuid PRIMARY KEY, days int);
CREATE TABLE regress_planted.logs (id int PRIMARY KEY, acct uuid, created_at timestamptz NOT NULL, v text);
INSERT INTO regress_planted.prefs VALUES ('c0000000-0000-4000-8000-00000000000c', 10);
INSERT INTO regress_planted.logs
SELECT g, CASE WHEN g % 3 = 0 THEN 'd0000000-0000-4000-8000-00000000000d'::uuid
               WHEN g % 3 = 1 THEN 'c0000000-0000-4000-8000-00000000000c'::uuid END,
       pg_catalog.now() - g * interval '1 day' - interval '1 hour', 'log'
  FROM pg_catalog.generate_series(1, 30) g;
CREATE TABLE regress_planted.ran (ran_as name, what text);
CREATE FUNCTION regress_planted.who() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN
        INSERT INTO regress_planted.ran VALUES (current_user, TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME || ' ' || TG_OP);
        PERFORM regress_planted.note(TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME || ' ' || TG_OP);
        RETURN NULL;
    END $$;
CREATE TRIGGER who AFTER DELETE ON regress_planted.logs FOR EACH ROW EXECUTE FUNCTION regress_planted.who();
SELECT lifecycle.set_retention('regress_planted.logs', '3 days', action => 'archive', batch_size => 3,
                               archive_schema => 'regress_planted_archive', owner_column => 'acct',
                               preference_table => 'regress_planted.prefs', preference_key => 'acct',
                               preference_column => 'days');
CREATE TRIGGER who AFTER INSERT ON regress_planted_archive.logs FOR EACH ROW EXECUTE FUNCTION regress_planted.who();
SELECT lifecycle.hold_retention('regress_planted.logs', 'D0000000-0000-4000-8000-00000000000D', 'held');
-- its trigger tries to change the session of whoever runs retention
CREATE FUNCTION regress_planted.meddle() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN
        PERFORM pg_catalog.set_config('search_path', 'regress_planted, pg_catalog', false);
        PERFORM pg_catalog.set_config('work_mem', '77kB', false);
        RETURN OLD;
    END $$;
CREATE TRIGGER meddle BEFORE DELETE ON regress_planted.logs FOR EACH ROW EXECUTE FUNCTION regress_planted.meddle();
-- an owner column of its own type, with a cast to text of its own: a
-- reader counting what is waiting must not run it
CREATE TYPE regress_planted.tier AS ENUM ('free', 'pro');
CREATE FUNCTION regress_planted.tier_text(regress_planted.tier) RETURNS text LANGUAGE plpgsql AS
    $$ BEGIN PERFORM regress_planted.note('tier cast'); RETURN $1::text; END $$;
CREATE CAST (regress_planted.tier AS text) WITH FUNCTION regress_planted.tier_text(regress_planted.tier);
CREATE TABLE regress_planted.tiered (id int PRIMARY KEY, tier regress_planted.tier, created_at timestamptz NOT NULL);
CREATE INDEX ON regress_planted.tiered (created_at);
INSERT INTO regress_planted.tiered VALUES (1, 'pro', pg_catalog.now() - interval '1 year');
SELECT lifecycle.set_retention('regress_planted.tiered', '1 day', owner_column => 'tier', enabled => false);
-- what it may not do: another's or the extension's schema for its archive,
-- a new schema (it may not create one), the table's own schema, a
-- preference table it may not read, the victim's table and archive
SELECT lifecycle.set_retention('regress_planted.logs', '3 days', action => 'archive', archive_schema => 'regress_app',
                               owner_column => 'acct');
SELECT lifecycle.set_retention('regress_planted.logs', '3 days', action => 'archive', archive_schema => 'regress_new',
                               owner_column => 'acct');
SELECT lifecycle.set_retention('regress_planted.logs', '3 days', action => 'archive', archive_schema => 'regress_planted',
                               owner_column => 'acct');
SELECT lifecycle.set_retention('regress_planted.logs', '3 days', action => 'archive', archive_schema => 'lifecycle',
                               owner_column => 'acct');
SELECT lifecycle.set_retention('regress_planted.logs', '3 days', owner_column => 'acct',
                               preference_table => 'regress_app.secret_prefs', preference_key => 'account_id',
                               preference_column => 'days');
SELECT lifecycle.set_retention('regress_app.events', '1 day');
SELECT lifecycle.hold_retention('regress_app.events', 'a0000000-0000-4000-8000-00000000000a', 'mine');
SELECT lifecycle.restore_archived('regress_app.events', '10');
SELECT lifecycle.retention_waiting('regress_app.events') AS waiting_on_a_table_it_cannot_read;
CALL lifecycle.run_retention();
RESET ROLE;
-- the temper, pg_temp first, with look-alikes of the retention tables
SET ROLE regress_temper;
CREATE FUNCTION pg_temp.note() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN
        IF current_user <> 'regress_temper' THEN
            INSERT INTO public.regress_canary VALUES (current_user, 'temp table ' || TG_TABLE_NAME);
        END IF;
        RETURN NULL;
    END $$;
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['retention_policies', 'retention_runs', 'retention_holds', 'events', 'logs', 'prefs']
    LOOP
        EXECUTE format('CREATE TEMP TABLE %I (id int, relid oid, acct uuid, days int)', r);
        EXECUTE format('CREATE TRIGGER note AFTER INSERT OR UPDATE OR DELETE ON pg_temp.%I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.note()', r);
    END LOOP;
END $$;
SET search_path = pg_temp, regress_app, regress_planted, public, pg_catalog;
SELECT lifecycle.set_retention('regress_app.events', '1 day');
SELECT lifecycle.retention_waiting('regress_app.projects') AS no_policy;
SELECT lifecycle.cleanup_retention_data();
RESET search_path;
RESET ROLE;
-- the run, as the extension's owner, with the planted schema first
SET search_path = regress_planted, pg_catalog, public;
CALL lifecycle.run_retention();
SELECT lifecycle.cleanup_retention_data();
SELECT table_name::text, last_status, rows_waiting FROM lifecycle.retention_overview ORDER BY 1;
-- the owner's trigger changed nothing of this session
SELECT pg_catalog.current_setting('search_path') AS search_path, pg_catalog.current_setting('work_mem') AS work_mem;
RESET search_path;
SELECT relid::text, status, rows_archived, rows_skipped, error FROM lifecycle.retention_runs ORDER BY run_id, 1;
SELECT acct, count(*) FROM regress_planted.logs GROUP BY 1 ORDER BY 1;
SELECT n.nspname, c.relname, pg_get_userbyid(c.relowner) AS owner,
       (SELECT count(*) FROM pg_catalog.aclexplode(c.relacl) a WHERE a.grantee <> c.relowner) AS grants_to_others
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE obj_description(c.oid, 'pg_class') LIKE 'pg_lifecycle archive of %' ORDER BY 1, 2;
-- the schemer's own triggers ran, as the schemer; the victim's rows went too
SELECT ran_as, what, count(*) FROM regress_planted.ran GROUP BY 1, 2 ORDER BY 1, 2;
SELECT count(*) AS victim_events_left, (SELECT count(*) FROM regress_app_archive.events) AS archived
  FROM regress_app.events;
DISCARD TEMP;
ALTER ROLE regress_schemer RESET search_path;

--
-- Nothing planted ever ran, and nobody gained a right.
--
SELECT ran_as, what, count(*) FROM public.regress_canary GROUP BY 1, 2 ORDER BY 1, 2;
SELECT r.rolname, r.rolsuper, r.rolbypassrls,
       (SELECT array_agg(m.roleid::regrole::text ORDER BY 1) FROM pg_auth_members m WHERE m.member = r.oid) AS member_of,
       has_table_privilege(r.rolname, 'lifecycle.audit_log', 'INSERT,UPDATE,DELETE') AS writes_log,
       has_table_privilege(r.rolname, 'lifecycle.usage_counts', 'INSERT,UPDATE,DELETE') AS writes_counts,
       has_table_privilege(r.rolname, 'lifecycle.soft_delete_tables', 'INSERT,UPDATE,DELETE') AS writes_config
  FROM pg_roles r WHERE r.rolname IN ('regress_victim', 'regress_schemer', 'regress_temper')
EXCEPT SELECT * FROM public.regress_rights_before;
-- and the features did their work: the victim's triggers ran as the victim
-- when pg_lifecycle wrote its tables (mirrors, cascades), with its own
-- path, and wrote the victim's log, not the attackers' look-alikes
SELECT what, count(*) > 0 AS written FROM regress_app.project_log GROUP BY 1 ORDER BY 1;
SELECT count(*) AS victim_rows_in_look_alikes FROM regress_planted.project_log
 WHERE what LIKE '%regress_victim';
SELECT count(*) > 0 AS projects_logged FROM lifecycle.audit_log WHERE schema_name = 'regress_app';
SELECT name, n_projects, ai FROM regress_app.accounts ORDER BY name;

RESET client_min_messages;
SET client_min_messages = warning;
DROP SCHEMA regress_app, regress_planted, regress_app_archive, regress_planted_archive CASCADE;
DROP TABLE public.regress_canary, public.regress_rights_before;
REVOKE CREATE ON SCHEMA public FROM regress_victim;
REVOKE SELECT ON lifecycle.audit_log_visible, lifecycle.soft_delete_stats FROM regress_schemer, regress_temper;
DROP OWNED BY regress_victim, regress_schemer, regress_temper;
DROP ROLE regress_victim;
DROP ROLE regress_schemer;
DROP ROLE regress_temper;
DROP EXTENSION pg_lifecycle;
RESET client_min_messages;
