--
-- Telemetry redaction: key rules on words, the detectors and their
-- validation, what is never redacted, the actions and the key, rules,
-- safe keys and paths, the trigger, and misuse.
--
-- A key set before the library is loaded (as postgresql.conf sets it) is
-- kept when it loads.
SET lifecycle.redaction_key = 'k3:set-before-the-library-loads';
CREATE EXTENSION pg_lifecycle;
SELECT lifecycle.set_redaction_rule('detector', 'email', 'hash');
SELECT lifecycle.redact_jsonb('{"a": "a@b.io"}') ->> 'a' LIKE '[hash:k3:%]' AS kept_at_load;
SELECT lifecycle.drop_redaction_rule('detector', 'email');
RESET lifecycle.redaction_key;
CREATE FUNCTION r(doc jsonb) RETURNS jsonb LANGUAGE sql AS 'SELECT lifecycle.redact_jsonb(doc)';

-- Keys: case, camelCase, kebab-case, snake_case and spaces are words.
SELECT k, r(jsonb_build_object(k, 'v')) ->> k AS redacted
  FROM unnest(ARRAY['password', 'PASSWORD', 'userPassword', 'user-password', 'user_password',
                    'user password', 'passwd', 'pwd', 'client_secret', 'accessToken',
                    'refresh_token', 'apiKey', 'api-key', 'X-API-Key', 'APIKey', 'apikey',
                    'aws_access_key_id', 'privateKey', 'Authorization', 'Cookie', 'Set-Cookie',
                    'sessionId', 'session_id', 'sessionid', 'credentials', 'otp', 'ssn',
                    'cardNumber', 'cvv', 'CVC', 'iban',
                    -- plurals, and words run together
                    'passwords', 'secrets', 'tokens', 'apiKeys', 'accessTokens', 'cookies',
                    'userpassword', 'newpassword', 'accesstoken', 'ACCESSTOKEN', 'clientsecret',
                    'privatekey', 'csrftoken']) k;
-- Whole words only.
SELECT k, r(jsonb_build_object(k, 'v')) ->> k AS kept
  FROM unnest(ARRAY['authenticated', 'author', 'tokenizer', 'passwordless', 'monkey', 'keyboard',
                    'secretary', 'session', 'card', 'passwordhash']) k;
-- A plural takes no numbers or booleans: counts and flags stay.
SELECT r('{"prompt_tokens": 12, "total_tokens": 40, "cookies_enabled": true, "tokens": ["t1"]}');
-- The whole value goes, whatever its type.
SELECT r('{"password": {"a": 1}, "token": [1, 2], "secret": 42, "pwd": null, "otp": true}');

-- Detectors replace only what they match.
SELECT r('{"m": "mail me at a@b.io, please"}') ->> 'm';
SELECT v, r(jsonb_build_object('v', v)) ->> 'v' AS redacted
  FROM unnest(ARRAY[
    'ann.lee+tag@mail.example.co.uk',
    'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0In0.sig-nature_1',
    'Authorization: Bearer abc123.def456',
    'basic dXNlcjpwYXNzd29yZA==',
    'visa 4111 1111 1111 1111 ok', 'mc 5555-5555-5555-4444', 'amex 378282246310005',
    'iban DE89 3704 0044 0532 0130 00', 'GB82WEST12345698765432',
    'from 192.168.1.20 and 2001:db8::8a2e:370:7334 and ::1',
    'call +44 20 7946 0958', 'or +1 (555) 123-4567',
    'ssn 078-05-1120',
    E'k -----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY----- done',
    'postgres://app:s3cret@db.example.com:5432/x',
    'AKIAIOSFODNN7EXAMPLE']) v;
