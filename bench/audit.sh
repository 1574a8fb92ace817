# shellcheck shell=bash
# Benchmark of audit capture (lifecycle.enable_audit), sourced by
# bench/run.sh, which then calls bench_audit.
#
# Five identical tables (id bigint PRIMARY KEY, name, email, status text,
# meta jsonb, created_at timestamptz), one per way of logging changes:
#   baseline    no audit
#   lifecycle   lifecycle.enable_audit(): statement-level AFTER triggers with
#               transition tables writing lifecycle.audit_log
#   supa_audit  a PL/pgSQL trigger in the style of Supabase's supa_audit:
#               FOR EACH ROW, AFTER INSERT/UPDATE/DELETE, SECURITY DEFINER,
#               one row per change into bench_supa_audit.record_version with
#               to_jsonb(NEW) / to_jsonb(OLD)
#   table_log   Debian's postgresql-15-tablelog (C row trigger table_log()),
#               set up by table_log_init(5, ...): old and new rows, with
#               trigger_id, timestamp and user, into au_table_log_log
#   floor       reference, not a contender: the baseline INSERT plus, in the
#               same transaction, one INSERT ... SELECT of the same rows as
#               to_jsonb() into au_floor_log, a copy of lifecycle.audit_log's
#               shape and indexes: the least any jsonb audit log can cost
#   bare_floor  reference too: the floor into au_bare_floor_log, the same
#               columns without any index (what the issue's "about 3x"
#               assumed): how much of the floor the log's indexes are
# and two workloads:
#   bulk     INSERT INTO t SELECT * FROM au_src (AU_ROWS rows) into the
#            emptied table, timed inside the server
#   pgbench  single-row UPDATE of status by primary key (floor left out:
#            it has no single-row form), transactions per second
#
# The audit logs are append-only in every variant, as lifecycle.audit_log
# refuses TRUNCATE and DELETE: none is emptied between runs, each grows by
# AU_ROWS rows per bulk run (about 1.2M rows by the end) and is VACUUMed
# before each run.

AU_VARIANTS=(baseline lifecycle supa_audit table_log floor bare_floor)
AU_PGB_VARIANTS=(baseline lifecycle supa_audit table_log)
AU_ROWS=${BENCH_ROWS:-200000}
# A multiple of the 6 variants, so each runs equally often in each slot.
AU_ROUNDS=${BENCH_AU_ROUNDS:-5}
AU_PGB_ROUNDS=${BENCH_AU_PGBENCH_ROUNDS:-6}
AU_PGB_SECONDS=${BENCH_PGBENCH_SECONDS:-5}
AU_CLIENTS=${BENCH_CLIENTS:-1}
# Every change is made by this actor, as PostgREST passes it (the request's
# JWT claims), so that lifecycle records an actor as it would in production.
AU_ACTOR=bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb
AU_CLAIMS="{\"sub\":\"$AU_ACTOR\",\"role\":\"authenticated\"}"

# The log table of a variant (none for the baseline).
au_log_table() {
    case $1 in
        lifecycle) echo lifecycle.audit_log ;;
        supa_audit) echo bench_supa_audit.record_version ;;
        table_log) echo au_table_log_log ;;
        floor) echo au_floor_log ;;
        bare_floor) echo au_bare_floor_log ;;
    esac
}

