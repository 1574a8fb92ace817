--
-- Audit capture: what each operation writes, excluded and redacted columns,
-- soft delete and restore, the append-only log, history and time travel,
-- RLS on the log, and every error.
--
CREATE EXTENSION pg_lifecycle;
SET timezone = 'UTC';

CREATE TABLE regress_people (
    id         bigint PRIMARY KEY,
    name       text,
    password   text,
    ssn        text,
    meta       jsonb,
    deleted_at timestamptz,
    deleted_by uuid
);
SELECT lifecycle.enable_audit('regress_people', exclude_columns => '{password}',
                              redact_columns => '{ssn}');
-- idempotent
SELECT lifecycle.enable_audit('regress_people', '{password}', '{ssn}');
SELECT table_name, exclude_columns, redact_columns FROM lifecycle.audited_tables;
SELECT tgname FROM pg_trigger WHERE tgrelid = 'regress_people'::regclass AND NOT tgisinternal ORDER BY 1;

CREATE VIEW regress_log AS
SELECT op, record_id, old_values, new_values, changed_columns, actor_id, actor_role,
       db_user, client_addr, schema_name, table_name
  FROM lifecycle.audit_log ORDER BY id;

-- who acted: the JWT's user and role, the forwarded client address
SET request.jwt.claims = '{"sub": "11111111-1111-4111-8111-111111111111", "role": "authenticated"}';
SET request.headers = '{"x-forwarded-for": "10.9.9.9, 203.0.113.9", "user-agent": "test"}';

-- INSERT logs the new row, without excluded columns, redacted masked
INSERT INTO regress_people VALUES (1, 'Ann', 'secret!', '123-45', '{"plan": "pro"}'),
                                  (2, 'Bob', 'hunter2', '999-99', NULL);
SELECT * FROM regress_log;

-- UPDATE logs only what changed; nothing when nothing (logged) changed
UPDATE regress_people SET name = 'Anne', meta = '{"plan": "team"}' WHERE id = 1;
UPDATE regress_people SET password = 'new secret' WHERE id = 1;   -- excluded only
UPDATE regress_people SET name = name;                             -- no change
UPDATE regress_people SET ssn = '000-00' WHERE id = 2;             -- redacted: marked, masked
UPDATE regress_people SET id = 3 WHERE id = 2;                     -- the key itself
SELECT op, record_id, old_values, new_values, changed_columns FROM regress_log OFFSET 2;

-- soft delete and restore, however made, are SOFT_DELETE and RESTORE
SELECT lifecycle.enable_soft_delete('regress_people');
SELECT lifecycle.soft_delete('regress_people', 1);
SELECT lifecycle.restore_deleted('regress_people', 1);
UPDATE regress_people SET deleted_at = '2020-01-01' WHERE id = 3;
SELECT op, record_id, changed_columns FROM regress_log OFFSET 5;

-- DELETE logs the old row; TRUNCATE one row per statement
DELETE FROM regress_people WHERE id = 3;
INSERT INTO regress_people (id, name) SELECT g, 'p' || g FROM generate_series(10, 14) g;
TRUNCATE regress_people;
SELECT op, record_id, old_values FROM regress_log OFFSET 9;
SELECT op, count(*) FROM lifecycle.audit_log GROUP BY op ORDER BY op;
-- bulk statements write one row per changed row
INSERT INTO regress_people (id, name) SELECT g, 'p' || g FROM generate_series(1, 1000) g;
UPDATE regress_people SET name = upper(name) WHERE id <= 500;
SELECT op, count(*) FROM lifecycle.audit_log GROUP BY op ORDER BY op;
-- the transaction id and the statement time
SELECT count(DISTINCT txid) AS transactions, bool_and(occurred_at <= clock_timestamp()) AS timely
  FROM lifecycle.audit_log;

