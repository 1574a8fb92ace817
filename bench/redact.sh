# shellcheck shell=bash
# Benchmark of telemetry redaction, sourced by bench/run.sh, which then
# calls bench_redact.
#
# RD_DOCS nested telemetry documents of about 1 KB (an event, a user with an
# e-mail address, request headers with a Bearer token and a cookie, device
# and network data, metrics, tags, a free-text message; every fifth pays by
# card, every seventh carries a stringified JSON context with a password),
# and two workloads:
#   docs    one SELECT over all documents, timed inside the server:
#             baseline   doc::text::jsonb, the jsonb text round trip
#             lifecycle  lifecycle.redact_jsonb(doc)
#             plpgsql    a recursive PL/pgSQL redactor with regular
#                        expressions: key rules and two detectors (e-mail,
#                        card), as teams write it today
#             scan       reference: the same SELECT returning doc itself
#   insert  a RD_INSERT_ROWS-row INSERT ... SELECT of the documents:
#             baseline   into a table without a trigger
#             lifecycle  into a table with lifecycle.enable_redaction()
#             baseline_idx, lifecycle_idx  the same into tables shaped like
#                        a real telemetry table: bigint identity primary key
#                        and a created_at column with a btree index

RD_VARIANTS=(baseline lifecycle plpgsql scan)
RD_INSERT_VARIANTS=(baseline lifecycle baseline_idx lifecycle_idx)
RD_DOCS=${BENCH_RD_DOCS:-20000}
RD_INSERT_ROWS=${BENCH_RD_INSERT_ROWS:-100000}
RD_ROUNDS=${BENCH_RD_ROUNDS:-4}     # a multiple of the 4 variants
RD_INSERT_ROUNDS=${BENCH_RD_INSERT_ROUNDS:-6}

