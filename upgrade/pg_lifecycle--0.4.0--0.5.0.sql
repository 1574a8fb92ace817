\echo Use "ALTER EXTENSION pg_lifecycle UPDATE TO '0.5.0'" to load this file. \quit

-- pg_lifecycle 0.4.0 -> 0.5.0: telemetry redaction.  Data and configuration
-- are kept; what changes:

-- Audit: keyed pseudonyms of chosen columns, and logged values passed
-- through the redaction rules, as options of enable_audit().
ALTER TABLE lifecycle.audit_tables
    ADD COLUMN hash_attnums int2[] NOT NULL DEFAULT '{}',  -- hash_columns, by number: they follow renames
    ADD COLUMN redact_values boolean NOT NULL DEFAULT false;
CREATE OR REPLACE VIEW lifecycle.audited_tables AS
SELECT relid AS table_name, exclude_columns, redact_columns, enabled_at,
       ARRAY(SELECT a.attname::pg_catalog.text FROM pg_catalog.pg_attribute a
              WHERE a.attrelid OPERATOR(pg_catalog.=) t.relid
                AND a.attnum OPERATOR(pg_catalog.=) ANY (t.hash_attnums)
              ORDER BY a.attnum) AS hash_columns,
       redact_values
  FROM lifecycle.audit_tables t;
DROP FUNCTION lifecycle.enable_audit(regclass, text[], text[]);
CREATE FUNCTION lifecycle.enable_audit(tbl regclass, exclude_columns text[] DEFAULT '{}',
                                       redact_columns text[] DEFAULT '{}',
                                       hash_columns text[] DEFAULT '{}',
                                       redact_values boolean DEFAULT false)
RETURNS void AS 'MODULE_PATHNAME', 'enable_audit' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.enable_audit(regclass, text[], text[], text[], boolean) IS
  'Audit a table you own into lifecycle.audit_log; idempotent, re-running changes the options; hash_columns log keyed pseudonyms, redact_values passes logged values through the redaction rules';

-- The rest is new.

-- Telemetry redaction: secrets and personal data scrubbed from jsonb (and
-- json, and text holding JSON) before it is stored.

-- The rules.  The extension's defaults are rows with builtin = true; a
-- team's own row for the same (kind, pattern) overrides one (its action,
-- or enabled = false).  pg_dump keeps the team's rows; CREATE EXTENSION
-- brings the defaults.  Change only through set_redaction_rule(),
-- disable_redaction_rule() and drop_redaction_rule(), which need INSERT,
-- UPDATE and DELETE on this table: its owner and the roles it grants.
CREATE TABLE lifecycle.redaction_rules (
    kind        text        NOT NULL CHECK (kind IN ('key', 'detector', 'path')),
    pattern     text        NOT NULL,
    action      text        NOT NULL CHECK (action IN ('mask', 'hash', 'remove', 'partial')),
    enabled     boolean     NOT NULL DEFAULT true,
    builtin     boolean     NOT NULL DEFAULT false,
    changed_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (kind, pattern, builtin)
);
REVOKE ALL ON lifecycle.redaction_rules FROM PUBLIC;
GRANT SELECT ON lifecycle.redaction_rules TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('lifecycle.redaction_rules', 'WHERE NOT builtin');

COMMENT ON TABLE lifecycle.redaction_rules IS
  'Redaction rules: the defaults (builtin) and the team''s own, which override a default of the same kind and pattern; change through set_redaction_rule()/disable_redaction_rule()/drop_redaction_rule()';

-- Key patterns are stored as their normalized words.
INSERT INTO lifecycle.redaction_rules (kind, pattern, action, builtin)
SELECT 'key', p, 'mask', true
  FROM pg_catalog.unnest(ARRAY['password', 'passwd', 'pwd', 'secret', 'token', 'api key', 'apikey',
                               'access key', 'private key', 'client secret', 'authorization',
                               'cookie', 'set cookie', 'session id', 'sessionid', 'credentials',
                               'credential', 'otp', 'ssn', 'card number', 'cvv', 'cvc', 'iban']) p;
INSERT INTO lifecycle.redaction_rules (kind, pattern, action, builtin)
SELECT 'detector', d, 'mask', true
  FROM pg_catalog.unnest(ARRAY['private_key', 'jwt', 'url_credentials', 'auth_header', 'email',
                               'aws_access_key', 'iban', 'card', 'ssn', 'phone', 'ipv6', 'ipv4']) d;

-- Keys whose values no key rule takes (detectors still scan them).
CREATE TABLE lifecycle.redaction_safe_keys (
    key_words   text        PRIMARY KEY,
    example     text        NOT NULL,
    added_at    timestamptz NOT NULL DEFAULT pg_catalog.now()
);
REVOKE ALL ON lifecycle.redaction_safe_keys FROM PUBLIC;
GRANT SELECT ON lifecycle.redaction_safe_keys TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('lifecycle.redaction_safe_keys', '');

COMMENT ON TABLE lifecycle.redaction_safe_keys IS
  'Keys no key rule takes (matched on their words); change through add_safe_key()/drop_safe_key()';

CREATE VIEW lifecycle.redaction_rules_in_effect AS
SELECT DISTINCT ON (kind, pattern) kind, pattern, action, enabled, builtin AS is_default
  FROM lifecycle.redaction_rules
 ORDER BY kind, pattern, builtin;