-- every way of writing rows: ON CONFLICT, MERGE, a partitioned table with a
-- composite key and an UPDATE that moves a row to another partition
CREATE TABLE regress_kv (id int PRIMARY KEY, v text);
SELECT lifecycle.enable_audit('regress_kv');
INSERT INTO regress_kv VALUES (1, 'a');
INSERT INTO regress_kv VALUES (1, 'b'), (2, 'c') ON CONFLICT (id) DO UPDATE SET v = excluded.v;
MERGE INTO regress_kv t USING (VALUES (2, 'd'), (3, 'e')) s(id, v) ON t.id = s.id
  WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.v);
CREATE TABLE regress_parts (id int, k int, v text, PRIMARY KEY (id, k)) PARTITION BY LIST (k);
CREATE TABLE regress_parts_1 PARTITION OF regress_parts FOR VALUES IN (1);
CREATE TABLE regress_parts_2 PARTITION OF regress_parts FOR VALUES IN (2);
SELECT lifecycle.enable_audit('regress_parts');
INSERT INTO regress_parts VALUES (1, 1, 'x'), (2, 1, 'y');
UPDATE regress_parts SET k = 2, v = 'moved' WHERE id = 1;
UPDATE regress_parts SET v = 'z';
SELECT op, table_name, record_id, old_values, new_values FROM lifecycle.audit_log
 WHERE table_name IN ('regress_kv', 'regress_parts') ORDER BY id;
DROP TABLE regress_kv, regress_parts;

-- options follow renamed columns; columns named like the SQL's aliases are
-- just columns; a direct write to a partition is audited under the
-- partitioned table's name
CREATE TABLE regress_odd (id int PRIMARY KEY, n int, o text, t jsonb, secret text);
SELECT lifecycle.enable_audit('regress_odd', exclude_columns => '{secret}');
ALTER TABLE regress_odd RENAME COLUMN secret TO hidden;
INSERT INTO regress_odd VALUES (1, 2, 'three', '{"four": 4}', 'never logged');
UPDATE regress_odd SET n = 20, hidden = 'still never';
SELECT op, record_id, old_values, new_values FROM lifecycle.audit_log
 WHERE table_name = 'regress_odd' ORDER BY id;
DROP TABLE regress_odd;
CREATE TABLE regress_by_month (id int, k int, v text, PRIMARY KEY (id, k)) PARTITION BY LIST (k);
CREATE TABLE regress_by_month_1 PARTITION OF regress_by_month FOR VALUES IN (1);
SELECT lifecycle.enable_audit('regress_by_month');
INSERT INTO regress_by_month_1 VALUES (1, 1, 'direct');
DELETE FROM regress_by_month_1;
SELECT op, table_name, record_id FROM lifecycle.audit_log WHERE table_name LIKE 'regress_by_month%' ORDER BY id;
DROP TABLE regress_by_month;
-- append-only also when triggers are skipped for replication
SET session_replication_role = replica;
DELETE FROM lifecycle.audit_log;
RESET session_replication_role;

-- the history of one row and the row at a time
TRUNCATE regress_people;
SELECT pg_sleep(0.01);
INSERT INTO regress_people (id, name, ssn) VALUES (42, 'first', 'x');
SELECT clock_timestamp() AS t1 \gset
SELECT pg_sleep(0.01);
UPDATE regress_people SET name = 'second' WHERE id = 42;
SELECT clock_timestamp() AS t2 \gset
SELECT pg_sleep(0.01);
DELETE FROM regress_people WHERE id = 42;
SELECT op, old_values, new_values FROM lifecycle.record_history('regress_people', '42');
SELECT lifecycle.record_at('regress_people', '42', :'t1') AS at_t1,
       lifecycle.record_at('regress_people', '42', :'t2') AS at_t2,
       lifecycle.record_at('regress_people', '42', clock_timestamp()) AS now_gone,
       lifecycle.record_at('regress_people', '42', '2000-01-01') AS before;

-- the log is append-only, for its owner too
UPDATE lifecycle.audit_log SET op = 'DELETE';
DELETE FROM lifecycle.audit_log;
TRUNCATE lifecycle.audit_log;

