--
-- The extension itself: what CREATE EXTENSION makes, that it stays in
-- schema lifecycle, and that DROP EXTENSION removes all of it and nothing else.
--
-- Snapshot of the catalogs before installing.
CREATE TEMP TABLE regress_before AS
SELECT 'pg_class'::regclass AS cat, oid FROM pg_class
UNION ALL SELECT 'pg_proc'::regclass, oid FROM pg_proc
UNION ALL SELECT 'pg_type'::regclass, oid FROM pg_type
UNION ALL SELECT 'pg_namespace'::regclass, oid FROM pg_namespace
UNION ALL SELECT 'pg_event_trigger'::regclass, oid FROM pg_event_trigger
UNION ALL SELECT 'pg_trigger'::regclass, oid FROM pg_trigger;
CREATE TABLE regress_user_data (id int PRIMARY KEY, note text, updated_at timestamptz);
INSERT INTO regress_user_data VALUES (1, 'kept', '2001-02-03 04:05:06+00');
-- regress_before itself and the user table are not the extension's
INSERT INTO regress_before
SELECT 'pg_class'::regclass, oid FROM pg_class WHERE oid NOT IN (SELECT oid FROM regress_before)
UNION ALL SELECT 'pg_type'::regclass, oid FROM pg_type WHERE oid NOT IN (SELECT oid FROM regress_before);

CREATE EXTENSION pg_lifecycle;
SELECT extversion, extrelocatable
  FROM pg_extension WHERE extname = 'pg_lifecycle';

-- Everything it creates lives in schema lifecycle.
SELECT p.oid::regprocedure AS function, p.prosecdef AS security_definer,
       p.proconfig AS settings
  FROM pg_proc p WHERE p.pronamespace = 'lifecycle'::regnamespace
 ORDER BY p.oid::regprocedure::text;
SELECT c.oid::regclass AS relation, c.relkind
  FROM pg_class c WHERE c.relnamespace = 'lifecycle'::regnamespace
 ORDER BY c.oid::regclass::text;
SELECT evtname, evtevent FROM pg_event_trigger ORDER BY 1;
-- configuration tables are dumped with the user's data
SELECT unnest(extconfig)::regclass FROM pg_extension WHERE extname = 'pg_lifecycle';

-- Not relocatable.
CREATE SCHEMA regress_elsewhere;
ALTER EXTENSION pg_lifecycle SET SCHEMA regress_elsewhere;

-- While a table uses its trigger, DROP EXTENSION refuses (no CASCADE) ...
SELECT lifecycle.enable_updated_at('regress_user_data');
DROP EXTENSION pg_lifecycle;
-- ... and once the table is released it removes everything it created.
SELECT lifecycle.disable_updated_at('regress_user_data');
DROP EXTENSION pg_lifecycle;

SELECT b.cat, count(*) AS objects_left_behind
  FROM (SELECT 'pg_class'::regclass AS cat, oid FROM pg_class
        UNION ALL SELECT 'pg_proc', oid FROM pg_proc
        UNION ALL SELECT 'pg_type', oid FROM pg_type
        UNION ALL SELECT 'pg_namespace', oid FROM pg_namespace
        UNION ALL SELECT 'pg_event_trigger', oid FROM pg_event_trigger
        UNION ALL SELECT 'pg_trigger', oid FROM pg_trigger) b
 WHERE (b.cat, b.oid) NOT IN (SELECT cat, oid FROM regress_before)
   AND b.oid <> 'regress_elsewhere'::regnamespace
 GROUP BY b.cat;
SELECT count(*) AS lifecycle_schemas FROM pg_namespace WHERE nspname = 'lifecycle';
-- ... and nothing else: the user's table and data are untouched.
SELECT * FROM regress_user_data;

-- Reinstalling after a drop works.
CREATE EXTENSION pg_lifecycle;
DROP EXTENSION pg_lifecycle;

DROP TABLE regress_user_data;
DROP SCHEMA regress_elsewhere;