GRANT SELECT ON lifecycle.redaction_rules_in_effect TO PUBLIC;

COMMENT ON VIEW lifecycle.redaction_rules_in_effect IS
  'Each rule as it applies: the team''s own row, else the default';

-- Every session's rules go stale when either table changes.
CREATE FUNCTION lifecycle.redaction_rules_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'lifecycle_redaction_rules_changed'
LANGUAGE C;

CREATE TRIGGER lifecycle_rules_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON lifecycle.redaction_rules
    FOR EACH STATEMENT EXECUTE FUNCTION lifecycle.redaction_rules_changed();
CREATE TRIGGER lifecycle_rules_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON lifecycle.redaction_safe_keys
    FOR EACH STATEMENT EXECUTE FUNCTION lifecycle.redaction_rules_changed();

CREATE FUNCTION lifecycle.set_redaction_rule(
    kind text, pattern text, action text DEFAULT 'mask', enabled boolean DEFAULT true)
RETURNS void
AS 'MODULE_PATHNAME', 'lifecycle_set_redaction_rule'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.set_redaction_rule(text, text, text, boolean) IS
  'Add a redaction rule (kind key, detector or path) or change one, a default included';

CREATE FUNCTION lifecycle.disable_redaction_rule(kind text, pattern text)
RETURNS void
AS 'MODULE_PATHNAME', 'lifecycle_disable_redaction_rule'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.disable_redaction_rule(text, text) IS
  'Disable a redaction rule, a default included';

CREATE FUNCTION lifecycle.drop_redaction_rule(kind text, pattern text)
RETURNS void
AS 'MODULE_PATHNAME', 'lifecycle_drop_redaction_rule'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.drop_redaction_rule(text, text) IS
  'Drop the team''s own redaction rule; a default it overrode applies again';

CREATE FUNCTION lifecycle.add_safe_key(key text)
RETURNS void
AS 'MODULE_PATHNAME', 'lifecycle_add_safe_key'
LANGUAGE C VOLATILE;

CREATE FUNCTION lifecycle.drop_safe_key(key text)
RETURNS void
AS 'MODULE_PATHNAME', 'lifecycle_drop_safe_key'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.add_safe_key(text) IS
  'A key no key rule takes, e.g. token_count (matched on its words: tokenCount too)';
COMMENT ON FUNCTION lifecycle.drop_safe_key(text) IS
  'Key rules take the key again';

-- STABLE: the result depends on the rules and on lifecycle.redaction_key.
CREATE FUNCTION lifecycle.redact_jsonb(doc jsonb)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'lifecycle_redact_jsonb'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION lifecycle.redact_jsonb(jsonb) IS
  'The document with secrets and personal data redacted by the rules in effect; unchanged documents are returned as they are';

CREATE FUNCTION lifecycle.redact_telemetry_metadata(raw_metadata jsonb)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'lifecycle_redact_jsonb'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION lifecycle.redact_telemetry_metadata(jsonb) IS
  'Same as lifecycle.redact_jsonb(), under the name hand-written schemas use';

CREATE FUNCTION lifecycle.redaction_report(doc jsonb)
RETURNS TABLE (path text, rule text, action text)
AS 'MODULE_PATHNAME', 'lifecycle_redaction_report'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION lifecycle.redaction_report(jsonb) IS
  'What redact_jsonb() would redact and why: JSON path, rule and action, never the values';

CREATE FUNCTION lifecycle.redact_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'lifecycle_redact_trigger'
LANGUAGE C;

COMMENT ON FUNCTION lifecycle.redact_trigger() IS
  'BEFORE INSERT OR UPDATE row trigger: scrubs the jsonb, json or text columns named as arguments (none: every jsonb and json column)';

CREATE FUNCTION lifecycle.auto_redact_telemetry()
RETURNS trigger
AS 'MODULE_PATHNAME', 'lifecycle_redact_trigger'
LANGUAGE C;

COMMENT ON FUNCTION lifecycle.auto_redact_telemetry() IS
  'Same as lifecycle.redact_trigger(), under the name hand-written schemas use';

-- Tables set up with enable_redaction().
CREATE TABLE lifecycle.redaction_tables (
    relid       regclass    PRIMARY KEY,
    columns     name[]      NOT NULL,
    enabled_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
REVOKE ALL ON lifecycle.redaction_tables FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('lifecycle.redaction_tables', '');

COMMENT ON TABLE lifecycle.redaction_tables IS
  'Tables scrubbed by lifecycle.enable_redaction(); change only through enable_redaction()/disable_redaction()';

CREATE FUNCTION lifecycle.enable_redaction(tbl regclass, columns name[] DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'lifecycle_enable_redaction'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.enable_redaction(regclass, name[]) IS
  'Install (or change) the lifecycle_redact trigger on a table you own, scrubbing the named columns (default: every jsonb and json column); idempotent';

CREATE FUNCTION lifecycle.disable_redaction(tbl regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'lifecycle_disable_redaction'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION lifecycle.disable_redaction(regclass) IS
  'Remove the lifecycle_redact trigger from a table you own; idempotent';

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'service_role') THEN
        GRANT SELECT ON lifecycle.redaction_tables TO service_role;
    END IF;
END
$$;
