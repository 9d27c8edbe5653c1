#!/usr/bin/env bash
# Throwaway PostgreSQL cluster for tests (Unix socket only, no TCP).
#   .ci/postgres.sh start DIR   -> prints the SQLAlchemy URL on stdout
#   .ci/postgres.sh stop DIR
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?cluster directory}
port=${AREYA_PG_PORT:-54329}
bindir=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[ -x "$bindir/initdb" ] || { echo "PostgreSQL server binaries not found (apt-get install -y postgresql)" >&2; exit 1; }

as_pg() {  # initdb/postgres refuse to run as root
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_pg "$bindir/initdb" -D "$dir/data" -U postgres -A trust --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-k $dir -p $port -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
      start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    as_pg "$bindir/createdb" -h "$dir" -p "$port" -U postgres areya_test 2>/dev/null || true
    echo "postgresql+psycopg://postgres@/areya_test?host=$dir&port=$port"
    ;;
  stop)
    [ -f "$dir/data/postmaster.pid" ] && as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