-- Near misses stay.
SELECT v, r(jsonb_build_object('v', v)) ->> 'v' = v AS kept
  FROM unnest(ARRAY[
    'a@b', '@handle', 'x@y.z1', 'user@localhost',
    'eyJub3QganNvbg.eyJ4In0.sig',                 -- header is not JSON
    'bearer authentication', 'basic information', 'Bearer short',
    '4111 1111 1111 1112',                        -- Luhn fails
    '41111111111111111111111',                    -- a longer run
    'id 4111111111111111a', 'x-4111111111111111-y',
    '1111111111111117',                           -- Luhn, but no issuer
    'DE89 3704 0044 0532 0130 01',                -- mod-97 fails
    '256.1.1.1', '1.2.3', '1.2.3.4.5', 'v1.2.3.4', '10:00:00', '1:2:3', 'fe80:::1', 'std::map',
    '00:1a:2b:3c:4d:5e',
    '+12', '12345678901', '+2026-12-01', '2026-12-01T10:00:00+01:00', 'port +8080',
    '000-12-3456', '666-12-3456', '912-12-3456', '123-00-4567', '123-45-0000', '123-45-67890',
    '-----BEGIN CERTIFICATE-----', 'postgres://app@db', 'https://host.example/a:b@c',
    'AKIAIOSFODNN7EXAMPL', 'XKIAIOSFODNN7EXAMPLE']) v;
-- Card "numbers" that are JSON numbers, and numbers that are not cards.
SELECT r('{"a": 4111111111111111, "b": 4111111111111112, "c": 1764583200000, "d": 1764583200, "e": 12.5, "f": 378282246310005}');

-- Never redacted by default: the false-positive corpus.
CREATE TABLE fp (v jsonb);
INSERT INTO fp VALUES
  ('"123e4567-e89b-12d3-a456-426614174000"'), ('"00000000-0000-4000-8000-000000000001"'),
  ('"41111111-1111-4111-8111-111111111111"'), ('"2026-12-01T10:00:00Z"'), ('"2026-12-01T10:00:00.123+05:30"'),
  ('"2026-12-01 10:00:00+00"'), ('1764583200'), ('1764583200000'), ('"1764583200000"'),
  ('"1.2.3"'), ('"v10.20.30-rc.1+build.5"'), ('"2.0.0"'),
  ('"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"'),
  ('"d41d8cd98f00b204e9800998ecf8427e"'), ('"da39a3ee5e6b4b0d3255bfef95601890afd80709"'),
  ('"ORD-2026-000123"'), ('"INV-0001234567"'), ('"order 100000000000001"'), ('"#4411"'),
  ('true'), ('false'), ('null'), ('0'), ('-12'), ('3.14159'), ('1e10'), ('"12:30:45"'),
  ('"Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0.6099.109"'), ('"en-US"'), ('"+00:00"'),
  ('{"tokens": 10, "prompt_tokens": 5, "author": "x", "authenticated": true, "keyboard": "us"}');
SELECT count(*) AS redacted FROM fp WHERE r(v) IS DISTINCT FROM v;

-- JSON held in strings is parsed, scrubbed and written back as JSON text.
SELECT r('{"payload": "{\"password\": \"x\", \"n\": 1, \"inner\": \"{\\\"email\\\": \\\"a@b.io\\\"}\"}"}');
SELECT r('{"payload": "{\"fine\": 1}"}') ->> 'payload';   -- untouched: byte for byte
SELECT r('{"payload": "{not json"}') ->> 'payload';
-- Scalars and arrays as documents.
SELECT r('"a@b.io"'), r('[1, "x", "a@b.io"]'), r('null');

-- The report: path, rule, action; never the value.
SELECT * FROM lifecycle.redaction_report(
  '{"user": {"email": "ann@example.com", "userPassword": "hunter2"}, "a b": ["x@y.org"],
    "payload": "{\"secret\": 1}", "n": 4111111111111111}');

