#!/usr/bin/env bash
# Every feature on plain tables, in one session of a server that preloads
# Citus.  PostgreSQL gives a backend ten relcache invalidation callbacks
# for all its extensions together; Citus takes several, and pg_lifecycle
# used to take six (an INSERT into an audited table then failed with "out
# of relcache_callback_list slots").  It now takes one.
#
# Citus 13.2.2 for PostgreSQL 15 comes from ../shared/postgres (unpacked at
# / as root when missing); elsewhere, or on another PostgreSQL, the test
# says it is skipped.  Starts a throwaway cluster of its own.  Prints
# "ok - ..." / "not ok - ..." lines.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
[ -n "${LC_PGBIN:-}" ] || LC_PGBIN=/usr/lib/postgresql/15/bin
tarball=$LC_ROOT/../shared/postgres/citus-13.2.2-pg15-debian12-x86_64.tar.xz

skip() { echo "ok - citus preloaded: skipped ($1) # SKIP"; exit 0; }
case $LC_PGBIN in /usr/lib/postgresql/15/bin) ;; *) skip "the Citus build is for PostgreSQL 15" ;; esac
if [ ! -f /usr/lib/postgresql/15/lib/citus.so ]; then
    [ -f "$tarball" ] || skip "no Citus build at $tarball"
    [ "$(id -u)" -eq 0 ] || skip "Citus is not installed, and installing it needs root"
    tar -xJf "$tarball" -C / || { echo "not ok - unpack Citus"; exit 1; }
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/pg_lifecycle-citus.XXXXXX")
chmod 755 "$dir"
trap 'lc_stop "$dir/cluster"; rm -rf "$dir"' EXIT
(lc_start "$dir/cluster" "$(lc_free_port 59432)" "shared_preload_libraries = 'citus'" >/dev/null) ||
    { echo "not ok - start a cluster that preloads Citus"; exit 1; }
export PGHOST=$dir/cluster PGPORT=$(lc_running_port "$dir/cluster") PGUSER=postgres
echo "ok - cluster preloading Citus started"

out=$("$LC_PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d postgres 2>&1 <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION citus;
CREATE EXTENSION pg_lifecycle;
CREATE TABLE accounts (id uuid PRIMARY KEY, name text, n int NOT NULL DEFAULT 0, max_n int,
                       updated_at timestamptz);
CREATE TABLE projects (id int PRIMARY KEY, account_id uuid REFERENCES accounts, name text,
                       updated_at timestamptz);
SELECT lifecycle.enable_updated_at('accounts');
SELECT lifecycle.enable_updated_at('projects');
SELECT lifecycle.enable_soft_delete('accounts');
SELECT lifecycle.enable_soft_delete('projects');
SELECT lifecycle.enable_audit('projects');
SELECT lifecycle.track_usage('projects', 'accounts', 'n', 'projects', 'account_id', 'max_n');
SELECT lifecycle.set_tenant_table('accounts');
INSERT INTO accounts (id, name, max_n) VALUES ('a0000000-0000-4000-8000-000000000001', 'acme', 5);
INSERT INTO projects VALUES (1, 'a0000000-0000-4000-8000-000000000001', 'one'),
                            (2, 'a0000000-0000-4000-8000-000000000001', 'two');
UPDATE projects SET name = 'uno' WHERE id = 1;
SELECT lifecycle.soft_delete_account('a0000000-0000-4000-8000-000000000001');
SELECT lifecycle.restore_account('a0000000-0000-4000-8000-000000000001');
SELECT string_agg(op::text, ',' ORDER BY id) FROM lifecycle.audit_log;
SELECT n FROM accounts;
SELECT count(*) FROM lifecycle.record_history('projects', '1');
SQL
)
rc=$?
if [ $rc -eq 0 ]; then
    echo "ok - every feature works in one session with Citus preloaded"
else
    echo "not ok - every feature works in one session with Citus preloaded:"
    printf '%s\n' "$out" | sed 's/^/#   /'
fi
last=$(printf '%s\n' "$out" | tail -3 | tr '\n' '|')
if [ "$last" = "INSERT,INSERT,UPDATE,SOFT_DELETE,SOFT_DELETE,RESTORE,RESTORE|2|4|" ]; then
    echo "ok - their results are right under Citus too"
else
    echo "not ok - their results are right under Citus too: got [$last]"
fi