rd_setup() {
    lc_log "redact: $RD_DOCS documents, $RD_INSERT_ROWS rows to insert"
    bench_psql -v docs="$RD_DOCS" -v rows="$RD_INSERT_ROWS" <<'SQL' || lc_die "redact: setup failed"
CREATE EXTENSION IF NOT EXISTS pg_lifecycle;
CREATE FUNCTION rd_doc(i int) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
SELECT jsonb_build_object(
    'event', (ARRAY['page_view', 'click', 'api_call', 'error'])[1 + i % 4],
    'ts', '2026-12-01T10:00:00Z',
    'user', jsonb_build_object('id', md5(i::text)::uuid, 'email', 'user' || i || '@example.com',
                               'name', 'User ' || i, 'plan', 'pro', 'authenticated', true),
    'request', jsonb_build_object(
        'method', 'GET', 'path', '/api/v1/projects/' || i || '/items',
        'headers', jsonb_build_object('authorization', 'Bearer ' || md5('t' || i),
                                      'cookie', 'sid=' || md5('c' || i), 'accept', 'application/json',
                                      'x-request-id', md5('r' || i)::uuid,
                                      'user-agent', 'Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0.6099.109'),
        'query', jsonb_build_object('page', i % 10, 'per_page', 50)),
    'device', jsonb_build_object('os', 'Linux', 'ip', '10.' || i % 250 || '.' || i % 200 || '.7',
                                 'locale', 'en-US', 'app_version', '3.14.' || i % 100),
    'metrics', jsonb_build_object('duration_ms', i % 977, 'token_count', i % 4000, 'bytes', i * 17,
                                  'cache_hit', i % 3 = 0),
    'tags', jsonb_build_array('web', 'eu-west-1', 'build-' || i % 50),
    'message', 'Request ' || i || ' finished for tenant ' || md5('m' || i) || ' after retries; see trace '
               || md5('s' || i) || ' for details',
    'payment', CASE WHEN i % 5 = 0 THEN jsonb_build_object('note', 'paid with 4111 1111 1111 1111',
                                                           'amount', 1999, 'currency', 'EUR') END,
    'context', CASE WHEN i % 7 = 0 THEN jsonb_build_object('db', jsonb_build_object('password', 'p' || i,
                                                           'host', 'db.internal'))::text END)
$$;
CREATE TABLE rd_docs AS SELECT i AS id, rd_doc(i) AS doc FROM generate_series(1, :docs) i;
CREATE TABLE rd_src AS SELECT i AS id, rd_doc(i) AS doc FROM generate_series(1, :rows) i;
CREATE TABLE rd_ins_baseline (id int, doc jsonb);
CREATE TABLE rd_ins_lifecycle (id int, doc jsonb);
SELECT lifecycle.enable_redaction('rd_ins_lifecycle', '{doc}') \g /dev/null
CREATE TABLE rd_ins_baseline_idx (pk bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id int,
                                  doc jsonb, created_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX ON rd_ins_baseline_idx (created_at);
CREATE TABLE rd_ins_lifecycle_idx (LIKE rd_ins_baseline_idx INCLUDING ALL);
SELECT lifecycle.enable_redaction('rd_ins_lifecycle_idx', '{doc}') \g /dev/null
-- The hand-written redactor: key rules by one regular expression on the
-- key, two detectors (e-mail, card) by regexp_replace on every string.
CREATE FUNCTION rd_plpgsql(doc jsonb) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    k text;
    v jsonb;
    o jsonb := '{}';
BEGIN
    CASE jsonb_typeof(doc)
    WHEN 'object' THEN
        FOR k, v IN SELECT * FROM jsonb_each(doc) LOOP
            IF k ~* '(^|[^a-z])(password|passwd|pwd|secret|token|api[_-]?key|authorization|cookie|set-cookie|session[_-]?id|credentials|otp|ssn|cvv|cvc|iban)([^a-z]|$)' THEN
                o := o || jsonb_build_object(k, '[redacted]');
            ELSE
                o := o || jsonb_build_object(k, rd_plpgsql(v));
            END IF;
        END LOOP;
        RETURN o;
    WHEN 'array' THEN
        RETURN (SELECT coalesce(jsonb_agg(rd_plpgsql(e)), '[]') FROM jsonb_array_elements(doc) e);
    WHEN 'string' THEN
        RETURN to_jsonb(regexp_replace(regexp_replace(doc #>> '{}',
                   '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}', '[email]', 'g'),
                   '\m(\d[ -]?){12,18}\d\M', '[card]', 'g'));
    ELSE
        RETURN doc;
    END CASE;
END
$$;
VACUUM ANALYZE rd_docs, rd_src;
SQL
    local avg
    avg=$(bench_sql_value "SELECT round(avg(length(doc::text))) FROM rd_docs")
    lc_log "redact: documents average $avg bytes of JSON text"
    RD_AVG_BYTES=$avg
}

rd_expr() {
    case $1 in
        baseline) echo 'doc::text::jsonb' ;;
        lifecycle) echo 'lifecycle.redact_jsonb(doc)' ;;
        plpgsql) echo 'rd_plpgsql(doc)' ;;
        scan) echo 'doc' ;;
    esac
}

# One statement per run over all documents; OFFSET 0 keeps the expression
# from being optimized away, count(*) of non-NULL results needs each one.
rd_docs_script() {
    local round v
    for ((round = 0; round <= RD_ROUNDS; round++)); do
        printf '\\warn redact docs: round %d of %d%s\n' "$round" "$RD_ROUNDS" \
            "$([ "$round" -eq 0 ] && echo ' (warm-up, not counted)')"
        while read -r v; do
            # shellcheck disable=SC2016 # $bench$ is SQL dollar quoting
            printf 'DO $bench$\nDECLARE t0 timestamptz := clock_timestamp(); n bigint;\nBEGIN\n'
            printf '    SELECT count(*) INTO n FROM (SELECT %s AS r FROM rd_docs OFFSET 0) s WHERE r IS NOT NULL;\n' "$(rd_expr "$v")"
            if [ "$round" -gt 0 ]; then
                printf "    INSERT INTO bench_results VALUES ('redact', 'docs', '%s', %d, 'ms',\n" "$v" "$round"
                printf '        1000 * extract(epoch FROM clock_timestamp() - t0));\n'
            fi
            # shellcheck disable=SC2016
            printf 'END\n$bench$;\n'
        done < <(bench_rotate "$((round + 1))" "${RD_VARIANTS[@]}")
    done
}

