# Starts a throwaway PostgreSQL cluster on a free loopback port and exports PG_URL.
# Source it, then call start_postgres; stop_postgres removes the cluster.
# PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user.

find_pg_bin() {
  if command -v initdb >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
    return
  fi
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$dir" ]; then
    echo "PostgreSQL is not installed; installing it" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    dir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  echo "$dir"
}

as_pg_owner() {
  if [ "$(id -u)" = 0 ]; then
    su postgres -s /bin/sh -c "$*"
  else
    sh -c "$*"
  fi
}

start_postgres() {
  local bin
  bin=$(find_pg_bin)
  PG_DIR=$(mktemp -d /tmp/latchkey-pg.XXXXXX)
  PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$PG_DIR"
  fi
  as_pg_owner "'$bin/initdb' -D '$PG_DIR/data' -U latchkey --auth=trust --no-sync -E UTF8 >'$PG_DIR/initdb.log'"
  as_pg_owner "'$bin/pg_ctl' -D '$PG_DIR/data' -l '$PG_DIR/server.log' -w \
    -o \"-p $PG_PORT -k '$PG_DIR' -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300\" start >/dev/null"
  PG_BIN=$bin
  export PG_URL="postgres://latchkey@127.0.0.1:$PG_PORT/postgres"
  export PG_DIR PG_PORT PG_BIN
  echo "PostgreSQL is running at $PG_URL"
}

stop_postgres() {
  if [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR" ]; then
    as_pg_owner "'$PG_BIN/pg_ctl' -D '$PG_DIR/data' -m immediate stop >/dev/null" || true
    rm -rf "$PG_DIR"
  fi
}