# The supa_audit-style trigger, written from its description: one audit row
# per changed row, the whole row as jsonb, the record id taken from the
# primary-key column named by the trigger's argument; and a statement-level
# row for TRUNCATE.  Its own indexes: record ids, BRIN on the time, table.
au_supa_audit_sql() {
    cat <<'SQL'
CREATE SCHEMA bench_supa_audit;
CREATE TABLE bench_supa_audit.record_version (
    id            bigserial   PRIMARY KEY,
    record_id     text,
    old_record_id text,
    op            text        NOT NULL,
    ts            timestamptz NOT NULL DEFAULT now(),
    table_oid     oid         NOT NULL,
    table_schema  name        NOT NULL,
    table_name    name        NOT NULL,
    record        jsonb,
    old_record    jsonb
);
CREATE INDEX record_version_record_id ON bench_supa_audit.record_version (record_id)
    WHERE record_id IS NOT NULL;
CREATE INDEX record_version_old_record_id ON bench_supa_audit.record_version (old_record_id)
    WHERE old_record_id IS NOT NULL;
CREATE INDEX record_version_ts ON bench_supa_audit.record_version USING brin (ts);
CREATE INDEX record_version_table_oid ON bench_supa_audit.record_version (table_oid);

CREATE FUNCTION bench_supa_audit.row_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $fn$
DECLARE
    new_doc jsonb;
    old_doc jsonb;
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        new_doc := to_jsonb(NEW);
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        old_doc := to_jsonb(OLD);
    END IF;
    INSERT INTO bench_supa_audit.record_version
        (record_id, old_record_id, op, ts, table_oid, table_schema, table_name, record, old_record)
    VALUES (new_doc ->> TG_ARGV[0], old_doc ->> TG_ARGV[0], TG_OP, now(),
            TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME, new_doc, old_doc);
    RETURN NULL;
END
$fn$;

CREATE FUNCTION bench_supa_audit.truncate_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $fn$
BEGIN
    INSERT INTO bench_supa_audit.record_version (op, ts, table_oid, table_schema, table_name)
    VALUES (TG_OP, now(), TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    RETURN NULL;
END
$fn$;

CREATE TRIGGER au_supa_audit_row AFTER INSERT OR UPDATE OR DELETE ON au_supa_audit
    FOR EACH ROW EXECUTE FUNCTION bench_supa_audit.row_change('id');
CREATE TRIGGER au_supa_audit_truncate AFTER TRUNCATE ON au_supa_audit
    FOR EACH STATEMENT EXECUTE FUNCTION bench_supa_audit.truncate_change();
SQL
}

# Checks run after every timed run, outside the timing: each log got
# exactly the rows of that run (ids above the log's highest id before the
# run), by the right table, operation and actor, and nothing else; with
# deep, that every logged row equals the row inserted.  A wrong count stops
# the benchmark: it would be timing a trigger that does not do the work.
au_verify_sql() {
    cat <<'SQL'
CREATE FUNCTION au_log_max(v text) RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE
    m bigint;
BEGIN
    CASE v
        WHEN 'baseline' THEN m := 0;
        WHEN 'lifecycle' THEN SELECT max(id) INTO m FROM lifecycle.audit_log;
        WHEN 'supa_audit' THEN SELECT max(id) INTO m FROM bench_supa_audit.record_version;
        WHEN 'table_log' THEN SELECT max(trigger_id) INTO m FROM au_table_log_log;
        WHEN 'floor' THEN SELECT max(id) INTO m FROM au_floor_log;
        WHEN 'bare_floor' THEN SELECT max(id) INTO m FROM au_bare_floor_log;
    END CASE;
    RETURN coalesce(m, 0);
END
$fn$;

-- au_verify_insert(variant, log max id before the run, actor, deep)
CREATE FUNCTION au_verify_insert(v text, before bigint, actor uuid, deep boolean)
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    rows bigint;
    n bigint;
    good bigint;
    sample text;
BEGIN
    SELECT count(*) INTO rows FROM au_src;
    EXECUTE format('SELECT count(*) FROM %I', 'au_' || v) INTO n;
    IF n <> rows THEN
        RAISE EXCEPTION 'audit bulk: au_% holds % rows, expected %', v, n, rows;
    END IF;
    CASE v
        WHEN 'baseline' THEN
            RETURN;
        WHEN 'lifecycle' THEN
            SELECT count(*),
                   count(*) FILTER (WHERE schema_name = 'public' AND table_name = 'au_lifecycle'
                                      AND upper(op::text) = 'INSERT' AND actor_id = actor
                                      AND old_values IS NULL AND new_values IS NOT NULL)
              INTO n, good FROM lifecycle.audit_log WHERE id > before;
        WHEN 'supa_audit' THEN
            SELECT count(*),
                   count(*) FILTER (WHERE table_name = 'au_supa_audit' AND op = 'INSERT'
                                      AND old_record IS NULL AND record IS NOT NULL)
              INTO n, good FROM bench_supa_audit.record_version WHERE id > before;
        WHEN 'table_log' THEN
            SELECT count(*),
                   count(*) FILTER (WHERE trigger_mode = 'INSERT' AND trigger_tuple = 'new')
              INTO n, good FROM au_table_log_log WHERE trigger_id > before;
        WHEN 'floor' THEN
            SELECT count(*),
                   count(*) FILTER (WHERE table_name = 'au_floor' AND actor_id = actor)
              INTO n, good FROM au_floor_log WHERE id > before;
        WHEN 'bare_floor' THEN
            SELECT count(*),
                   count(*) FILTER (WHERE table_name = 'au_bare_floor' AND actor_id = actor)
              INTO n, good FROM au_bare_floor_log WHERE id > before;
    END CASE;
    IF n <> rows OR good <> rows THEN
        RAISE EXCEPTION 'audit bulk: the % log got % rows (% of them INSERTs of au_% by the actor), expected %',
            v, n, good, v, rows;
    END IF;
    IF NOT deep THEN
        RETURN;
    END IF;
    CASE v
        WHEN 'lifecycle' THEN
            SELECT count(*) FILTER (WHERE a.new_values = to_jsonb(s)),
                   count(*) FILTER (WHERE a.record_id = s.id::text)
              INTO n, good
              FROM lifecycle.audit_log a JOIN au_src s ON s.id = (a.new_values ->> 'id')::bigint
             WHERE a.id > before;
            SELECT format('record_id %L, new_values %s', record_id, new_values) INTO sample
              FROM lifecycle.audit_log WHERE id > before ORDER BY id LIMIT 1;
        WHEN 'supa_audit' THEN
            SELECT count(*) FILTER (WHERE a.record = to_jsonb(s)),
                   count(*) FILTER (WHERE a.record_id = s.id::text)
              INTO n, good
              FROM bench_supa_audit.record_version a JOIN au_src s ON s.id = (a.record ->> 'id')::bigint
             WHERE a.id > before;
        WHEN 'table_log' THEN
            SELECT count(*), count(*)
              INTO n, good
              FROM au_table_log_log a JOIN au_src s ON s.id = a.id
             WHERE a.trigger_id > before
               AND (a.name, a.email, a.status, a.meta, a.created_at)
                   = (s.name, s.email, s.status, s.meta, s.created_at);
        ELSE
            RETURN;
    END CASE;
    IF n <> rows OR good <> rows THEN
        RAISE EXCEPTION 'audit bulk: % of the % log''s rows equal the inserted row, % have its id as record id, expected % (first: %)',
            n, v, good, rows, coalesce(sample, '-');
    END IF;
END
$fn$;

-- au_verify_update(variant, log max id before the run, transactions, actor):
-- one logged change per transaction (table_log: its old and its new row),
-- and lifecycle records only the changed column.
CREATE FUNCTION au_verify_update(v text, before bigint, xacts bigint, actor uuid)
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    n bigint;
    good bigint;
    partial bigint;
    expected bigint := xacts;
    sample text;
BEGIN
    CASE v
        WHEN 'baseline' THEN
            RETURN;
        WHEN 'lifecycle' THEN
            SELECT count(*),
                   count(*) FILTER (WHERE schema_name = 'public' AND table_name = 'au_lifecycle'
                                      AND upper(op::text) = 'UPDATE' AND actor_id = actor
                                      AND changed_columns = '{status}'
                                      AND old_values ->> 'status' IS DISTINCT FROM new_values ->> 'status'),
                   count(*) FILTER (WHERE NOT (old_values ?| '{name,email,meta,created_at}')
                                      AND NOT (new_values ?| '{name,email,meta,created_at}'))
              INTO n, good, partial FROM lifecycle.audit_log WHERE id > before;
            SELECT format('changed_columns %s, old_values %s, new_values %s', changed_columns, old_values, new_values)
              INTO sample FROM lifecycle.audit_log WHERE id > before ORDER BY id LIMIT 1;
            IF partial <> n THEN
                RAISE EXCEPTION 'audit pgbench: % of % lifecycle UPDATE rows hold unchanged columns (first: %)',
                    n - partial, n, sample;
            END IF;
        WHEN 'supa_audit' THEN
            SELECT count(*),
                   count(*) FILTER (WHERE table_name = 'au_supa_audit' AND op = 'UPDATE'
                                      AND record_id = old_record_id
                                      AND record ->> 'status' IS DISTINCT FROM old_record ->> 'status')
              INTO n, good FROM bench_supa_audit.record_version WHERE id > before;
        WHEN 'table_log' THEN
            expected := 2 * xacts;
            SELECT count(*), count(*) FILTER (WHERE trigger_mode = 'UPDATE')
              INTO n, good FROM au_table_log_log WHERE trigger_id > before;
    END CASE;
    IF n <> expected OR good <> expected THEN
        RAISE EXCEPTION 'audit pgbench: the % log got % rows (% of them as expected) for % transactions, expected % (first: %)',
            v, n, good, xacts, expected, coalesce(sample, '-');
    END IF;
END
$fn$;
SQL
}

au_setup() {
    local v
    # table_log is not among the packages every benchmark needs.
    lc_need_packages postgresql-15-tablelog
    bench_psql <<'SQL' || lc_die "audit: cannot create the extensions"
CREATE EXTENSION IF NOT EXISTS pg_lifecycle;
CREATE EXTENSION IF NOT EXISTS table_log;
SQL
    [ "$(bench_sql_value "SELECT to_regprocedure('lifecycle.enable_audit(regclass, text[], text[], text[], boolean)') IS NOT NULL")" = t ] ||
        lc_die "audit: the installed pg_lifecycle has no lifecycle.enable_audit(regclass, text[], text[], text[], boolean)"

    lc_log "audit: a $AU_ROWS-row source table and ${#AU_VARIANTS[@]} empty tables"
    bench_psql -v rows="$AU_ROWS" <<'SQL' || lc_die "audit: cannot create the tables"
CREATE TABLE au_src (
    id         bigint      PRIMARY KEY,
    name       text        NOT NULL,
    email      text        NOT NULL,
    status     text        NOT NULL,
    meta       jsonb       NOT NULL,
    created_at timestamptz NOT NULL
);
INSERT INTO au_src
SELECT i, 'user ' || i, 'user' || i || '@example.com',
       (ARRAY['active', 'invited', 'suspended'])[1 + i % 3],
       jsonb_build_object('plan', (ARRAY['free', 'pro', 'team'])[1 + i % 3], 'seats', 1 + i % 50,
                          'tags', jsonb_build_array('t' || i % 7, 't' || i % 11), 'source', 'import'),
       '2026-01-01'::timestamptz + i * interval '1 minute'
  FROM generate_series(1, :rows) AS i;
SQL
    for v in "${AU_VARIANTS[@]}"; do
        bench_psql -c "CREATE TABLE au_$v (LIKE au_src INCLUDING ALL)" || lc_die "audit: cannot create au_$v"
    done

    au_supa_audit_sql | bench_psql || lc_die "audit: cannot create the supa_audit-style trigger"
    # The floor's log: lifecycle.audit_log's columns, defaults and indexes.
    bench_psql <<'SQL' || lc_die "audit: cannot set up lifecycle, table_log or the floor"
SELECT lifecycle.enable_audit('au_lifecycle') \g /dev/null
SELECT table_log_init(5, 'public', 'au_table_log', 'public', 'au_table_log_log') \g /dev/null
CREATE TABLE au_floor_log (LIKE lifecycle.audit_log INCLUDING ALL);
CREATE TABLE au_bare_floor_log (LIKE lifecycle.audit_log INCLUDING DEFAULTS INCLUDING IDENTITY);
SQL
    au_verify_sql | bench_psql || lc_die "audit: cannot create the verification functions"
    bench_psql -c 'VACUUM ANALYZE' || lc_die "audit: VACUUM ANALYZE failed"
}

# The timed statements of a variant, in a DO block: the floor adds to the
# same INSERT the log rows it writes itself, with the columns lifecycle
# fills (the actor read once, as a statement-level trigger would).
au_bulk_body() {
    printf '    INSERT INTO au_%s SELECT * FROM au_src;\n' "$1"
    case $1 in floor | bare_floor) ;; *) return 0 ;; esac
    cat <<SQL
    actor := lifecycle.current_actor();
    actor_role := lifecycle.current_actor_role();
    INSERT INTO au_$1_log (occurred_at, txid, schema_name, table_name, op, record_id,
                           new_values, actor_id, actor_role, db_user, client_addr,
                           application_name)
    SELECT now(), txid_current(), 'public', 'au_$1', 'INSERT', x.id::text,
           to_jsonb(x), actor, actor_role, current_user, inet_client_addr()::text,
           current_setting('application_name')
      FROM au_src x;
