--
-- set_updated_at(): stamping updated_at and the actor; enable/disable helpers;
-- every misuse gets a clear error and changes nothing.
--
CREATE EXTENSION pg_lifecycle;
SET timezone = 'UTC';

CREATE TABLE regress_items (
    id         int PRIMARY KEY,
    name       text,
    big        text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by uuid
);
SELECT lifecycle.enable_updated_at('regress_items', actor_column => 'updated_by');
SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger
 WHERE tgrelid = 'regress_items'::regclass;
SELECT relid, timestamp_column, actor_column FROM lifecycle.updated_at_tables;

-- INSERT fills NULL stamps, keeps explicit ones (imports, restores).
SET request.jwt.claims = '{"sub": "11111111-1111-1111-1111-111111111111"}';
BEGIN;
INSERT INTO regress_items (id, name, big, updated_at) VALUES
    (1, 'one', repeat('x', 100000), NULL),
    (2, 'two', NULL, '2001-01-01 00:00:00+00');
SELECT id, updated_at = now() AS stamped_now, updated_by FROM regress_items ORDER BY id;
COMMIT;
SELECT updated_at FROM regress_items WHERE id = 2;
-- To set the stamps by hand (backfills), disable the trigger for the change.
ALTER TABLE regress_items DISABLE TRIGGER lifecycle_updated_at;
UPDATE regress_items SET updated_at = '2000-01-01', updated_by = NULL;
ALTER TABLE regress_items ENABLE TRIGGER lifecycle_updated_at;

-- A real UPDATE stamps now() and the acting user.
SET request.jwt.claims = '{"sub": "22222222-2222-2222-2222-222222222222"}';
BEGIN;
UPDATE regress_items SET name = 'uno' WHERE id = 1;
SELECT id, name, updated_at = now() AS stamped_now, updated_by FROM regress_items WHERE id = 1;
COMMIT;

-- A no-op UPDATE (even of a large TOASTed value) keeps both stamps.
SET request.jwt.claims = '{"sub": "33333333-3333-3333-3333-333333333333"}';
ALTER TABLE regress_items DISABLE TRIGGER lifecycle_updated_at;
UPDATE regress_items SET updated_at = '2000-01-01', updated_by = NULL WHERE id = 1;
ALTER TABLE regress_items ENABLE TRIGGER lifecycle_updated_at;
UPDATE regress_items SET name = name, big = big;
SELECT id, updated_at, updated_by FROM regress_items ORDER BY id;
-- Setting only the stamped columns is a no-op too: the trigger owns them.
UPDATE regress_items SET updated_at = '1999-01-01', updated_by = '33333333-3333-3333-3333-333333333333' WHERE id = 2;
SELECT id, updated_at, updated_by FROM regress_items WHERE id = 2;
-- NULL to value and value to NULL are changes.
BEGIN;
UPDATE regress_items SET big = 'small' WHERE id = 2;
UPDATE regress_items SET big = NULL WHERE id = 1;
SELECT id, updated_at = now() AS stamped_now, updated_by FROM regress_items ORDER BY id;
COMMIT;
-- Without claims the actor is unknown: the column says so (NULL).
RESET request.jwt.claims;
UPDATE regress_items SET name = 'one' WHERE id = 1;
SELECT id, updated_by FROM regress_items WHERE id = 1;

-- What the statement sees is what is stored: RETURNING, indexes and
-- constraints on the stamped columns all get the stamped values.
CREATE INDEX regress_items_updated_at ON regress_items (updated_at);
CREATE INDEX regress_items_updated_by ON regress_items (updated_by);
ALTER TABLE regress_items DISABLE TRIGGER lifecycle_updated_at;
UPDATE regress_items SET updated_at = '2000-01-01' WHERE id = 2;
ALTER TABLE regress_items ENABLE TRIGGER lifecycle_updated_at;
ALTER TABLE regress_items ADD CONSTRAINT regress_stamped CHECK (updated_at > '2000-01-02') NOT VALID;
SET request.jwt.claims = '{"sub": "66666666-6666-6666-6666-666666666666"}';
BEGIN;
UPDATE regress_items SET name = 'two!' WHERE id = 2
    RETURNING name, updated_at = now() AS returned_now, updated_by;