-- writers need no privilege on the log (without the Supabase roles nobody
-- but the owner reads it; see sql/supabase.sql for the RLS of the API roles)
CREATE ROLE regress_writer;
GRANT SELECT, INSERT, UPDATE ON regress_people TO regress_writer;
SET ROLE regress_writer;
SET request.jwt.claims = '{"sub": "22222222-2222-4222-8222-222222222222", "role": "authenticated"}';
INSERT INTO regress_people (id, name) VALUES (77, 'by writer');
SELECT count(*) FROM lifecycle.audit_log;
INSERT INTO lifecycle.audit_log (occurred_at, txid, schema_name, table_name, op, db_user)
VALUES (now(), 1, 'x', 'y', 'INSERT', 'me');
RESET ROLE;
SELECT op, record_id, actor_id, db_user FROM lifecycle.audit_log WHERE record_id = '77';

-- errors: each clear, nothing changed
SELECT lifecycle.enable_audit('regress_people', '{nope}');
SELECT lifecycle.enable_audit('regress_people', '{}', '{nope}');
SELECT lifecycle.enable_audit('regress_people', '{name}', '{name}');
SELECT lifecycle.enable_audit('lifecycle.audit_log');
SELECT lifecycle.enable_audit('regress_log');
SELECT lifecycle.enable_audit('regress_missing');
SELECT lifecycle.enable_audit(NULL);
SET ROLE regress_writer;
SELECT lifecycle.enable_audit('regress_people');
RESET ROLE;
CREATE TABLE regress_nokey (v text);
SELECT lifecycle.enable_audit('regress_nokey');
INSERT INTO regress_nokey VALUES ('a');
UPDATE regress_nokey SET v = 'b';
SELECT op, record_id, old_values, new_values FROM lifecycle.audit_log WHERE table_name = 'regress_nokey' ORDER BY id;
SELECT * FROM lifecycle.record_history('regress_nokey', '1');
SELECT table_name, exclude_columns, redact_columns FROM lifecycle.audited_tables ORDER BY table_name::text;

-- the table's own code (a cast to json used by to_jsonb) runs as the
-- table's owner, never as the extension's owner who writes the log
CREATE TYPE regress_mood AS ENUM ('ok', 'sad');
CREATE ROLE regress_caster;
GRANT CREATE ON SCHEMA public TO regress_caster;
CREATE TABLE regress_cast_log (who name);
GRANT INSERT ON regress_cast_log TO regress_caster;
ALTER TYPE regress_mood OWNER TO regress_caster;
CREATE FUNCTION regress_mood_json(regress_mood) RETURNS json LANGUAGE plpgsql AS
$$ BEGIN INSERT INTO public.regress_cast_log VALUES (current_user); RETURN '"mood"'::json; END $$;
ALTER FUNCTION regress_mood_json(regress_mood) OWNER TO regress_caster;
CREATE CAST (regress_mood AS json) WITH FUNCTION regress_mood_json(regress_mood);
CREATE TABLE regress_moods (id int PRIMARY KEY, mood regress_mood);
ALTER TABLE regress_moods OWNER TO regress_caster;
SET ROLE regress_caster;
SELECT lifecycle.enable_audit('regress_moods');
RESET ROLE;
INSERT INTO regress_moods VALUES (1, 'ok');
SELECT who, count(*) FROM regress_cast_log GROUP BY who;
SELECT new_values FROM lifecycle.audit_log WHERE table_name = 'regress_moods';

-- the audit trigger runs only as enable_audit() attached it: a second one
-- made by hand with other options, one replaced with other options, one
-- with its transition table under another name, are refused; nothing is
-- logged by them
CREATE TABLE regress_hand (id int PRIMARY KEY, secret text);
SELECT lifecycle.enable_audit('regress_hand', exclude_columns => '{secret}');
CREATE TRIGGER second AFTER INSERT ON regress_hand REFERENCING NEW TABLE AS lifecycle_new
    FOR EACH STATEMENT EXECUTE FUNCTION lifecycle.audit_trigger('{}', '{}');
