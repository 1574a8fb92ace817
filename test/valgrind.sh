#!/bin/bash
# The pg_regress suite with the server under valgrind (memcheck), once, on
# a throwaway cluster of its own: bash test/valgrind.sh [15|18] [tests...]
#
# Every backend runs under memcheck (no leak check: PostgreSQL frees by
# memory context).  Errors whose stack passes through pg_lifecycle.so fail
# the run; others (PostgreSQL's own, known to memcheck without its client
# requests, in test/valgrind.supp) are counted.  Slow: about half an hour.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/lib/cluster.sh

version=${1:-15}
shift || true
lc_use_pg "$version"
lc_need_packages valgrind
lc_build_install

dir=$(lc_cluster_dir "valgrind$version")
lc_stop "$dir" || true
mkdir -p "$dir/bin"
cat >"$dir/bin/postgres" <<EOF
#!/bin/sh
exec valgrind --quiet --error-exitcode=0 --leak-check=no --num-callers=30 \\
    --suppressions=$LC_ROOT/test/valgrind.supp --log-file=$dir/vg.%p.log \\
    "$LC_PGBIN/postgres" "\$@"
EOF
chmod 755 "$dir/bin/postgres"
[ "$(id -u)" -eq 0 ] && chown -R "$(lc_server_user)" "$dir"

port=$(lc_free_port 57432)
lc_as_server_at_root "$LC_PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 \
    --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || lc_die "initdb failed"
printf "port = %s\nlisten_addresses = ''\nunix_socket_directories = '%s'\nfsync = off\nmax_connections = 20\n" \
    "$port" "$dir" | lc_as_server_at_root tee -a "$dir/data/postgresql.conf" >/dev/null
lc_log "starting PostgreSQL $version under valgrind (slow)"
lc_as_server_at_root "$LC_PGBIN/pg_ctl" -D "$dir/data" -p "$dir/bin/postgres" -l "$dir/server.log" \
    -w -t 600 start >/dev/null || { tail -20 "$dir/server.log" >&2; lc_die "server did not start"; }

tree=$dir/tree
mkdir -p "$tree"
tar --exclude=.git --exclude=.cluster -cf - . | tar -xf - -C "$tree"
[ "$(id -u)" -eq 0 ] && chown -R "$(lc_server_user)" "$tree"
tests=("$@")
if [ ${#tests[@]} -eq 0 ]; then
    read -r -a tests <<<"$(make -s -f - print-regress <<'MK'
include Makefile
print-regress: ; @echo $(REGRESS)
MK
)"
fi
pgxs=$("$LC_PG_CONFIG" --pkglibdir)/pgxs
status=0
(cd "$tree" && lc_as_server "$pgxs/src/test/regress/pg_regress" --bindir="$LC_PGBIN" \
    --host="$dir" --port="$port" --inputdir=. --outputdir=. --dbname=contrib_regression \
    "${tests[@]}") || status=$?
lc_as_server_at_root "$LC_PGBIN/pg_ctl" -D "$dir/data" -m fast -w -t 600 stop >/dev/null || true

# --quiet: a log holds only errors, so a non-empty log is a process with errors
ours=$( (grep -l "pg_lifecycle.so" "$dir"/vg.*.log 2>/dev/null || true) | wc -l)
theirs=$(find "$dir" -maxdepth 1 -name 'vg.*.log' -size +0 | wc -l)
echo "valgrind: $(find "$dir" -maxdepth 1 -name 'vg.*.log' | wc -l) processes; $ours with errors in pg_lifecycle.so; $theirs with any error"
if [ "$ours" -gt 0 ]; then
    (grep -l "pg_lifecycle.so" "$dir"/vg.*.log || true) | head -3 | xargs -r cat
    status=1
fi
[ "$status" -eq 0 ] && echo "ok - the suite under valgrind" || echo "not ok - the suite under valgrind (logs in $dir)"
exit "$status"