SET LOCAL enable_seqscan = off;
SET LOCAL enable_bitmapscan = off;
SELECT id FROM regress_items WHERE updated_at = now();
SELECT id FROM regress_items WHERE updated_by = '66666666-6666-6666-6666-666666666666';
COMMIT;
-- the CHECK saw the stamp: the old value fails it
ALTER TABLE regress_items DISABLE TRIGGER lifecycle_updated_at;
UPDATE regress_items SET updated_at = '2000-01-01' WHERE id = 2;
ALTER TABLE regress_items ENABLE TRIGGER lifecycle_updated_at;
ALTER TABLE regress_items DROP CONSTRAINT regress_stamped;
DROP INDEX regress_items_updated_at, regress_items_updated_by;
RESET request.jwt.claims;

-- Soft delete and restore change only deleted_at/deleted_by: not an edit,
-- so the stamps stay and a restored row is exactly as it was.
CREATE TABLE regress_sd (id int PRIMARY KEY, v text, updated_at timestamptz,
                         updated_by uuid, deleted_at timestamptz, deleted_by uuid);
SELECT lifecycle.enable_updated_at('regress_sd', 'updated_at', 'updated_by');
INSERT INTO regress_sd VALUES (1, 'a', '2000-01-01', NULL, NULL, NULL);
SET request.jwt.claims = '{"sub": "77777777-7777-7777-7777-777777777777"}';
UPDATE regress_sd SET deleted_at = '2020-01-01', deleted_by = '77777777-7777-7777-7777-777777777777';
SELECT updated_at, updated_by, deleted_at FROM regress_sd;
UPDATE regress_sd SET deleted_at = NULL, deleted_by = NULL;
SELECT updated_at, updated_by, deleted_at FROM regress_sd;
RESET request.jwt.claims;
DROP TABLE regress_sd;

-- Every way of writing a row is stamped: ON CONFLICT DO UPDATE, MERGE,
-- COPY, and an UPDATE that moves the row to another partition.
CREATE TABLE regress_ways (id int PRIMARY KEY, v int,
                           updated_at timestamptz NOT NULL DEFAULT '2000-01-01', updated_by uuid);
CREATE INDEX ON regress_ways (updated_at);
SELECT lifecycle.enable_updated_at('regress_ways', 'updated_at', 'updated_by');
INSERT INTO regress_ways VALUES (1, 1), (2, 2);
SET request.jwt.claims = '{"sub": "88888888-8888-8888-8888-888888888888"}';
BEGIN;
INSERT INTO regress_ways VALUES (1, 10) ON CONFLICT (id) DO UPDATE SET v = excluded.v
    RETURNING id, v, updated_at = now() AS stamped_now, updated_by;
MERGE INTO regress_ways w USING (VALUES (2, 20)) s(id, v) ON w.id = s.id
    WHEN MATCHED THEN UPDATE SET v = s.v;
COPY regress_ways (id, v, updated_at) FROM stdin;
3	30	\N
\.
SET LOCAL enable_seqscan = off;
SELECT id, v, updated_by FROM regress_ways WHERE updated_at = now() ORDER BY id;
COMMIT;
CREATE TABLE regress_moving (id int, k int, updated_at timestamptz NOT NULL DEFAULT '2000-01-01')
    PARTITION BY LIST (k);
CREATE TABLE regress_moving_1 PARTITION OF regress_moving FOR VALUES IN (1);
CREATE TABLE regress_moving_2 PARTITION OF regress_moving FOR VALUES IN (2);
SELECT lifecycle.enable_updated_at('regress_moving');
INSERT INTO regress_moving VALUES (1, 1);
BEGIN;
UPDATE regress_moving SET k = 2 RETURNING tableoid::regclass, updated_at = now() AS stamped_now;
COMMIT;
RESET request.jwt.claims;
DROP TABLE regress_ways, regress_moving;

-- enable_updated_at is idempotent, and re-running it changes the options.
SELECT lifecycle.enable_updated_at('regress_items', actor_column => 'updated_by');
SELECT lifecycle.enable_updated_at('regress_items');
SELECT count(*) AS triggers, pg_get_triggerdef(min(oid::text)::oid) FROM pg_trigger
 WHERE tgrelid = 'regress_items'::regclass;
SELECT relid, timestamp_column, actor_column FROM lifecycle.updated_at_tables;

-- 'always': every UPDATE stamps, no-op or not (moddatetime semantics).
CREATE TABLE regress_always (id int PRIMARY KEY, v int,
                             modified timestamp, changed_by uuid);
CREATE TRIGGER regress_stamp BEFORE INSERT OR UPDATE ON regress_always
    FOR EACH ROW EXECUTE FUNCTION lifecycle.set_updated_at('modified', 'changed_by', 'always');