-- Actions.
SELECT lifecycle.set_redaction_rule('key', 'api_key', 'partial');
SELECT lifecycle.set_redaction_rule('detector', 'card', 'partial');
SELECT lifecycle.set_redaction_rule('key', 'cookie', 'remove');
SELECT lifecycle.set_redaction_rule('detector', 'ipv4', 'remove');
SELECT r('{"apiKey": "sk_live_abcdef1234", "api_key": "short", "c": "card 4111 1111 1111 1111", "cookie": "x", "ip": "from 10.1.2.3 on"}');
SELECT kind, pattern, action, enabled, is_default FROM lifecycle.redaction_rules_in_effect
 WHERE NOT is_default ORDER BY 1, 2;
-- Hash without a key: masked, with a warning (once per transaction).
SELECT lifecycle.set_redaction_rule('detector', 'email', 'hash');
SELECT r('{"a": "a@b.io", "b": "c@d.io"}');
-- With a key: HMAC-SHA-256 pseudonyms tagged with the key id; equal inputs, equal pseudonyms.
SET lifecycle.redaction_key = 'k1:0123456789abcdef0123456789abcdef';
SHOW lifecycle.redaction_key;
SELECT r('{"a": "a@b.io", "b": "a@b.io", "c": "c@d.io"}');
CREATE EXTENSION pgcrypto;
SELECT (r('{"a": "a@b.io"}') ->> 'a') =
       '[hash:k1:' || left(encode(hmac('a@b.io', '0123456789abcdef0123456789abcdef', 'sha256'), 'hex'), 32) || ']' AS is_hmac;
DROP EXTENSION pgcrypto;
SET lifecycle.redaction_key = 'k2:another-secret-of-enough-length';
SELECT r('{"a": "a@b.io"}') ->> 'a' LIKE '[hash:k2:%]' AS rotated;
SET lifecycle.redaction_key = 'k1:short';
SELECT r('{"a": "a@b.io"}');
SHOW lifecycle.redaction_key;
RESET lifecycle.redaction_key;
-- A server-wide key comes from a file (a value in postgresql.conf would be
-- logged by the server when it reloads).  The file wins over the setting.
DO $$
BEGIN
    EXECUTE format('COPY (SELECT %L) TO %L', 'k7:from-a-file-0123456789abcdef',
                   current_setting('data_directory') || '/regress_lifecycle_redaction.key');
END
$$;
SET lifecycle.redaction_key = 'k1:0123456789abcdef0123456789abcdef';
SELECT set_config('lifecycle.redaction_key_file',
                  current_setting('data_directory') || '/regress_lifecycle_redaction.key', false) <> '' AS key_file_set;
-- COPY writes files others may read: refused, masked with a warning.
SELECT r('{"a": "a@b.io"}') ->> 'a' LIKE '[hash:k7:%]' AS from_file;
DO $$
BEGIN
    EXECUTE format('COPY (SELECT %L) TO PROGRAM %L', 'k7:from-a-file-0123456789abcdef',
                   'umask 077 && cat > ' || current_setting('data_directory') || '/regress_lifecycle_redaction_0600.key');
END
$$;
SELECT set_config('lifecycle.redaction_key_file',
                  current_setting('data_directory') || '/regress_lifecycle_redaction_0600.key', false) <> '' AS key_file_set;
SELECT r('{"a": "a@b.io"}') ->> 'a' LIKE '[hash:k7:%]' AS from_file;
SHOW lifecycle.redaction_key;
SET lifecycle.redaction_key_file = 'regress_no_such.key';
SELECT r('{"a": "a@b.io"}');
RESET lifecycle.redaction_key_file;
RESET lifecycle.redaction_key;
SELECT lifecycle.drop_redaction_rule('detector', 'email');

-- Safe keys always win over key rules (detectors still look inside).
SELECT r('{"token_count": 5, "tokenCount": 6, "cancellation_token": "abc"}');
SELECT lifecycle.add_safe_key('token_count');
SELECT lifecycle.add_safe_key('cancellationToken');
SELECT lifecycle.add_safe_key('token_count');      -- idempotent
SELECT r('{"token_count": 5, "tokenCount": 6, "cancellation_token": "abc", "cancellationToken": "mail a@b.io", "cancellation_token_x": "y"}');
SELECT key_words, example FROM lifecycle.redaction_safe_keys ORDER BY 1;
SELECT lifecycle.drop_safe_key('tokenCount');
SELECT lifecycle.drop_safe_key('nope');