SQL
}

# The bulk INSERTs, in one psql session acting as the actor: round 0 warms
# up (caches, plans, the trigger functions) and is not kept, and its
# checks compare every logged row with the inserted one.  Before each run
# (outside the timing) the variant's table is emptied and it and its log
# VACUUMed, then CHECKPOINT and sync, as bench_reset_table.
au_bulk_script() {
    local round v log
    printf "SET request.jwt.claims = '%s';\n" "$AU_CLAIMS"
    for ((round = 0; round <= AU_ROUNDS; round++)); do
        printf '\\warn audit bulk: round %d of %d%s\n' "$round" "$AU_ROUNDS" \
            "$([ "$round" -eq 0 ] && echo ' (warm-up, not counted)')"
        while read -r v; do
            log=$(au_log_table "$v")
            printf 'TRUNCATE au_%s;\nVACUUM au_%s%s;\nCHECKPOINT;\n\\! sync\n' "$v" "$v" "${log:+, $log}"
            # shellcheck disable=SC2016 # $bench$ is SQL dollar quoting
            printf 'DO $bench$\nDECLARE\n    before bigint := au_log_max(%s);\n' "'$v'"
            printf '    actor uuid;\n    actor_role text;\n    t0 timestamptz := clock_timestamp();\nBEGIN\n'
            au_bulk_body "$v"
            if [ "$round" -gt 0 ]; then
                printf "    INSERT INTO bench_results VALUES ('audit', 'bulk', '%s', %d, 'ms',\n" "$v" "$round"
                printf '        1000 * extract(epoch FROM clock_timestamp() - t0));\n'
            fi
            printf "    PERFORM au_verify_insert('%s', before, '%s', %s);\n" "$v" "$AU_ACTOR" \
                "$([ "$round" -eq 0 ] && echo true || echo false)"
            # shellcheck disable=SC2016
            printf 'END\n$bench$;\n'
        done < <(bench_rotate "$((round + 1))" "${AU_VARIANTS[@]}")
    done
}

