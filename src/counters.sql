\echo Use "CREATE EXTENSION pg_lifecycle" to load this file. \quit

-- Usage counters and plan limits: per-account counts of a table's live rows
-- (or metered usage), kept by statement-level triggers, with limits.

-- Each counted resource.  Change only through track_usage()/untrack_usage().
CREATE TABLE lifecycle.usage_resources (
    resource_type  text        PRIMARY KEY CHECK (resource_type <> ''),
    counter_table  regclass    NOT NULL,
    counter_column name        NOT NULL,
    source_table   regclass,                -- NULL: metered usage
    source_column  name,
    limit_column   name,
    tracked_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CHECK ((source_table IS NULL) = (source_column IS NULL))
);
REVOKE ALL ON lifecycle.usage_resources FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('lifecycle.usage_resources', '');

COMMENT ON TABLE lifecycle.usage_resources IS
  'Counted resources; change only through lifecycle.track_usage()/untrack_usage()';

-- The counts themselves.  A count is split over a few slots, one per group
-- of backends, so that concurrent writers of one account do not queue on one
-- row; the count is the sum of its slots.  With a limit, each slot may grow
-- up to its cap without looking at the others (the caps together stay within
-- the limit); a writer whose slot is full locks all slots of the count and
-- shares out what is left of the limit again.
CREATE TABLE lifecycle.usage_counts (
    resource_type text     NOT NULL,    -- no foreign key: pg_dump restores config tables in any order
    account_id    uuid     NOT NULL,
    slot          smallint NOT NULL,
    n             bigint   NOT NULL DEFAULT 0,
    cap           bigint,                   -- NULL: no limit
    PRIMARY KEY (resource_type, account_id, slot)
) WITH (fillfactor = 10);   -- slots of one count on separate pages, pruned often
REVOKE ALL ON lifecycle.usage_counts FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('lifecycle.usage_counts', '');

COMMENT ON TABLE lifecycle.usage_counts IS
  'The exact count of each (resource, account): the sum of n over its slots; written only by pg_lifecycle';