-- Path rules: exact keys, * any key, [*] any element, [n].
SELECT lifecycle.set_redaction_rule('path', '$.user.phone', 'mask');
SELECT lifecycle.set_redaction_rule('path', '$.events[*].ip', 'remove');
SELECT lifecycle.set_redaction_rule('path', '$.*."display name"', 'partial');
SELECT r('{"user": {"phone": "555 0100", "name": "x"}, "events": [{"ip": "x", "k": 1}, {"ip": "y"}],
           "a": {"display name": "Annabelle Lee"}, "phone": "kept"}');

-- Disabling a default, and dropping the override brings it back.
SELECT lifecycle.disable_redaction_rule('key', 'token');
SELECT r('{"token": "abc"}');
SELECT lifecycle.drop_redaction_rule('key', 'token');
SELECT r('{"token": "abc"}');
SELECT lifecycle.drop_redaction_rule('key', 'token');   -- notice

-- Bad input: a clear error, nothing changes.
SELECT count(*) AS own_rules FROM lifecycle.redaction_rules WHERE NOT builtin;
SELECT lifecycle.set_redaction_rule('regex', 'x');
SELECT lifecycle.set_redaction_rule('detector', 'creditcard');
SELECT lifecycle.set_redaction_rule('key', '---');
SELECT lifecycle.set_redaction_rule('key', 'x', 'scramble');
SELECT lifecycle.set_redaction_rule('path', 'user.email');
SELECT lifecycle.set_redaction_rule('path', '$.a[x]');
SELECT lifecycle.set_redaction_rule('path', '$');
SELECT lifecycle.set_redaction_rule(NULL, 'x');
SELECT lifecycle.disable_redaction_rule('key', 'nosuchrule');
SELECT count(*) AS own_rules FROM lifecycle.redaction_rules WHERE NOT builtin;
SELECT lifecycle.redact_jsonb(NULL) IS NULL AS strict;

-- Changes to the rule tables, through the functions or by the owner's own
-- statements, reach every session's cached rules (the rules trigger).
SELECT lifecycle.set_redaction_rule('key', 'nickname', 'mask');
SELECT r('{"nickname": "zed"}');
UPDATE lifecycle.redaction_rules SET action = 'remove' WHERE pattern = 'nickname' AND NOT builtin;
SELECT r('{"nickname": "zed"}');

-- The trigger.
CREATE TABLE telemetry_events (id int PRIMARY KEY, metadata jsonb, raw json, msg text, n int);
SELECT lifecycle.enable_redaction('telemetry_events', '{metadata, raw, msg}');
SELECT lifecycle.enable_redaction('telemetry_events', '{metadata, raw, msg}');   -- idempotent
SELECT relid, columns FROM lifecycle.redaction_tables;
INSERT INTO telemetry_events VALUES
  (1, '{"password": "p", "ok": 1}', '{"b": 2, "a": "a@b.io"}', 'contact a@b.io', 1),
  (2, '{"ok": 1}', '{"b": 2,  "a": 1}', '{"secret": "s"}', 2),
  (3, NULL, NULL, NULL, 3);
SELECT id, metadata, raw, msg FROM telemetry_events ORDER BY id;
UPDATE telemetry_events SET metadata = '{"token": "t"}' WHERE id = 3;
SELECT metadata FROM telemetry_events WHERE id = 3;
-- Errors: missing column, wrong type, a view, not the owner, NULL.
SELECT lifecycle.enable_redaction('telemetry_events', '{nope}');
SELECT lifecycle.enable_redaction('telemetry_events', '{n}');
SELECT lifecycle.enable_redaction('telemetry_events', '{metadata, NULL}');
CREATE VIEW telemetry_view AS SELECT * FROM telemetry_events;
SELECT lifecycle.enable_redaction('telemetry_view', '{metadata}');
SELECT lifecycle.enable_redaction(NULL);
CREATE TABLE no_json (id int);
SELECT lifecycle.enable_redaction('no_json');
SELECT lifecycle.disable_redaction('telemetry_events');
SELECT lifecycle.disable_redaction('telemetry_events');   -- notice
SELECT count(*) FROM lifecycle.redaction_tables;
-- By hand, the seeds' way: no arguments scrub every jsonb and json column.
CREATE TRIGGER auto_redact_telemetry_before_insert BEFORE INSERT ON telemetry_events
    FOR EACH ROW EXECUTE FUNCTION lifecycle.auto_redact_telemetry();