au_bulk() {
    local script=$BENCH_WORK/audit_bulk.sql
    au_bulk_script >"$script"
    lc_log "audit bulk: $AU_ROWS-row INSERT ... SELECT, $AU_ROUNDS rounds + warm-up"
    bench_psql -f "$script" || lc_die "audit: bulk run failed"
}

# bench_pgbench, but printing the number of transactions too (the log must
# hold exactly one change per transaction), and connecting as the actor.
au_pgbench_run() {
    local script=$1 out tps xacts
    # shellcheck disable=SC2153 # BENCH_DB is set by bench/lib.sh
    out=$(PGOPTIONS="-c request.jwt.claims=$AU_CLAIMS" "$LC_PGBIN/pgbench" -n -M prepared \
        -c "$AU_CLIENTS" -j "$AU_CLIENTS" -T "$AU_PGB_SECONDS" -f "$script" "$BENCH_DB" 2>&1) ||
        { printf '%s\n' "$out" >&2; lc_die "pgbench failed on $script"; }
    tps=$(printf '%s\n' "$out" | awk '/^tps = / { print $3; exit }')
    xacts=$(printf '%s\n' "$out" | awk -F': *' '/^number of transactions actually processed/ { split($2, a, "/"); print a[1]; exit }')
    if [ -z "$tps" ] || [ -z "$xacts" ]; then
        printf '%s\n' "$out" >&2
        lc_die "no tps or transaction count in pgbench output for $script"
    fi
    printf '%s %s\n' "$tps" "$xacts"
}

