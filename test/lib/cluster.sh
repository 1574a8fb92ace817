# shellcheck shell=bash
# Throwaway PostgreSQL clusters for the demo, the tests and the benchmark:
# PostgreSQL 15 from Debian by default, 18 with lc_use_pg 18.  Source it;
# it works as root (the server runs as the OS user postgres, since initdb
# and postgres refuse root) and as an ordinary user (the server runs as
# that user).

LC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# A script run by one that chose a version with lc_use_pg (.ci/run's
# integration scripts) keeps that choice.
LC_PGBIN=${LC_PGBIN:-/usr/lib/postgresql/15/bin}
LC_PG_CONFIG=$LC_PGBIN/pg_config
LC_PG_VERSION=${LC_PG_VERSION:-15}
LC_PACKAGES="postgresql-15 postgresql-server-dev-15 postgresql-15-cron postgresql-contrib make gcc"
# PostgreSQL 18 is not in Debian 12: a relocatable build beside the checkout.
LC_PG18_SH=${LC_PG18_SH:-$LC_ROOT/../shared/postgres/pg18.sh}

# lc_use_pg 15|18: the server the next commands build for, start and use.
# Fails (status 1, with the reason on stderr) when 18 is not available.
lc_use_pg() {
    case $1 in
        15)
            LC_PGBIN=/usr/lib/postgresql/15/bin ;;
        18)
            if [ ! -x "$LC_PG18_SH" ]; then
                echo "no PostgreSQL 18 build: $LC_PG18_SH is missing (it comes with the workplace's shared folder, not with the repository)" >&2
                return 1
            fi
            LC_PGBIN=$(dirname "$("$LC_PG18_SH")") || return 1 ;;
        *) lc_die "unknown PostgreSQL version $1" ;;
    esac
    LC_PG_CONFIG=$LC_PGBIN/pg_config
    LC_PG_VERSION=$1
    export LC_PGBIN LC_PG_VERSION
}

lc_log() { printf '==> %s\n' "$*" >&2; }
lc_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Install the Debian packages we need when some are missing (root only).
lc_need_packages() {
    local missing=() p
    for p in $LC_PACKAGES "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || lc_die "missing packages: ${missing[*]} (run as root, or apt-get install them)"
    lc_log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || lc_die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
        lc_die "apt-get install ${missing[*]} failed"
}

# Build with -Wall -Werror (set in the Makefile) and install into the
# PostgreSQL of lc_use_pg, from the checkout or from a copy of it ($1).
lc_build_install() {
    local tree=${1:-$LC_ROOT}
    lc_log "building and installing pg_lifecycle for PostgreSQL $LC_PG_VERSION"
    make -s -C "$tree" PG_CONFIG="$LC_PG_CONFIG" clean >/dev/null 2>&1
    make -s -C "$tree" PG_CONFIG="$LC_PG_CONFIG" >/dev/null || lc_die "build failed"
    if [ "$(id -u)" -eq 0 ] || [ -w "$("$LC_PG_CONFIG" --pkglibdir)" ]; then
        make -s -C "$tree" PG_CONFIG="$LC_PG_CONFIG" install >/dev/null || lc_die "make install failed"
    else
        lc_die "make install needs root: run this command as root"
    fi
}

# The OS user that runs the server, and how to run a command as that user.
lc_server_user() { if [ "$(id -u)" -eq 0 ]; then echo postgres; else id -un; fi; }
lc_as_server() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
# The same from /, for commands that do not care about the working directory
# (the server user may not be able to enter the checkout).
lc_as_server_at_root() { (cd / && lc_as_server "$@"); }

# A directory for cluster NAME: inside the checkout when the server user can
# write there, else under the temp directory (same path on every run, so the
# demo can be stopped and re-run).
lc_cluster_dir() {
    local name=$1 dir base
    base="$LC_ROOT/.cluster"
    if mkdir -p "$base" 2>/dev/null; then
        [ "$(id -u)" -eq 0 ] && chown "$(lc_server_user)" "$base"
        if lc_as_server_at_root test -w "$base" 2>/dev/null && [ ${#base} -lt 60 ]; then
            echo "$base/$name"
            return
        fi
    fi
    dir="${TMPDIR:-/tmp}/pg_lifecycle-$(printf '%s' "$LC_ROOT" | cksum | cut -d' ' -f1)"
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown "$(lc_server_user)" "$dir"
    echo "$dir/$name"
}

# First free TCP port on 127.0.0.1 from $1 on.
lc_free_port() {
    local port=${1:-55432}
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
    echo "$port"
}

# lc_start DIR PORT [postgresql.conf lines...]: initdb when new, then start.
# Exports PGHOST, PGPORT and PGUSER for psql and friends.
lc_start() {
    local dir=$1 port=$2 line
    shift 2
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown "$(lc_server_user)" "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        lc_as_server_at_root "$LC_PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust \
            -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
            { cat "$dir/initdb.log" >&2; lc_die "initdb failed in $dir"; }
    fi
    {
        echo "# written by test/lib/cluster.sh"
        echo "port = $port"
        echo "listen_addresses = '127.0.0.1'"
        echo "unix_socket_directories = '$dir'"
        echo "fsync = off"
        echo "max_connections = 40"
        for line in "$@"; do echo "$line"; done
    } | lc_as_server_at_root tee "$dir/data/postgresql.auto.conf" >/dev/null
    if ! lc_as_server_at_root "$LC_PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 status >/dev/null 2>&1; then
        lc_as_server_at_root "$LC_PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
            { tail -20 "$dir/server.log" >&2; lc_die "server in $dir did not start"; }
    fi
    export PGHOST=$dir PGPORT=$port PGUSER=postgres
}

# The port a running cluster in DIR listens on, if any.
lc_running_port() {
    local dir=$1
    lc_as_server_at_root "$LC_PGBIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1 || return 1
    sed -n "s/^port = //p" "$dir/data/postgresql.auto.conf"
}

lc_stop() {
    local dir=$1
    [ -d "$dir/data" ] && lc_as_server_at_root "$LC_PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1
    rm -rf "$dir"
}

lc_psql() { "$LC_PGBIN/psql" -X -v ON_ERROR_STOP=1 -q "$@"; }