INSERT INTO regress_hand VALUES (1, 'never logged');
DROP TRIGGER second ON regress_hand;
CREATE OR REPLACE TRIGGER lifecycle_audit_insert AFTER INSERT ON regress_hand
    REFERENCING NEW TABLE AS lifecycle_new
    FOR EACH STATEMENT EXECUTE FUNCTION lifecycle.audit_trigger('{}', '{}');
INSERT INTO regress_hand VALUES (2, 'never logged');
CREATE OR REPLACE TRIGGER lifecycle_audit_insert AFTER INSERT ON regress_hand
    REFERENCING NEW TABLE AS other_name
    FOR EACH STATEMENT EXECUTE FUNCTION lifecycle.audit_trigger('{2}', '{}');
INSERT INTO regress_hand VALUES (3, 'never logged');
SELECT lifecycle.enable_audit('regress_hand', exclude_columns => '{secret}');   -- set up again
INSERT INTO regress_hand VALUES (4, 'excluded');
SELECT op, record_id, new_values FROM lifecycle.audit_log WHERE table_name = 'regress_hand' ORDER BY id;
CREATE TEMP TABLE regress_temp_hand (id int);
CREATE TRIGGER t AFTER INSERT ON regress_temp_hand REFERENCING NEW TABLE AS foo
    FOR EACH STATEMENT EXECUTE FUNCTION lifecycle.audit_trigger('{}', '{}');
INSERT INTO regress_temp_hand VALUES (1);
SELECT lifecycle.audit_trigger();
DROP TABLE regress_hand, regress_temp_hand;

-- disable_audit stops logging and keeps the log; again is a notice
SELECT lifecycle.disable_audit('regress_people');
SELECT lifecycle.disable_audit('regress_people');
INSERT INTO regress_people (id, name) VALUES (5000, 'not logged');
SELECT count(*) AS logged_5000 FROM lifecycle.audit_log WHERE record_id = '5000';
SELECT count(*) > 0 AS log_kept FROM lifecycle.audit_log WHERE table_name = 'regress_people';
DROP TABLE regress_nokey;
SELECT table_name, exclude_columns, redact_columns FROM lifecycle.audited_tables ORDER BY table_name::text;

-- one row or several, the same change logs the same: values are compared
-- as the log shows them (1.0 and 1.00 are one number, SQL NULL and json
-- null one value), and printed the same whatever the session's settings
CREATE TABLE regress_same (id int PRIMARY KEY, n numeric, j jsonb, f float8, b bytea, r regclass);
SELECT lifecycle.enable_audit('regress_same');
INSERT INTO regress_same VALUES (1, 1.0, NULL, 0.1::float8 + 0.2::float8, '\x41ff', 'regress_same'),
                                (2, 1.0, NULL, 0.1::float8 + 0.2::float8, '\x41ff', 'regress_same');
SET extra_float_digits = 0;
SET bytea_output = escape;
SET search_path = public, pg_catalog;
INSERT INTO regress_same VALUES (3, 1.0, NULL, 0.1::float8 + 0.2::float8, '\x41ff', 'regress_same');
UPDATE regress_same SET n = 1.00, j = 'null' WHERE id = 1;
UPDATE regress_same SET n = 1.00, j = 'null' WHERE id IN (2, 3);
RESET extra_float_digits;
RESET bytea_output;
RESET search_path;
SELECT op, record_id, new_values->>'f' AS f, new_values->>'b' AS b, new_values->>'r' AS r
  FROM lifecycle.audit_log WHERE table_name = 'regress_same' ORDER BY id;
DROP TABLE regress_same;

-- hash_columns: the log keeps keyed pseudonyms (a change is visible, the
-- value is not); redact_values: logged values pass the redaction rules.
CREATE TABLE regress_private (id int PRIMARY KEY, email text, ssn text, note text, meta jsonb);
SELECT lifecycle.enable_audit('regress_private', hash_columns => '{email, ssn}', redact_values => true);
SELECT table_name, hash_columns, redact_values FROM lifecycle.audited_tables WHERE table_name = 'regress_private'::regclass;
SET lifecycle.redaction_key = 'k1:0123456789abcdef0123456789abcdef';
INSERT INTO regress_private VALUES
  (1, 'ann@example.com', '078-05-1120', 'call +44 20 7946 0958', '{"password": "p", "ok": 1}'),
  (2, 'ann@example.com', NULL, 'fine', NULL);
