--
-- current_actor() and current_actor_role(): the request's JWT claims.
--
CREATE EXTENSION pg_lifecycle;

-- No request settings: no actor, and the role is the database user.
SELECT lifecycle.current_actor() IS NULL AS no_actor,
       lifecycle.current_actor_role() = current_user AS role_is_current_user;

-- PostgREST sets request.jwt.claims for every request.
SET request.jwt.claims = '{"sub": "8d4a3b4e-95f7-4c7e-8e8f-2b1c6d0a9e11", "role": "authenticated", "email": "a@example.com"}';
SELECT lifecycle.current_actor(), lifecycle.current_actor_role();

-- request.jwt.claim.sub / .role (older PostgREST) win when non-empty ...
SET request.jwt.claim.sub = '0b7f9e5c-0000-4000-8000-000000000001';
SET request.jwt.claim.role = 'service_role';
SELECT lifecycle.current_actor(), lifecycle.current_actor_role();
-- ... and are ignored when empty.
SET request.jwt.claim.sub = '';
SET request.jwt.claim.role = '';
SELECT lifecycle.current_actor(), lifecycle.current_actor_role();
-- A non-uuid single claim gives NULL, like an absent one, never an error.
SET request.jwt.claim.sub = 'anonymous';
SELECT lifecycle.current_actor() IS NULL AS no_actor;
RESET request.jwt.claim.sub;
RESET request.jwt.claim.role;

-- Every shape of claims: a bad claim must never break a write, so it is NULL.
CREATE FUNCTION regress_actor_for(claims text, OUT actor uuid, OUT role_from_claims boolean)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('request.jwt.claims', claims, true);
    actor := lifecycle.current_actor();
    role_from_claims := lifecycle.current_actor_role() IS DISTINCT FROM current_user::text;
END
$$;
SELECT left(claims, 90) AS claims, (regress_actor_for(claims)).actor,
       (regress_actor_for(claims)).role_from_claims
  FROM (VALUES
    ('{"sub": "8D4A3B4E-95F7-4C7E-8E8F-2B1C6D0A9E11"}'),
    ('{"sub": "{8d4a3b4e-95f7-4c7e-8e8f-2b1c6d0a9e11}"}'),
    ('{"sub": "8d4a3b4e95f74c7e8e8f2b1c6d0a9e11"}'),
    ('{"sub": "\u0038d4a3b4e-95f7-4c7e-8e8f-2b1c6d0a9e11"}'),
    ('{"sub": "ignored-first", "sub": "8d4a3b4e-95f7-4c7e-8e8f-2b1c6d0a9e11"}'),
    ('{"app": {"sub": "x"}, "sub": "8d4a3b4e-95f7-4c7e-8e8f-2b1c6d0a9e11", "role": "anon"}'),
    ('{"sub": "8d4a3b4e-95f7-4c7e-8e8f-2b1c6d0a9e1"}'),
    ('{"sub": "8d4a3b4e-95f7-4c7e-8e8f-2b1c6d0a9e11x"}'),
    ('{"sub": "8d4a3b4e-95f7-4c7e-8e8f-2b1c6d0a9e1g"}'),
    ('{"sub": "-8d4a3b4e-95f7-4c7e-8e8f-2b1c6d0a9e11"}'),
    ('{"sub": "8d4a3b4e--95f7-4c7e-8e8f-2b1c6d0a9e11"}'),
    ('{"sub": " 8d4a3b4e-95f7-4c7e-8e8f-2b1c6d0a9e11"}'),
    ('{"sub": ""}'),
    ('{"sub": null, "role": null}'),
    ('{"sub": 42}'),
    ('{"sub": ["8d4a3b4e-95f7-4c7e-8e8f-2b1c6d0a9e11"]}'),
    ('{"sub": {"id": "8d4a3b4e-95f7-4c7e-8e8f-2b1c6d0a9e11"}}'),
    ('{"user": {"sub": "8d4a3b4e-95f7-4c7e-8e8f-2b1c6d0a9e11"}}'),
    ('["8d4a3b4e-95f7-4c7e-8e8f-2b1c6d0a9e11"]'),
    ('"8d4a3b4e-95f7-4c7e-8e8f-2b1c6d0a9e11"'),
    ('{"sub": "8d4a3b4e-95f7-4c7e-8e8f-2b1c6d0a9e11"'),
    ('not json at all'),
    (repeat('[', 100000)),
    ('{"deep": ' || repeat('[', 50) || repeat(']', 50) || ', "sub": "8d4a3b4e-95f7-4c7e-8e8f-2b1c6d0a9e11"}'),
    ('')
  ) v(claims);

-- For every well-formed uuid claim it agrees with the jsonb reading auth.uid() uses.
SELECT count(*) AS disagreements
  FROM (VALUES ('{"sub": "8d4a3b4e-95f7-4c7e-8e8f-2b1c6d0a9e11"}'),
               ('{"sub": "{8D4A3B4E-95F7-4C7E-8E8F-2B1C6D0A9E11}"}'),
               ('{"x": [1, {"sub": 2}], "sub": "00000000-0000-0000-0000-000000000000"}'),
               ('{"sub": "a0eebc999c0b4ef8bb6d6bb9bd380a11"}'),
               ('{"sub": "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11"}')) v(claims)
 WHERE (regress_actor_for(claims)).actor IS DISTINCT FROM (claims::jsonb ->> 'sub')::uuid;

-- The role falls back to the current user when the claims carry none.
CREATE ROLE regress_actor_user;
GRANT USAGE ON SCHEMA public TO regress_actor_user;
SET request.jwt.claims = '{"sub": "8d4a3b4e-95f7-4c7e-8e8f-2b1c6d0a9e11"}';
SET ROLE regress_actor_user;
SELECT lifecycle.current_actor_role(), lifecycle.current_actor();
RESET ROLE;

-- A claim set with SET LOCAL ends with the transaction.
BEGIN;
SET LOCAL request.jwt.claims = '{"sub": "11111111-1111-1111-1111-111111111111"}';
SELECT lifecycle.current_actor();
COMMIT;
SELECT lifecycle.current_actor();
RESET request.jwt.claims;
SELECT lifecycle.current_actor() IS NULL AS no_actor;

-- Usable in defaults and RLS policies, as auth.uid() is.
CREATE TABLE regress_notes (
    id serial PRIMARY KEY,
    body text,
    created_by uuid DEFAULT lifecycle.current_actor()
);
ALTER TABLE regress_notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY regress_own ON regress_notes
    USING (created_by = lifecycle.current_actor())
    WITH CHECK (created_by = lifecycle.current_actor());
GRANT SELECT, INSERT ON regress_notes TO regress_actor_user;
GRANT USAGE ON SEQUENCE regress_notes_id_seq TO regress_actor_user;
SET ROLE regress_actor_user;
SET request.jwt.claims = '{"sub": "11111111-1111-1111-1111-111111111111"}';
INSERT INTO regress_notes (body) VALUES ('mine');
SET request.jwt.claims = '{"sub": "22222222-2222-2222-2222-222222222222"}';
INSERT INTO regress_notes (body) VALUES ('theirs');
SELECT body, created_by FROM regress_notes;
SET request.jwt.claims = 'garbage';
SELECT count(*) AS visible_without_actor FROM regress_notes;
INSERT INTO regress_notes (body) VALUES ('no actor');
RESET request.jwt.claims;
RESET ROLE;

DROP TABLE regress_notes;
DROP FUNCTION regress_actor_for(text);
REVOKE USAGE ON SCHEMA public FROM regress_actor_user;
DROP ROLE regress_actor_user;
DROP EXTENSION pg_lifecycle;