rd_insert_script() {
    local round v
    for ((round = 0; round <= RD_INSERT_ROUNDS; round++)); do
        printf '\\warn redact insert: round %d of %d%s\n' "$round" "$RD_INSERT_ROUNDS" \
            "$([ "$round" -eq 0 ] && echo ' (warm-up, not counted)')"
        while read -r v; do
            printf 'TRUNCATE rd_ins_%s;\nCHECKPOINT;\n' "$v"
            # shellcheck disable=SC2016
            printf 'DO $bench$\nDECLARE t0 timestamptz := clock_timestamp();\nBEGIN\n'
            printf '    INSERT INTO rd_ins_%s (id, doc) SELECT id, doc FROM rd_src;\n' "$v"
            if [ "$round" -gt 0 ]; then
                printf "    INSERT INTO bench_results VALUES ('redact', 'insert', '%s', %d, 'ms',\n" "$v" "$round"
                printf '        1000 * extract(epoch FROM clock_timestamp() - t0));\n'
            fi
            # shellcheck disable=SC2016
            printf 'END\n$bench$;\n'
        done < <(bench_rotate "$((round + 1))" "${RD_INSERT_VARIANTS[@]}")
    done
}

# The redactors must have redacted: no e-mail or Bearer token left in what
# the trigger stored, and the same count of documents changed by both.
rd_sanity_check() {
    local left changed_c changed_p
    left=$(bench_sql_value "SELECT count(*) FROM rd_ins_lifecycle WHERE doc::text ~ '@example\.com|Bearer [0-9a-f]'")
    [ "$left" = 0 ] || lc_die "redact: $left stored documents still hold an e-mail or a token"
    changed_c=$(bench_sql_value "SELECT count(*) FROM rd_docs WHERE lifecycle.redact_jsonb(doc) <> doc")
    changed_p=$(bench_sql_value "SELECT count(*) FROM rd_docs WHERE rd_plpgsql(doc) <> doc")
    [ "$changed_c" = "$RD_DOCS" ] && [ "$changed_p" = "$RD_DOCS" ] ||
        lc_die "redact: documents changed: lifecycle $changed_c, plpgsql $changed_p of $RD_DOCS"
}

bench_redact() {
    local script=$BENCH_WORK/redact_docs.sql
    rd_setup
    rd_docs_script >"$script"
    lc_log "redact docs: $RD_ROUNDS rounds + warm-up"
    bench_psql -f "$script" || lc_die "redact: docs run failed"
    script=$BENCH_WORK/redact_insert.sql
    rd_insert_script >"$script"
    lc_log "redact insert: $RD_INSERT_ROUNDS rounds + warm-up"
    bench_psql -f "$script" || lc_die "redact: insert run failed"
    rd_sanity_check

    printf '\n### redact: redact_jsonb vs the text round trip and PL/pgSQL; the trigger on INSERT\n'
    BENCH_MD+=$'\n'"### redact"$'\n'
    bench_report redact docs "$RD_DOCS telemetry documents (~$RD_AVG_BYTES bytes each), one SELECT" \
        baseline "${RD_VARIANTS[@]}"
    # Targets (issue 12): at least 20x faster than PL/pgSQL; at most 3x the
    # cost of the text round trip (throughput at least 1/3 of it).
    bench_check "lifecycle speedup vs plpgsql (docs)" "$(bench_ratio redact docs lifecycle plpgsql)" '>=' 20
    bench_check "lifecycle throughput vs text round trip (docs)" "$(bench_ratio redact docs lifecycle baseline)" '>=' 0.333
    bench_report redact insert "$RD_INSERT_ROWS-row INSERT ... SELECT of the documents" \
        baseline "${RD_INSERT_VARIANTS[@]}"
    bench_check "lifecycle throughput vs baseline (insert with redact_trigger)" \
        "$(bench_ratio redact insert lifecycle baseline)" '>=' 0.70
    bench_note "reference (insert into a table with a primary key and an index): lifecycle_idx vs baseline_idx $(bench_ratio redact insert lifecycle_idx baseline_idx)x"
    bench_note "the trigger adds the redaction of each document (the docs workload: $(bench_ratio redact docs lifecycle baseline)x the throughput of the text round trip) to an INSERT that costs less than that round trip itself"
}