au_pgbench() {
    local round v before tps xacts
    for v in "${AU_PGB_VARIANTS[@]}"; do
        printf '\\set id random(1, %d)\nUPDATE au_%s SET status = md5(random()::text) WHERE id = :id;\n' \
            "$AU_ROWS" "$v" >"$BENCH_WORK/audit_$v.pgbench"
    done
    for ((round = 1; round <= AU_PGB_ROUNDS; round++)); do
        lc_log "audit pgbench: round $round of $AU_PGB_ROUNDS (${AU_PGB_SECONDS}s per variant)"
        while read -r v; do
            bench_reset_table "au_$v"
            before=$(bench_sql_value "SELECT au_log_max('$v')") || lc_die "audit: cannot read the $v log"
            read -r tps xacts < <(au_pgbench_run "$BENCH_WORK/audit_$v.pgbench")
            [ -n "$xacts" ] || lc_die "audit pgbench: $v run failed"
            bench_psql -c "SELECT au_verify_update('$v', $before, $xacts, '$AU_ACTOR')" >/dev/null ||
                lc_die "audit pgbench: wrong log after $xacts transactions of $v"
            bench_record audit pgbench "$v" "$round" tps "$tps"
        done < <(bench_rotate "$round" "${AU_PGB_VARIANTS[@]}")
    done
}