-- Metered usage, for billing per period.
CREATE TABLE lifecycle.usage_events (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id    uuid        NOT NULL,
    resource_type text        NOT NULL,
    quantity      integer     NOT NULL,     -- negative for decrements
    actor_id      uuid,
    occurred_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX usage_events_account_idx ON lifecycle.usage_events (account_id, resource_type, occurred_at);
REVOKE ALL ON lifecycle.usage_events FROM PUBLIC;
ALTER TABLE lifecycle.usage_events ENABLE ROW LEVEL SECURITY;
SELECT pg_catalog.pg_extension_config_dump('lifecycle.usage_events', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.usage_events_id_seq', '');

COMMENT ON TABLE lifecycle.usage_events IS
  'Ledger of metered increments and decrements (increment_usage_counter/decrement_usage_counter)';

CREATE FUNCTION lifecycle.track_usage(
    resource_type text,
    counter_table regclass,
    counter_column name,
    source_table regclass,
    source_column name,
    limit_column name DEFAULT NULL)
RETURNS void AS 'MODULE_PATHNAME', 'track_usage' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.track_usage(text, regclass, name, regclass, name, name) IS
  'Count source_table''s live rows per account into counter_table.counter_column (source_table NULL: metered), limited by limit_column; backfills; idempotent';

CREATE FUNCTION lifecycle.untrack_usage(resource_type text)
RETURNS void AS 'MODULE_PATHNAME', 'untrack_usage' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.untrack_usage(text) IS
  'Stop counting a resource: drop its triggers and counts, keep the counter column''s last value';

CREATE FUNCTION lifecycle.increment_usage_counter(account_id uuid, resource_type text,
                                                  amount integer DEFAULT 1)
RETURNS boolean AS 'MODULE_PATHNAME', 'increment_usage_counter' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.increment_usage_counter(uuid, text, integer) IS
  'Add metered usage; false, and nothing changed, when it would pass the limit';

CREATE FUNCTION lifecycle.decrement_usage_counter(account_id uuid, resource_type text,
                                                  amount integer DEFAULT 1)
RETURNS boolean AS 'MODULE_PATHNAME', 'decrement_usage_counter' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.decrement_usage_counter(uuid, text, integer) IS
  'Take back metered usage; false, and nothing changed, when it would go below zero';

CREATE FUNCTION lifecycle.reset_usage_counter(resource_type text, account_id uuid DEFAULT NULL)
RETURNS integer AS 'MODULE_PATHNAME', 'reset_usage_counter' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.reset_usage_counter(text, uuid) IS
  'Set a metered counter to zero for one account or all (period resets, e.g. from pg_cron); returns how many were not zero';

CREATE FUNCTION lifecycle.calculate_account_usage(account_id uuid)
RETURNS TABLE (resource_type text, stored_count bigint, actual_count bigint, usage_limit bigint)
AS 'MODULE_PATHNAME', 'calculate_account_usage' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.calculate_account_usage(uuid) IS
  'Per resource: the count pg_lifecycle keeps, the count in the data (NULL when metered) and the limit';

CREATE FUNCTION lifecycle.sync_usage_counters(account_id uuid DEFAULT NULL)
RETURNS integer AS 'MODULE_PATHNAME', 'sync_usage_counters' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.sync_usage_counters(uuid) IS
  'Recount tracked resources from the data for one account or all, and bring counter columns up to date; returns how many counters it corrected';

CREATE FUNCTION lifecycle.refresh_usage_counters(account_id uuid DEFAULT NULL)
RETURNS integer AS 'MODULE_PATHNAME', 'refresh_usage_counters' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.refresh_usage_counters(uuid) IS
  'Bring counter columns up to the counts pg_lifecycle keeps (after bursts of concurrent writes), without recounting; returns how many it changed';

-- Triggers installed by track_usage(): on each source table (statement-level,
-- with transition tables) and on each counter table (the guard).
CREATE FUNCTION lifecycle.usage_trigger()
RETURNS trigger AS 'MODULE_PATHNAME', 'usage_trigger' LANGUAGE C;
CREATE FUNCTION lifecycle.usage_guard()
RETURNS trigger AS 'MODULE_PATHNAME', 'usage_guard' LANGUAGE C;

-- Make and lock every slot of one count, in slot order (waits for the
-- writers of the others, and for a change of the account's limit whose
-- guard holds them).  Internal, as usage_rebalance.
CREATE FUNCTION lifecycle.usage_lock_slots(res text, acct uuid, nslots integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO lifecycle.usage_counts (resource_type, account_id, slot, n, cap)
    SELECT res, acct, s, 0, 0 FROM generate_series(0, nslots - 1) s
    ON CONFLICT DO NOTHING;
    PERFORM 1 FROM lifecycle.usage_counts u
     WHERE u.resource_type = res AND u.account_id = acct
     ORDER BY u.slot FOR UPDATE;
END
$$;
REVOKE ALL ON FUNCTION lifecycle.usage_lock_slots(text, uuid, integer) FROM PUBLIC;

-- Share out what is left of a limit among the slots of one count and add
-- delta to slot own.  Returns NULL when done; otherwise the count that
-- stopped it (the limit would be passed, or, with floor_zero, the count
-- would go below zero) and nothing is changed.  Internal: run by
-- pg_lifecycle as the extension's owner, when a writer's slot has no room
-- left.
CREATE FUNCTION lifecycle.usage_rebalance(res text, acct uuid, own smallint, delta bigint,
                                          lim bigint, nslots integer, floor_zero boolean)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    total bigint;
    room bigint;
BEGIN
    INSERT INTO lifecycle.usage_counts (resource_type, account_id, slot, n, cap)
    SELECT res, acct, s, 0, 0 FROM generate_series(0, nslots - 1) s
    ON CONFLICT DO NOTHING;
    -- all slots, in order: waits for the writers of the others to finish
    SELECT sum(c.n) INTO total FROM (
        SELECT u.n FROM lifecycle.usage_counts u
         WHERE u.resource_type = res AND u.account_id = acct
         ORDER BY u.slot FOR UPDATE) c;
    IF (floor_zero AND total + delta < 0) OR (lim IS NOT NULL AND delta > 0 AND total + delta > lim) THEN
        RETURN total;
    END IF;
    room := CASE WHEN lim IS NULL THEN NULL ELSE greatest(lim - total - delta, 0) END;
    UPDATE lifecycle.usage_counts u
       SET n = u.n + CASE WHEN u.slot = own THEN delta ELSE 0 END,
           cap = u.n + CASE WHEN u.slot = own THEN delta ELSE 0 END
                 + room / nslots + CASE WHEN u.slot = own THEN room % nslots ELSE 0 END
     WHERE u.resource_type = res AND u.account_id = acct;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION lifecycle.usage_rebalance(text, uuid, smallint, bigint, bigint, integer, boolean) FROM PUBLIC;

-- Supabase: service_role reads the configuration, counts and the whole
-- ledger; authenticated reads its own ledger rows; anon nothing.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'service_role') THEN
        GRANT SELECT ON lifecycle.usage_resources, lifecycle.usage_counts, lifecycle.usage_events
            TO service_role;
        CREATE POLICY usage_events_service_role ON lifecycle.usage_events
            FOR SELECT TO service_role USING (true);
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'authenticated') THEN
        GRANT SELECT ON lifecycle.usage_events TO authenticated;
        CREATE POLICY usage_events_own ON lifecycle.usage_events
            FOR SELECT TO authenticated
            USING (actor_id OPERATOR(pg_catalog.=) lifecycle.current_actor());
    END IF;
END
$$;