INSERT INTO telemetry_events VALUES (4, '{"pwd": 1}', '{"email": "x@y.io"}', 'a@b.io', 4);
SELECT metadata, raw, msg FROM telemetry_events WHERE id = 4;
DROP TRIGGER auto_redact_telemetry_before_insert ON telemetry_events;
-- Misuse: where it cannot do its job it refuses.
CREATE TRIGGER bad AFTER INSERT ON telemetry_events FOR EACH ROW EXECUTE FUNCTION lifecycle.redact_trigger();
INSERT INTO telemetry_events VALUES (5, '{}', NULL, NULL, 5);
DROP TRIGGER bad ON telemetry_events;
CREATE TRIGGER bad BEFORE INSERT ON telemetry_events FOR EACH STATEMENT EXECUTE FUNCTION lifecycle.redact_trigger();
INSERT INTO telemetry_events VALUES (5, '{}', NULL, NULL, 5);
DROP TRIGGER bad ON telemetry_events;
CREATE TRIGGER bad BEFORE INSERT ON telemetry_events FOR EACH ROW EXECUTE FUNCTION lifecycle.redact_trigger('n');
INSERT INTO telemetry_events VALUES (5, '{}', NULL, NULL, 5);
DROP TRIGGER bad ON telemetry_events;
SELECT lifecycle.redact_trigger();
CREATE TRIGGER bad AFTER INSERT ON telemetry_events FOR EACH STATEMENT EXECUTE FUNCTION lifecycle.redaction_rules_changed();
INSERT INTO telemetry_events VALUES (5, '{}', NULL, NULL, 5);
DROP TRIGGER bad ON telemetry_events;
-- Dropping the table forgets it.
SELECT lifecycle.enable_redaction('telemetry_events', '{metadata}');
DROP VIEW telemetry_view;
DROP TABLE telemetry_events;
SELECT count(*) FROM lifecycle.redaction_tables;

-- Large and deep documents: processed, or a clear error; never a crash.
SELECT length(r(jsonb_build_object('big', repeat('a@b.io ', 700000)))::text) AS many_mb;
SELECT length(r((SELECT jsonb_agg(jsonb_build_object('password', i, 'k', i)) FROM generate_series(1, 100000) i))::text) > 0 AS many_members;
SELECT r((repeat('{"a":', 5000) || '"x@y.io"' || repeat('}', 5000))::jsonb) IS NOT NULL AS deep;
SELECT r(jsonb_build_object('s', repeat('{"a":', 200000) || '1' || repeat('}', 200000)));

-- Fuzz: 100,000 generated documents (random nesting, keys that match and
-- keys that nearly match, every detector's shapes and near misses glued
-- together, escapes and unicode, JSON inside strings), default rules.
-- Properties: redaction is idempotent; nothing a rule or detector matches
-- survives (the report of the output is empty); a document is changed
-- exactly when the report names something in it.
DELETE FROM lifecycle.redaction_rules WHERE NOT builtin;
DELETE FROM lifecycle.redaction_safe_keys;
SELECT setseed(0.4242);
CREATE FUNCTION fz_pick(a text[]) RETURNS text LANGUAGE sql AS
  'SELECT a[1 + floor(random() * array_length(a, 1))::int]';