# Bytes of log (table, TOAST and indexes) per logged row, at the end.
au_log_sizes() {
    local v log line=
    for v in lifecycle supa_audit table_log floor bare_floor; do
        log=$(au_log_table "$v")
        line+="$v $(bench_sql_value "SELECT round(pg_total_relation_size('$log') / greatest(count(*), 1)) FROM $log") B, "
    done
    printf '%s\n' "${line%, }"
}

bench_audit() {
    au_setup
    au_bulk
    au_pgbench

    printf '\n### audit: enable_audit vs baseline, supa_audit-style PL/pgSQL, table_log\n'
    BENCH_MD+=$'\n'"### audit"$'\n'
    bench_report audit bulk "Bulk INSERT ... SELECT of $AU_ROWS rows, one statement" \
        baseline "${AU_VARIANTS[@]}"
    # The target (restated by issue 10): at most 1.0x the time of the same
    # rows written as jsonb by one hand-written INSERT ... SELECT into a log
    # with the same indexes (the floor); time ratio = baseline-relative
    # throughput of floor over lifecycle.
    bench_check "lifecycle time vs floor (bulk insert)" \
        "$(bench_ratio audit bulk floor lifecycle)" '<=' 1.00
    bench_check "lifecycle speedup vs supa_audit (bulk insert)" \
        "$(bench_ratio audit bulk lifecycle supa_audit)" '>' 1.00
    bench_check "lifecycle speedup vs table_log (bulk insert)" \
        "$(bench_ratio audit bulk lifecycle table_log)" '>' 1.00
    bench_note "reference (bulk insert): lifecycle time vs baseline $(bench_ratio audit bulk baseline lifecycle)x; floor time vs baseline $(bench_ratio audit bulk baseline floor)x (the INSERT plus the same rows as jsonb in a log shaped like lifecycle.audit_log); bare_floor (the same log without indexes) time vs baseline $(bench_ratio audit bulk baseline bare_floor)x"
    bench_report audit pgbench \
        "Single-row UPDATE of status by id, pgbench -M prepared -c $AU_CLIENTS -j $AU_CLIENTS -T $AU_PGB_SECONDS" \
        baseline "${AU_PGB_VARIANTS[@]}"
    bench_check "lifecycle throughput vs baseline (single-row update)" \
        "$(bench_ratio audit pgbench lifecycle baseline)" '>=' 0.60
    bench_note "single-row update: lifecycle vs supa_audit $(bench_ratio audit pgbench lifecycle supa_audit)x, vs table_log $(bench_ratio audit pgbench lifecycle table_log)x"
    bench_note "log size per logged row (table, TOAST, indexes): $(au_log_sizes); logs are never emptied between runs"
}
