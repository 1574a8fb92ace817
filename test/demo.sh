#!/usr/bin/env bash
# The README's first command (make demo): build and install pg_lifecycle,
# start a throwaway cluster of its own, load the Supabase-style fixture and
# an example SaaS schema, switch the features on, show them working, and
# print how to connect.  Re-running rebuilds the demo database; `make
# demo-stop` (this script with "stop") stops the cluster and removes it.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/lib/cluster.sh

dir=$(lc_cluster_dir demo)
db=lifecycle_demo

if [ "${1:-}" = stop ]; then
    lc_stop "$dir"
    echo "demo cluster in $dir stopped and removed"
    exit 0
fi

lc_need_packages
lc_build_install
port=$(lc_running_port "$dir" || lc_free_port 55432)
lc_log "starting the demo cluster in $dir (port $port)"
# pg_cron preloaded, scheduling in the demo database (section 14)
lc_start "$dir" "$port" "shared_preload_libraries = 'pg_cron'" "cron.database_name = '$db'" \
    "cron.use_background_workers = on" "max_worker_processes = 16"
if [ "$(lc_psql -At -d postgres -c "SHOW shared_preload_libraries")" != pg_cron ]; then
    lc_log "restarting the demo cluster to preload pg_cron"
    lc_as_server_at_root "$LC_PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 restart >/dev/null ||
        lc_die "restart of the demo cluster failed"
fi

lc_log "creating database $db: Supabase-style roles and auth schema, pg_lifecycle, the example schema"
PGOPTIONS="-c client_min_messages=warning" lc_psql -d postgres \
    -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
lc_psql -d "$db" -f test/fixtures/supabase.sql
lc_psql -d "$db" -c "CREATE EXTENSION pg_lifecycle"
lc_psql -d "$db" -f test/fixtures/saas_schema.sql

"$LC_PGBIN/psql" -X -v ON_ERROR_STOP=1 -d "$db" -f test/demo.sql

cat <<EOF

pg_lifecycle demo is running.
  cluster directory: $dir
  port:              $port
  connect:           psql "host=127.0.0.1 port=$port dbname=$db user=postgres"
                     (or: psql -h $dir -p $port -U postgres $db)
  act as an API user inside psql:
      SET ROLE authenticated;
      SET request.jwt.claims = '{"sub": "a11ce000-0000-4000-8000-000000000001", "role": "authenticated"}';
  stop and remove:   make demo-stop
EOF