CREATE FUNCTION fz_string() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    s text := '';
BEGIN
    FOR i IN 1 .. floor(random() * 4)::int LOOP
        s := s || fz_pick(ARRAY[' ', '', '-', '.', ':', '@', '/', ',', '=', '"', E'\n'])
               || fz_pick(ARRAY['a@b.io', 'x.y+z@mail.example.org', 'not@mail', '4111 1111 1111 1111',
                                '4111111111111112', '378282246310005', '5555-5555-5555-4444',
                                '123e4567-e89b-12d3-a456-426614174000', '10.0.0.1', '256.1.1.1',
                                '1.2.3.4.5', 'fe80::1', '2001:db8::8a2e:370:7334', '12:30:45', '1.2.3',
                                '+44 20 7946 0958', '+2026-12-01', '+12', '078-05-1120', '666-12-3456',
                                'DE89370400440532013000', 'DE89 3704 0044 0532 0130 01',
                                'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig', 'eyJub3Q.eyJ4In0.x',
                                'Bearer abc123def456', 'bearer token', 'Basic dXNlcjpwYXNz',
                                'postgres://u:p@h.example/db', 'https://h.example/a:b@c',
                                'AKIAIOSFODNN7EXAMPLE', E'-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----',
                                '-----BEGIN PRIVATE KEY-----', '2026-12-01T10:00:00Z', '1764583200000',
                                'e3b0c44298fc1c149afbf4c8996fb924', 'ORD-2026-000123', 'é', '😀', 'Ω≈ç',
                                E'\\', '\u00e9', '{', '[', '[redacted:x]', '[hash:k1:00]', '[email]',
                                md5(random()::text), floor(random() * 1e16)::text, repeat('9', 20)]);
    END LOOP;
    RETURN s;
END
$$;
CREATE FUNCTION fz_value(depth int) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    c float := random();
    o jsonb := '{}';
    a jsonb := '[]';
BEGIN
    IF depth > 3 OR c < 0.45 THEN
        RETURN to_jsonb(fz_string());
    ELSIF c < 0.55 THEN
        RETURN to_jsonb(fz_pick(ARRAY['4111111111111111', '1764583200000', '42', '-1.5', '1e3',
                                      '378282246310005', '12345678901234567890'])::numeric);
    ELSIF c < 0.6 THEN
        RETURN fz_pick(ARRAY['true', 'false', 'null'])::jsonb;
    ELSIF c < 0.65 THEN
        RETURN to_jsonb(fz_value(depth + 1)::text);   -- JSON inside a string
    ELSIF c < 0.68 THEN
        -- text that looks like JSON around anything (raw newlines, quotes, escapes):
        -- JSON or not, perhaps only once a match inside is replaced
        RETURN to_jsonb('{"' || fz_pick(ARRAY['password', 'note', 'k']) || '": "' || fz_string() || '"}');
    ELSIF c < 0.8 THEN
        FOR i IN 1 .. floor(random() * 4)::int LOOP
            a := a || jsonb_build_array(fz_value(depth + 1));
        END LOOP;
        RETURN a;
    END IF;
    FOR i IN 1 .. 1 + floor(random() * 4)::int LOOP
        o := o || jsonb_build_object(
            fz_pick(ARRAY['password', 'userPassword', 'USER_PASSWORD', 'token_count', 'author',
                          'authenticated', 'email', 'id', 'data', 'ip', 'x-api-key', 'nested', 'Ω', '',
                          'a b', 'sessionId', 'items', 'tokenizer', 'secretary', 'card', 'cardNumber',
                          'meta', 'payload', 'k' || floor(random() * 100)::int]),
            fz_value(depth + 1));
    END LOOP;
    RETURN o;
