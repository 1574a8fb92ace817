#!/usr/bin/env bash
# Statements pg_lifecycle runs as a table's owner (counter mirrors,
# soft-delete cascades) fire that owner's triggers with the owner's own
# search_path, whatever search_path the writer brought: SET, connection
# options (PGOPTIONS) or ALTER ROLE on itself.  A function the writer
# plants must never run with the owner's rights.  Needs PGHOST/PGPORT/PGUSER
# of a running cluster with pg_lifecycle installed and trust authentication
# (as .ci/run provides).  Prints "ok - ..." / "not ok - ..." lines.
set -uo pipefail
PGBIN=${LC_PGBIN:-/usr/lib/postgresql/15/bin}
db=regress_owner_path
export PGOPTIONS="-c client_min_messages=warning"

q() { "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }
check() {  # check NAME EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: expected [$2], got [$3]"; fi
}

"$PGBIN/psql" -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d $db >/dev/null <<'SQL' || { echo "not ok - set up"; exit 1; }
DROP ROLE IF EXISTS regress_path_owner;
DROP ROLE IF EXISTS regress_path_writer;
CREATE ROLE regress_path_owner LOGIN;
CREATE ROLE regress_path_writer LOGIN;
CREATE EXTENSION pg_lifecycle;
GRANT CREATE ON SCHEMA public TO regress_path_owner;
SET ROLE regress_path_owner;
CREATE TABLE public.accounts (id uuid PRIMARY KEY, name text, n integer NOT NULL DEFAULT 0,
                              deleted_at timestamptz, deleted_by uuid);
CREATE TABLE public.projects (id int PRIMARY KEY, account_id uuid REFERENCES public.accounts, name text);
CREATE FUNCTION public.tidy() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.name := lower(NEW.name);   -- unqualified, as triggers often are
    RETURN NEW;
END $$;
CREATE TRIGGER tidy BEFORE UPDATE ON public.accounts FOR EACH ROW EXECUTE FUNCTION public.tidy();
CREATE TRIGGER tidy BEFORE UPDATE ON public.projects FOR EACH ROW EXECUTE FUNCTION public.tidy();
SELECT lifecycle.track_usage('projects', 'public.accounts', 'n', 'public.projects', 'account_id');
SELECT lifecycle.enable_soft_delete('public.accounts');
SELECT lifecycle.enable_soft_delete('public.projects');
INSERT INTO public.accounts (id, name) VALUES ('acc00000-0000-4000-8000-000000000001', 'Acme'),
                                              ('acc00000-0000-4000-8000-000000000002', 'Globex');
GRANT SELECT, INSERT, UPDATE ON public.projects TO regress_path_writer;
GRANT SELECT, UPDATE ON public.accounts TO regress_path_writer;
RESET ROLE;
CREATE SCHEMA planted AUTHORIZATION regress_path_writer;
SET ROLE regress_path_writer;
-- harmless for the writer itself; an error if it ever runs as anyone else
CREATE FUNCTION planted.lower(text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    IF current_user <> 'regress_path_writer' THEN
        RAISE EXCEPTION 'planted function ran as %', current_user;
    END IF;
    RETURN pg_catalog.lower($1);
END $$;
SQL
echo "ok - set up: owner's triggers call lower() unqualified; the writer planted planted.lower()"

n=0
for how in "SET" "PGOPTIONS" "ALTER ROLE"; do
    n=$((n + 1))
    case $how in
        SET) opts="-c client_min_messages=warning"; pre="SET search_path = planted, pg_catalog, public;" ;;
        PGOPTIONS) opts="-c client_min_messages=warning -c search_path=planted,pg_catalog,public"; pre="" ;;
        "ALTER ROLE")
            q -c "ALTER ROLE regress_path_writer SET search_path = planted, pg_catalog, public" >/dev/null
            opts="-c client_min_messages=warning"; pre="" ;;
    esac
    out=$(PGOPTIONS="$opts" "$PGBIN/psql" -X -q -At -U regress_path_writer -d $db -c "$pre
        SELECT replace(current_setting('search_path'), ' ', '');
        INSERT INTO public.projects VALUES ($n, 'acc00000-0000-4000-8000-000000000001', 'P$n');" 2>&1)
    check "counter mirror with the writer's search_path from $how: planted function not called" \
        "planted,pg_catalog,public" "$out"
done
check "the count followed the inserts" "3|3" \
    "$(q -c "SELECT n FROM public.accounts WHERE name = 'acme'")|$(q -c "SELECT count(*) FROM public.projects")"
out=$(PGOPTIONS="-c client_min_messages=warning" "$PGBIN/psql" -X -q -At -U regress_path_writer -d $db \
    -c "SELECT lifecycle.soft_delete_cascade('public.accounts', 'acc00000-0000-4000-8000-000000000001')" 2>&1)
# the root row is updated as the writer (its own function may run), the
# cascade as the owner (the planted one must not)
check "soft-delete cascade with the writer's search_path from ALTER ROLE: planted function not called" \
    '{"public.accounts": 1, "public.projects": 3}' "$out"

q -c "ALTER ROLE regress_path_writer RESET search_path" >/dev/null
"$PGBIN/psql" -X -q -d postgres -c "DROP DATABASE $db" -c "DROP ROLE regress_path_writer" -c "DROP ROLE regress_path_owner" >/dev/null