UPDATE regress_private SET email = 'bob@example.com' WHERE id = 1;
UPDATE regress_private SET note = 'still fine' WHERE id = 2;
SELECT op, record_id, old_values, new_values FROM lifecycle.audit_log
 WHERE table_name = 'regress_private' ORDER BY id;
-- equal values, equal pseudonyms; nothing of the values is in the log
SELECT count(DISTINCT new_values->>'email') AS one_pseudonym
  FROM lifecycle.audit_log WHERE table_name = 'regress_private' AND op = 'INSERT';
SELECT count(*) AS leaked FROM lifecycle.audit_log
 WHERE table_name = 'regress_private' AND (coalesce(old_values::text, '') || new_values::text) ~ 'example\.com|078-05|7946|"p"';
-- without a key: masked, with the warning; never an unkeyed hash
RESET lifecycle.redaction_key;
INSERT INTO regress_private VALUES (3, 'cy@example.com', NULL, NULL, NULL);
SELECT new_values->>'email' AS email FROM lifecycle.audit_log
 WHERE table_name = 'regress_private' AND record_id = '3';
-- bad options change nothing
SELECT lifecycle.enable_audit('regress_private', hash_columns => '{nope}');
SELECT lifecycle.enable_audit('regress_private', redact_columns => '{email}', hash_columns => '{email}');
SELECT lifecycle.enable_audit('regress_private', exclude_columns => '{ssn}', hash_columns => '{ssn}');
SELECT hash_columns FROM lifecycle.audited_tables WHERE table_name = 'regress_private'::regclass;
-- a hashed column renamed is still hashed (by number, not by name)
SET lifecycle.redaction_key = 'k1:0123456789abcdef0123456789abcdef';
ALTER TABLE regress_private RENAME COLUMN ssn TO social;
INSERT INTO regress_private VALUES (4, 'x@example.com', '078-05-1120', NULL, NULL);
SELECT new_values->>'social' LIKE '[hash:k1:%' AS still_hashed,
       (SELECT hash_columns FROM lifecycle.audited_tables WHERE table_name = 'regress_private'::regclass)
  FROM lifecycle.audit_log WHERE table_name = 'regress_private' AND record_id = '4';
-- a hashed key column: the record id is its pseudonym
CREATE TABLE regress_by_email (email text PRIMARY KEY, name text);
SELECT lifecycle.enable_audit('regress_by_email', hash_columns => '{email}');
INSERT INTO regress_by_email VALUES ('ann@example.com', 'Ann');
SELECT record_id = new_values->>'email' AS id_is_pseudonym, record_id LIKE '[hash:k1:%' AS hashed
  FROM lifecycle.audit_log WHERE table_name = 'regress_by_email';
DROP TABLE regress_by_email;
RESET lifecycle.redaction_key;
-- turning the options off logs values again
SELECT lifecycle.enable_audit('regress_private');
UPDATE regress_private SET email = 'dee@example.com' WHERE id = 3;
SELECT new_values->>'email' AS email FROM lifecycle.audit_log
 WHERE table_name = 'regress_private' AND record_id = '3' AND op = 'UPDATE';
DROP TABLE regress_private;

RESET request.jwt.claims;
RESET request.headers;
DROP VIEW regress_log;
SET client_min_messages = warning;
DROP TABLE regress_people, regress_moods, regress_cast_log CASCADE;
RESET client_min_messages;
REVOKE CREATE ON SCHEMA public FROM regress_caster;
DROP CAST (regress_mood AS json);
DROP FUNCTION regress_mood_json(regress_mood);
DROP TYPE regress_mood;
DROP ROLE regress_writer;
DROP ROLE regress_caster;
DROP EXTENSION pg_lifecycle;