END
$$;
CREATE TEMP TABLE fz AS SELECT i, fz_value(0) AS doc FROM generate_series(1, 100000) i;
CREATE TEMP TABLE fz_out AS
SELECT i, doc, r(doc) AS out, EXISTS (SELECT 1 FROM lifecycle.redaction_report(doc)) AS reported FROM fz;
SELECT count(*) AS documents,
       count(*) FILTER (WHERE out IS DISTINCT FROM doc) > 10000 AS many_redacted,
       count(*) FILTER (WHERE out IS NOT DISTINCT FROM doc) > 10000 AS many_untouched,
       count(*) FILTER (WHERE r(out) IS DISTINCT FROM out) AS not_idempotent,
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM lifecycle.redaction_report(out))) AS something_survived,
       count(*) FILTER (WHERE (out IS DISTINCT FROM doc) <> reported) AS changed_without_reason
  FROM fz_out;
DROP FUNCTION fz_value(int), fz_string(), fz_pick(text[]);

-- Found by an independent review (each was a bug):
-- the same column named twice
CREATE TABLE dup (p jsonb);
SELECT lifecycle.enable_redaction('dup', '{p,p}');
CREATE TRIGGER t BEFORE INSERT ON dup FOR EACH ROW EXECUTE FUNCTION lifecycle.redact_trigger('p', 'p');
INSERT INTO dup VALUES ('{}');
DROP TABLE dup;
-- numbers whose text is huge are not turned into text
SELECT r(('[' || repeat('1e131071,', 2000) || '1]')::jsonb) IS NOT NULL AS huge_numbers;
-- JSON in a string that jsonb cannot hold goes whole, it cannot be scrubbed
SELECT r('{"a": "[1e1000000]", "b": "{\"password\": \"hunter2\", \"z\": \"\\u0000\"}"}');
-- JSON after a tab; text that is JSON once a match is replaced
SELECT r(jsonb_build_object('a', E'\t{"password": "x"}'));
SELECT r(jsonb_build_object('s', E'{"password":"hunter2","k":"-----BEGIN PRIVATE KEY-----\nMII\n-----END PRIVATE KEY-----"}')) AS once,
       r(r(jsonb_build_object('s', E'{"password":"hunter2","k":"-----BEGIN PRIVATE KEY-----\nMII\n-----END PRIVATE KEY-----"}')))
       = r(jsonb_build_object('s', E'{"password":"hunter2","k":"-----BEGIN PRIVATE KEY-----\nMII\n-----END PRIVATE KEY-----"}')) AS idempotent;
-- look-alikes of markers are values like any other
SELECT r('{"password": "[redacted: hunter2]", "token": "[hash:my token]", "secret": "[redacted:secret]"}');
-- cards followed by more digits, two cards one space apart
SELECT v, r(jsonb_build_object('v', v)) ->> 'v' AS redacted
  FROM unnest(ARRAY['card 4111111111111111 12/27', '4111 1111 1111 1111 123',
                    'cards 4111111111111111 5555555555554444',
                    'josé@example.com', 'ann@пример.рф', 'a@b.xn--p1ai',
                    'postgres://user:p@ss@db.example.com/x']) v;
SELECT v, r(jsonb_build_object('v', v)) ->> 'v' = v AS kept
  FROM unnest(ARRAY['a[::2]', 'A::B', '1.2.3.4-beta', '+12345678 bytes', '+20240115']) v;
-- remove on a scalar document leaves null; removing [n] is refused
SELECT lifecycle.set_redaction_rule('detector', 'card', 'remove');
SELECT r('4111111111111111') AS removed_scalar, r('[4111111111111111, 1]') AS removed_element;
SELECT lifecycle.drop_redaction_rule('detector', 'card');
SELECT lifecycle.set_redaction_rule('path', '$.items[0]', 'remove');
-- partial keeps nothing of an object
SELECT lifecycle.set_redaction_rule('key', 'token', 'partial');
SELECT r('{"token": {"value": "abcdefgh"}, "accessToken": "abcdefgh1234"}');
SELECT lifecycle.drop_redaction_rule('key', 'token');
-- json columns: a scalar string is scrubbed; \u0000 cannot be, it goes whole
CREATE TABLE jcol (j json, t text);
SELECT lifecycle.enable_redaction('jcol', '{j, t}');
INSERT INTO jcol VALUES ('"mail a@b.io"', 'plain a@b.io'), ('{"password": "x", "z": "\u0000"}', '{"z": "\u0000", "password": "x"}');
SELECT j, t FROM jcol;
DROP TABLE jcol;

