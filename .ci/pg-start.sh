#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on 127.0.0.1 and print its SQLAlchemy URL (stdout, one
# line; everything else goes to stderr). Installs Debian's `postgresql` if initdb is missing.
# The cluster lives in a fresh temp dir owned by `postgres` (initdb refuses to run as root).
# Usage: URL=$(.ci/pg-start.sh)   Stop: pg_ctl -D "$dir" stop (the dir is printed on stderr).
set -euo pipefail
log() { echo "pg-start: $*" >&2; }

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [[ -z "$bindir" || ! -x "$bindir/initdb" ]]; then
    log "installing postgresql"
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >&2
    bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi

port=${PGPORT_CI:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
dir=$(mktemp -d /tmp/curation-pg.XXXXXX)
if [[ $(id -u) -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$dir"
    as_pg() { runuser -u postgres -- "$@"; }
else
    as_pg() { "$@"; }
fi

as_pg "$bindir/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 >/dev/null
as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
    -o "-h 127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off \
        -c full_page_writes=off -c max_connections=200" start >&2
as_pg "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres curation
log "cluster in $dir/data (stop: runuser -u postgres -- $bindir/pg_ctl -D $dir/data stop)"
echo "postgresql+psycopg://postgres@127.0.0.1:$port/curation"