SET request.jwt.claims = '{"sub": "44444444-4444-4444-4444-444444444444"}';
INSERT INTO regress_always VALUES (1, 1, '2000-01-01', NULL);
SELECT modified = now()::timestamp AS stamped_now, changed_by FROM regress_always;
ALTER TABLE regress_always DISABLE TRIGGER regress_stamp;
UPDATE regress_always SET modified = '2000-01-01', changed_by = NULL;
ALTER TABLE regress_always ENABLE TRIGGER regress_stamp;
BEGIN;
UPDATE regress_always SET v = v;
SELECT modified = now()::timestamp AS stamped_now, changed_by FROM regress_always;
COMMIT;
RESET request.jwt.claims;

-- update_updated_at_column(): the hand-written schemas' name, same behaviour,
-- here on a domain over timestamptz.
CREATE DOMAIN regress_ts AS timestamptz;
CREATE TABLE regress_legacy (id int PRIMARY KEY, v text, updated_at regress_ts);
CREATE TRIGGER update_regress_legacy_updated_at BEFORE UPDATE ON regress_legacy
    FOR EACH ROW EXECUTE FUNCTION lifecycle.update_updated_at_column();
INSERT INTO regress_legacy VALUES (1, 'a', '2000-01-01');
SELECT updated_at FROM regress_legacy;
BEGIN;
UPDATE regress_legacy SET v = 'b';
SELECT updated_at = now() AS stamped_now FROM regress_legacy;
COMMIT;

-- Table changes are picked up: the cached column lookup is invalidated.
ALTER TABLE regress_legacy ALTER COLUMN updated_at TYPE timestamp;
BEGIN;
UPDATE regress_legacy SET v = 'c';
SELECT updated_at = now()::timestamp AS stamped_now FROM regress_legacy;
COMMIT;
ALTER TABLE regress_legacy RENAME COLUMN updated_at TO modified_at;
UPDATE regress_legacy SET v = 'd';
ALTER TABLE regress_legacy RENAME COLUMN modified_at TO updated_at;
ALTER TABLE regress_legacy ADD COLUMN extra int, DROP COLUMN v;
BEGIN;
UPDATE regress_legacy SET extra = 1;
SELECT updated_at = now()::timestamp AS stamped_now, extra FROM regress_legacy;
COMMIT;

-- Partitioned tables: the trigger is cloned to every partition.
CREATE TABLE regress_parted (id int, tenant int, v text, updated_at timestamptz)
    PARTITION BY LIST (tenant);
CREATE TABLE regress_parted_1 PARTITION OF regress_parted FOR VALUES IN (1);
SELECT lifecycle.enable_updated_at('regress_parted');
CREATE TABLE regress_parted_2 PARTITION OF regress_parted FOR VALUES IN (2);
INSERT INTO regress_parted VALUES (1, 1, 'a', NULL), (2, 2, 'b', NULL);
BEGIN;
UPDATE regress_parted SET v = v || '!';
SELECT tableoid::regclass, updated_at = now() AS stamped_now FROM regress_parted ORDER BY id;
COMMIT;

-- Writers need no privilege on lifecycle: RLS-limited users are stamped too.
CREATE ROLE regress_writer;
GRANT SELECT, UPDATE ON regress_items TO regress_writer;
ALTER TABLE regress_items ENABLE ROW LEVEL SECURITY;
CREATE POLICY regress_writer_rows ON regress_items USING (id = 1);
SELECT lifecycle.enable_updated_at('regress_items', 'updated_at', 'updated_by');
SET ROLE regress_writer;
SET request.jwt.claims = '{"sub": "55555555-5555-5555-5555-555555555555"}';
UPDATE regress_items SET name = 'ONE';
SELECT id, name, updated_by FROM regress_items;
RESET request.jwt.claims;
RESET ROLE;

--
-- Misuse: each gets a clear error and changes nothing.
--
CREATE TABLE regress_bad (id int PRIMARY KEY, v int, updated_at text, ts timestamptz);
INSERT INTO regress_bad VALUES (1, 1, 'never', '2000-01-01');
-- called directly
SELECT lifecycle.set_updated_at();
-- as a statement trigger
CREATE TRIGGER t BEFORE UPDATE ON regress_bad
    FOR EACH STATEMENT EXECUTE FUNCTION lifecycle.set_updated_at('ts');