-- Attacks.  A role with only TEMP, and a role owning only its own schema,
-- cannot change rules, safe keys or registrations; attaching the trigger
-- functions to their own tables scrubs only their own rows, and the rules
-- trigger refuses any table but the rule tables.
CREATE ROLE regress_rd_temper;
CREATE ROLE regress_rd_schemer;
CREATE SCHEMA regress_rd AUTHORIZATION regress_rd_schemer;
SET ROLE regress_rd_temper;
SELECT lifecycle.set_redaction_rule('key', 'password', 'mask', false);
SELECT lifecycle.add_safe_key('password');
SELECT lifecycle.disable_redaction_rule('detector', 'email');
UPDATE lifecycle.redaction_rules SET enabled = false;
DELETE FROM lifecycle.redaction_safe_keys;
CREATE TEMP TABLE mine (doc jsonb);
CREATE TRIGGER t BEFORE INSERT ON mine FOR EACH ROW EXECUTE FUNCTION lifecycle.redact_trigger('doc');
INSERT INTO mine VALUES ('{"password": "x", "m": "a@b.io"}');
SELECT doc FROM mine;
CREATE TRIGGER u AFTER INSERT ON mine FOR EACH STATEMENT EXECUTE FUNCTION lifecycle.redaction_rules_changed();
INSERT INTO mine VALUES ('{}');
SELECT lifecycle.enable_redaction('lifecycle.redaction_rules');
RESET ROLE;
SET ROLE regress_rd_schemer;
CREATE TABLE regress_rd.events (doc jsonb);
SELECT lifecycle.enable_redaction('regress_rd.events', '{doc}');
INSERT INTO regress_rd.events VALUES ('{"apiKey": "k", "ip": "10.0.0.1"}');
SELECT doc FROM regress_rd.events;
SELECT lifecycle.set_redaction_rule('key', 'ip', 'remove');
-- The schemer's redaction_rules look-alike in its own schema changes nothing.
CREATE TABLE regress_rd.redaction_rules (kind text, pattern text, action text, enabled boolean, builtin boolean);
INSERT INTO regress_rd.redaction_rules VALUES ('key', 'password', 'mask', false, false);
SET search_path = regress_rd, public;
SELECT lifecycle.redact_jsonb('{"password": "x"}');
RESET search_path;
SELECT lifecycle.disable_redaction('regress_rd.events');
RESET ROLE;
-- Not the owner: enable/disable refuse; the owner's grant opens the rules.
GRANT USAGE ON SCHEMA regress_rd TO regress_rd_temper;
SET ROLE regress_rd_temper;
SELECT lifecycle.enable_redaction('regress_rd.events', '{doc}');
SELECT lifecycle.disable_redaction('regress_rd.events');
RESET ROLE;
GRANT INSERT, UPDATE, DELETE ON lifecycle.redaction_rules, lifecycle.redaction_safe_keys TO regress_rd_temper;
SET ROLE regress_rd_temper;
SELECT lifecycle.set_redaction_rule('key', 'nickname', 'mask');
SELECT lifecycle.redact_jsonb('{"nickname": "zed", "nick_name": "kept: other words"}');
RESET ROLE;
REVOKE ALL ON lifecycle.redaction_rules, lifecycle.redaction_safe_keys FROM regress_rd_temper;
SELECT lifecycle.drop_redaction_rule('key', 'nickname');
DROP TABLE pg_temp.mine;
SET client_min_messages = warning;
DROP SCHEMA regress_rd CASCADE;
RESET client_min_messages;
DROP ROLE regress_rd_temper, regress_rd_schemer;

DROP FUNCTION r(jsonb);
DROP TABLE fp, no_json;
DROP EXTENSION pg_lifecycle;