UPDATE regress_bad SET v = 2;
DROP TRIGGER t ON regress_bad;
-- as an AFTER trigger
CREATE TRIGGER t AFTER UPDATE ON regress_bad
    FOR EACH ROW EXECUTE FUNCTION lifecycle.set_updated_at('ts');
UPDATE regress_bad SET v = 2;
DROP TRIGGER t ON regress_bad;
-- on DELETE
CREATE TRIGGER t BEFORE DELETE ON regress_bad
    FOR EACH ROW EXECUTE FUNCTION lifecycle.set_updated_at('ts');
DELETE FROM regress_bad;
DROP TRIGGER t ON regress_bad;
-- the column is not a timestamp
CREATE TRIGGER t BEFORE UPDATE ON regress_bad
    FOR EACH ROW EXECUTE FUNCTION lifecycle.set_updated_at();
UPDATE regress_bad SET v = 2;
DROP TRIGGER t ON regress_bad;
-- the column does not exist
CREATE TRIGGER t BEFORE UPDATE ON regress_bad
    FOR EACH ROW EXECUTE FUNCTION lifecycle.set_updated_at('modified_at');
UPDATE regress_bad SET v = 2;
DROP TRIGGER t ON regress_bad;
-- the actor column is not a uuid
CREATE TRIGGER t BEFORE UPDATE ON regress_bad
    FOR EACH ROW EXECUTE FUNCTION lifecycle.set_updated_at('ts', 'v');
UPDATE regress_bad SET v = 2;
DROP TRIGGER t ON regress_bad;
-- unknown arguments
CREATE TRIGGER t BEFORE UPDATE ON regress_bad
    FOR EACH ROW EXECUTE FUNCTION lifecycle.set_updated_at('ts', 'id', 'extra');
UPDATE regress_bad SET v = 2;
DROP TRIGGER t ON regress_bad;
CREATE TRIGGER t BEFORE UPDATE ON regress_bad
    FOR EACH ROW EXECUTE FUNCTION lifecycle.set_updated_at('');
UPDATE regress_bad SET v = 2;
DROP TRIGGER t ON regress_bad;
SELECT * FROM regress_bad;

-- enable_updated_at: a view, a missing table, a missing column, a wrong type,
-- a NULL table, a table the caller does not own
CREATE VIEW regress_view AS SELECT * FROM regress_items;
SELECT lifecycle.enable_updated_at('regress_view');
SELECT lifecycle.enable_updated_at('regress_no_such_table');
SELECT lifecycle.enable_updated_at('regress_bad', 'modified_at');
SELECT lifecycle.enable_updated_at('regress_bad', 'updated_at');
SELECT lifecycle.enable_updated_at('regress_bad', 'ts', 'v');
SELECT lifecycle.enable_updated_at(NULL);
SET ROLE regress_writer;
SELECT lifecycle.enable_updated_at('regress_bad', 'ts');
SELECT lifecycle.disable_updated_at('regress_items');
RESET ROLE;
SELECT count(*) AS triggers_on_regress_bad FROM pg_trigger WHERE tgrelid = 'regress_bad'::regclass;
SELECT relid FROM lifecycle.updated_at_tables ORDER BY relid::text;
-- the configuration table is changed only through the functions
SET ROLE regress_writer;
SELECT * FROM lifecycle.updated_at_tables;
INSERT INTO lifecycle.updated_at_tables (relid, timestamp_column) VALUES ('regress_bad', 'ts');
RESET ROLE;

-- disable_updated_at removes the trigger and the record; again is a notice.
SELECT lifecycle.disable_updated_at('regress_items');
SELECT lifecycle.disable_updated_at('regress_items');
SELECT lifecycle.disable_updated_at(NULL);
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'regress_items'::regclass;
UPDATE regress_items SET updated_at = '2000-01-01' WHERE id = 1;
SELECT updated_at FROM regress_items WHERE id = 1;

-- Dropping a table, or its trigger, forgets it.
SELECT relid FROM lifecycle.updated_at_tables ORDER BY relid::text;
DROP TABLE regress_parted;
SELECT lifecycle.enable_updated_at('regress_items');
DROP TRIGGER lifecycle_updated_at ON regress_items;
SELECT relid FROM lifecycle.updated_at_tables ORDER BY relid::text;

DROP VIEW regress_view;
DROP TABLE regress_items, regress_always, regress_legacy, regress_bad;
DROP DOMAIN regress_ts;
DROP ROLE regress_writer;
DROP EXTENSION pg_lifecycle;
