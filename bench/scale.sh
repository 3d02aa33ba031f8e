#!/usr/bin/env bash
# Cost vs size: what a request costs when the database holds 10k, 100k or 1M users and sessions.
#
#   bench/scale.sh                                                 # SQLite (fresh files in a temp dir)
#   DATABASE_URL=postgres://user@127.0.0.1:5432/db bench/scale.sh  # and PostgreSQL too
#
# For each size N, on a fresh database: `latchkey migrate` builds the schema and `latchkey admin
# create` (bcrypt cost 4) makes admin@example.com, whose password hash every seeded user gets. Then
# SQL seeds N users (user0000001@example.com …, created one second apart) with one live session
# each, in one transaction (SQLite: INSERT … SELECT from a recursive CTE with journal_mode=OFF;
# PostgreSQL: generate_series, the plain indexes dropped and rebuilt with their own definitions).
# The release binary serves it on 127.0.0.1 (bcrypt cost 4, rate limits off, RUST_LOG
# info,latchkey=debug, JSON log) and is measured:
#   - login: LOGINS seeded users, one login each, one after another (latency);
#   - GET /v1/me with a seeded user's access token; refresh, every request a refresh token never
#     presented before (bench/load.lua, a pool of POOL sessions of seeded users); the admin list's
#     first page (GET /v1/users?limit=50) and its second (the cursor the first returns); an email
#     prefix matching 100 users at every size (email=user00012) and one matching every user
#     (email=user): wrk, 2 threads, 64 connections, SCALE_SECONDS each;
#   - storage: one session refreshed CHAIN times in a row, and the row counts and bytes of the
#     session tables before and after.
# Then, the server stopped, SQL adds EXPIRED sessions past their lifetime and the server starts
# again with LATCHKEY_PRUNE_INTERVAL=2: its pruner starts at once, and a refresh load runs while it
# deletes them; when its debug line "pruned expired sessions and tokens" (rows, longest_batch_ms)
# is logged, the same load runs again, idle. Every load counts non-2xx answers; the server log is
# searched for 5xx answers, warnings and errors.
# Prints a table per database, one column per size, and writes it to target/scale/report.md.
# The PostgreSQL suite creates (and drops) a database latchkey_scale_<pid> on the server it is
# given, so its user needs CREATEDB.
#
# Knobs: SCALE_SIZES ("10000 100000 1000000"), SCALE_SECONDS (5, each wrk load), SCALE_EXPIRED
# (expired sessions for the pruner; default the size, at least 100000), SCALE_POOL (500 sessions
# per refresh pool), SCALE_LOGINS (200), SCALE_CHAIN (1000), SCALE_WAIT_QUIET (0: seconds to wait
# before each load for other processes to leave the CPU), SCALE_PRUNE_TIMEOUT (1800 s),
# SCALE_KEEP=1 keeps the work dir (server logs, wrk output; not the databases).
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES=${SCALE_SIZES:-10000 100000 1000000}
SECONDS_PER_RUN=${SCALE_SECONDS:-5}
EXPIRED=${SCALE_EXPIRED:-}
POOL=${SCALE_POOL:-500}
LOGINS=${SCALE_LOGINS:-200}
CHAIN=${SCALE_CHAIN:-1000}
WAIT_QUIET=${SCALE_WAIT_QUIET:-0}
PRUNE_TIMEOUT=${SCALE_PRUNE_TIMEOUT:-1800}
REPORT=target/scale/report.md
SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
PASSWORD='correct horse battery staple'
CPUS=$(nproc)
BIN=target/release/latchkey
PG_URL=""
case "${DATABASE_URL:-}" in
  postgres://* | postgresql://*) PG_URL=$DATABASE_URL ;;
esac
# Nothing from the caller's environment changes the server under test.
while read -r name; do unset "$name"; done < <(compgen -e | grep '^LATCHKEY_' || true)
unset DATABASE_URL RUST_LOG

say() { printf '\n==> %s\n' "$*" >&2; }
die() { echo "scale.sh: $*" >&2; exit 1; }

for n in $SIZES $SECONDS_PER_RUN $POOL $LOGINS $CHAIN $WAIT_QUIET $PRUNE_TIMEOUT ${EXPIRED:-0}; do
  [[ $n =~ ^[0-9]+$ ]] || die "not a whole number: $n (check the SCALE_* settings)"
done
MAX_SIZE=0
for size in $SIZES; do
  [ "$size" -ge $((3 * POOL + LOGINS + 2)) ] ||
    die "size $size is too small: the pools and logins need $((3 * POOL + LOGINS + 2)) users"
  [ "$size" -gt "$MAX_SIZE" ] && MAX_SIZE=$size
done
# Zero-padded numbers: a prefix then matches as many users at every size.
WIDTH=$((${#MAX_SIZE} > 7 ? ${#MAX_SIZE} : 7))
EMAIL_FORMAT="user%0${WIDTH}d@example.com"
NARROW_PREFIX="user$(printf "%0$((WIDTH - 2))d" 12)" # user00012…: 100 users at every size

# --- tools ---------------------------------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
  say "installing wrk (Debian)"
  [ "$(id -u)" = 0 ] || die "wrk is missing and installing it needs root: apt-get install wrk"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
for tool in curl python3 cargo; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is needed"
done
python3 -c 'import sqlite3' 2>/dev/null || die "python3 needs its sqlite3 module"
if [ -n "$PG_URL" ]; then
  command -v psql >/dev/null 2>&1 || die "psql is needed for the PostgreSQL suite"
  psql "$PG_URL" -XAtqc 'SELECT 1' >/dev/null || die "cannot connect to PostgreSQL at DATABASE_URL"
fi

say "building the release binary (and examples/bcrypt_rate, the machine's speed)"
cargo build --release --quiet --bin latchkey --example bcrypt_rate

WORK=$(mktemp -d /tmp/latchkey-scale.XXXXXX)
RESULTS=$WORK/results.txt
: >"$RESULTS"
SERVER_PID=""
PG_DB=latchkey_scale_$$
PG_CREATED=0
cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "$PG_CREATED" = 1 ]; then
    psql "$PG_URL" -XAtqc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -f "$WORK"/*.db "$WORK"/*.db-wal "$WORK"/*.db-shm
  if [ "${SCALE_KEEP:-0}" = 1 ]; then
    echo "work dir kept: $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

record() { echo "$*" >>"$RESULTS"; }

# --- the machine, and how busy it is with other work (as bench/load.sh) --------------------------
cpu_busy_ticks() { awk '/^cpu /{ print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
# CPU time of this script's finished children (servers, wrk, seeding), in ticks, into CHILD_TICKS.
read_child_ticks() {
  times >"$WORK/times"
  CHILD_TICKS=$(tail -n 1 "$WORK/times" | awk -v hz="$(getconf CLK_TCK)" '{
    total = 0
    for (i = 1; i <= 2; i++) { split($i, p, /[ms]/); total += p[1] * 60 + p[2] }
    printf "%d\n", total * hz }')
}
server_ticks() {
  if [ -n "$SERVER_PID" ] && [ -r "/proc/$SERVER_PID/stat" ]; then
    sed 's/.*) //' "/proc/$SERVER_PID/stat" | awk '{ print $12 + $13 }'
  else
    echo 0
  fi
}
# Over one second: the percentage of the machine's CPU used by anything but the server under test.
others_busy_percent() {
  local before server_before after server_after
  before=$(cpu_busy_ticks)
  server_before=$(server_ticks)
  sleep 1
  after=$(cpu_busy_ticks)
  server_after=$(server_ticks)
  local percent=$(((after - before - (server_after - server_before)) * 100 / ($(getconf CLK_TCK) * CPUS)))
  echo $((percent < 0 ? 0 : percent))
}
wait_quiet() {
  local waited=0 busy
  busy=$(others_busy_percent)
  while [ "$busy" -gt 15 ] && [ "$waited" -lt "$WAIT_QUIET" ]; do
    [ "$waited" = 0 ] && echo "   (other processes keep the CPU ${busy}% busy: waiting up to ${WAIT_QUIET}s)" >&2
    sleep 4
    waited=$((waited + 5))
    busy=$(others_busy_percent)
  done
  PHASE_BUSY=$busy
}
# phase_begin / phase_end bracket one measurement; phase_end sets PHASE_OTHERS, the percentage of
# the machine's CPU that processes other than this script's (server, wrk, clients) took meanwhile.
phase_begin() {
  if [ "${1:-}" = now ]; then PHASE_BUSY=-; else wait_quiet; fi
  read_child_ticks
  PHASE_C0=$CHILD_TICKS
  PHASE_S0=$(server_ticks)
  PHASE_T0=$(cpu_busy_ticks)
  PHASE_W0=$(date +%s.%N)
}
phase_end() {
  local busy server wall
  busy=$(($(cpu_busy_ticks) - PHASE_T0))
  server=$(($(server_ticks) - PHASE_S0))
  read_child_ticks
  wall=$(awk -v a="$PHASE_W0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
  PHASE_OTHERS=$(awk -v busy="$busy" -v ours="$((server + CHILD_TICKS - PHASE_C0))" -v wall="$wall" \
    -v hz="$(getconf CLK_TCK)" -v cpus="$CPUS" 'BEGIN {
      others = (busy - ours) * 100 / (wall * hz * cpus)
      printf "%d\n", others < 0 ? 0 : others }')
  PHASE_SECONDS=$wall
}

busy_before() { # over $1 seconds, all cores
  local before after
  before=$(cpu_busy_ticks)
  sleep "$1"
  after=$(cpu_busy_ticks)
  echo $(((after - before) * 100 / ($1 * $(getconf CLK_TCK) * CPUS)))
}
record "machine nproc=$CPUS cpu=$(awk -F': ' '/^model name/{ gsub(/ /, "_", $2); print $2; exit }' /proc/cpuinfo)" \
  "mem_gib=$(awk '/^MemTotal/{ printf "%.1f", $2 / 1048576 }' /proc/meminfo)" \
  "busy_before=$(busy_before 3) loadavg_before=$(cut -d' ' -f1 /proc/loadavg)" \
  "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown) date=$(date -u +%Y-%m-%dT%H:%MZ)"
# Raw bcrypt (cost 12, all cores) says how fast this machine is today, to compare runs made on
# different days; the loads below run at bcrypt cost 4.
say "raw bcrypt at cost 12 on $CPUS threads, 8 s"
phase_begin
record "raw_bcrypt $(target/release/examples/bcrypt_rate "$CPUS" 12 8 | cut -d' ' -f2-)"
phase_end
sed -i "\$s/\$/ others=$PHASE_OTHERS/" "$RESULTS"

# --- the server ----------------------------------------------------------------------------------
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server LOG_NAME DATABASE_URL [VAR=VALUE…]
start_server() {
  local name=$1 url=$2
  shift 2
  PORT=$(free_port)
  BASE="http://127.0.0.1:$PORT"
  SERVER_LOG=$WORK/server-$name.log
  env LATCHKEY_ADDR="127.0.0.1:$PORT" DATABASE_URL="$url" LATCHKEY_JWT_SECRET="$SECRET" \
    LATCHKEY_RATE_LIMITS=false LATCHKEY_BCRYPT_COST=4 LATCHKEY_LOG_FORMAT=json \
    RUST_LOG=info,latchkey=debug "$@" "$BIN" serve >"$SERVER_LOG" 2>&1 &
  SERVER_PID=$!
  local attempt
  for attempt in $(seq 1 300); do
    if curl -fsS -o /dev/null "$BASE/healthz" 2>/dev/null; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 20 "$SERVER_LOG" >&2; die "the server did not start"; }
    sleep 0.2
  done
  die "the server did not answer /healthz within 60 s"
}

stop_server() {
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" || true
  SERVER_PID=""
}

# What the server's log says: 5xx answers, and warnings and errors other than the mail outbox's
# (without LATCHKEY_SMTP_URL every mail is a warning). Also the pruner's line, if any.
record_log() { # SUITE SIZE LABEL
  python3 - "$SERVER_LOG" "$WORK/log-excerpt-$1-$2-$3" <<'PY' | { read -r line; record "$1 $2 $3 $line"; }
import json, sys

log, excerpt_file = sys.argv[1:3]
five_xx = warnings = errors = 0
pruned = None
excerpt = []
for raw in open(log, encoding="utf-8", errors="replace"):
    try:
        line = json.loads(raw)
    except ValueError:
        continue
    level, target = line.get("level"), line.get("target", "")
    status = line.get("status")
    bad = False
    if isinstance(status, int) and status >= 500:
        five_xx += 1
        bad = True
    message = line.get("message", "")
    expected = (target.startswith("latchkey::mail")  # the outbox without SMTP
                or message.startswith("LATCHKEY_BCRYPT_COST is 4")  # as configured here
                or message.startswith("LATCHKEY_RATE_LIMITS is off"))
    if not expected:
        if level == "WARN":
            warnings += 1
            bad = True
        elif level == "ERROR":
            errors += 1
            bad = True
    if line.get("message") == "pruned expired sessions and tokens" and pruned is None:
        pruned = line
    if bad and len(excerpt) < 5:
        excerpt.append(raw.strip()[:400])
fields = f"five_xx={five_xx} warnings={warnings} errors={errors}"
if pruned:
    fields += f" pruned_rows={pruned['rows']} longest_batch_ms={pruned['longest_batch_ms']:.1f}"
if excerpt:
    with open(excerpt_file, "w", encoding="utf-8") as out:
        out.write("\n".join(excerpt) + "\n")
print(fields)
PY
}

# The timestamp of the first JSON log line with this message, in seconds since the epoch, or "".
log_time() { # MESSAGE
  python3 - "$SERVER_LOG" "$1" <<'PY'
import datetime, json, sys

for raw in open(sys.argv[1], encoding="utf-8", errors="replace"):
    if sys.argv[2] not in raw:
        continue
    try:
        line = json.loads(raw)
    except ValueError:
        continue
    if line.get("message") == sys.argv[2]:
        stamp = line["timestamp"].replace("Z", "+00:00")
        print(f"{datetime.datetime.fromisoformat(stamp).timestamp():.3f}")
        break
PY
}

# wrk_run SUITE SIZE LABEL SECONDS [VAR=VALUE…]: one bounded load, 2 threads, 64 connections.
wrk_run() {
  local suite=$1 size=$2 label=$3 duration=$4
  shift 4
  local out=$WORK/wrk-$suite-$size-$label.txt
  phase_begin
  WRK_STARTED=$(date +%s.%N)
  env LOAD_THREADS=2 "$@" wrk -t2 -c64 -d"${duration}s" --timeout 10s -s bench/load.lua "$BASE" \
    >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed"; }
  WRK_ENDED=$(date +%s.%N)
  phase_end
  local result
  result=$(grep '^RESULT ' "$out" | cut -d' ' -f2-) || { cat "$out" >&2; die "wrk printed no result"; }
  record "$suite $size $label $result busy_before=$PHASE_BUSY others=$PHASE_OTHERS"
  echo "   $label: $(echo "$result" | grep -oE '(rps|p99_ms|non2xx|statuses)=[^ ]+' | tr '\n' ' ')others=$PHASE_OTHERS%" >&2
}

# --- the databases -------------------------------------------------------------------------------
pg_url_of() { # DATABASE_NAME: PG_URL with another database
  python3 -c 'import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1])
print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$PG_URL" "$1"
}

# fresh_database SUITE SIZE: an empty database with the schema and the admin; sets DB_URL.
fresh_database() {
  local suite=$1 size=$2
  if [ "$suite" = sqlite ]; then
    DB_FILE=$WORK/scale-$size.db
    rm -f "$DB_FILE" "$DB_FILE-wal" "$DB_FILE-shm"
    DB_URL="sqlite://$DB_FILE"
  else
    psql "$PG_URL" -XAtq -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" \
      -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" \
      -c "CREATE DATABASE $PG_DB" >/dev/null || die "could not create the database $PG_DB"
    PG_CREATED=1
    DB_URL=$(pg_url_of "$PG_DB")
  fi
  env DATABASE_URL="$DB_URL" "$BIN" migrate >/dev/null || die "latchkey migrate failed"
  printf '%s\n' "$PASSWORD" | env DATABASE_URL="$DB_URL" LATCHKEY_BCRYPT_COST=4 \
    "$BIN" admin create --email admin@example.com --password-stdin >/dev/null ||
    die "latchkey admin create failed"
}

drop_database() { # SUITE
  if [ "$1" = sqlite ]; then
    rm -f "$DB_FILE" "$DB_FILE-wal" "$DB_FILE-shm"
  else
    psql "$PG_URL" -XAtqc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null
  fi
}

# sqlite_seed WHAT SIZE [EXPIRED]: WHAT is users (SIZE users, one live session each) or expired
# (EXPIRED sessions past their lifetime, spread over the users). Times are written as sqlx writes
# a DateTime<Utc> (RFC 3339, microseconds, +00:00), ids as 16-byte BLOBs: SQLite compares both as
# they are stored.
sqlite_seed() {
  python3 - "$DB_FILE" "$1" "$2" "${3:-0}" "$WIDTH" <<'PY'
import os, sqlite3, sys, time

path, what, size, expired, width = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
now = int(time.time())
def stamp(expr):  # an integer Unix time in SQL -> sqlx's text form, with a microsecond part
    return f"strftime('%Y-%m-%dT%H:%M:%S', {expr}, 'unixepoch') || '.123457+00:00'"
db = sqlite3.connect(path, isolation_level=None)
db.executescript("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;")
db.execute("BEGIN")
if what == "users":
    first = now - size - 86400  # one second apart, the last a day ago
    db.execute(f"""
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {size})
        INSERT INTO users (id, email, password_hash, name, role, created_at, updated_at,
                           disabled_at, email_verified_at)
        SELECT randomblob(16), 'user' || printf('%0{width}d', i) || '@example.com',
               (SELECT password_hash FROM users WHERE email = 'admin@example.com'), NULL, 'user',
               {stamp(f'{first} + i')}, {stamp(f'{first} + i')}, NULL, {stamp(f'{first} + i')}
        FROM n""")
    db.execute(f"""
        INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, revoked_at,
                              user_agent, ip, refresh_hash, refresh_generation,
                              refresh_rotated_at, refresh_expires_at)
        SELECT randomblob(16), id, {stamp(now - 3600)}, {stamp(now - 3600)},
               {stamp(now + 60 * 86400)}, NULL, 'scale.sh', '127.0.0.1',
               lower(hex(randomblob(32))), 0, NULL, {stamp(now + 29 * 86400)}
        FROM users WHERE role = 'user'""")
else:
    per_user = -(-expired // size)
    db.execute(f"""
        WITH RECURSIVE k(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM k WHERE j < {per_user - 1})
        INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, revoked_at,
                              user_agent, ip, refresh_hash, refresh_generation,
                              refresh_rotated_at, refresh_expires_at)
        SELECT randomblob(16), u.id, {stamp(now - 100 * 86400)}, {stamp(now - 40 * 86400)},
               {stamp(f'{now - 86400} - (u.rowid * {per_user} + k.j) % 864000')}, NULL,
               'scale.sh', '127.0.0.1', lower(hex(randomblob(32))), 3,
               {stamp(now - 40 * 86400)}, {stamp(now - 10 * 86400)}
        FROM users u, k WHERE u.role = 'user' LIMIT {expired}""")
db.execute("COMMIT")
db.execute("PRAGMA journal_mode = WAL")
db.close()
# With synchronous=OFF the seed is still in the page cache: flush it now, or the server's first
# checkpoint (its first fsync) pays for it, a second or more at 1M, and is taken for its own cost.
fd = os.open(path, os.O_RDONLY)
os.fsync(fd)
os.close(fd)
PY
}

# postgres_seed WHAT SIZE [EXPIRED]: the same on PostgreSQL. The plain (not unique) indexes of the table
# are dropped first and rebuilt from their own definitions afterwards, in the same transaction;
# ANALYZE then does what autovacuum would do soon after such a load.
postgres_seed() {
  local what=$1 size=$2 expired=${3:-0} table insert
  if [ "$what" = users ]; then
    table="'users'::regclass, 'sessions'::regclass"
    insert="
      INSERT INTO users (id, email, password_hash, name, role, created_at, updated_at,
                         disabled_at, email_verified_at)
      SELECT gen_random_uuid(), 'user' || lpad(i::text, $WIDTH, '0') || '@example.com',
             (SELECT password_hash FROM users WHERE email = 'admin@example.com'), NULL, 'user',
             t, t, NULL, t
      FROM generate_series(1, $size) AS i,
           LATERAL (SELECT date_trunc('second', now()) - interval '1 day'
                           - ($size - i) * interval '1 second'
                           + interval '123457 microseconds' AS t) AS times;
      INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, revoked_at,
                            user_agent, ip, refresh_hash, refresh_generation,
                            refresh_rotated_at, refresh_expires_at)
      SELECT gen_random_uuid(), id, now() - interval '1 hour', now() - interval '1 hour',
             now() + interval '60 days', NULL, 'scale.sh', '127.0.0.1',
             encode(sha256(gen_random_uuid()::text::bytea), 'hex'), 0, NULL,
             now() + interval '29 days'
      FROM users WHERE role = 'user';"
  else
    table="'sessions'::regclass"
    insert="
      INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, revoked_at,
                            user_agent, ip, refresh_hash, refresh_generation,
                            refresh_rotated_at, refresh_expires_at)
      SELECT gen_random_uuid(), u.id, now() - interval '100 days', now() - interval '40 days',
             now() - interval '1 day' - ((u.n * per_user + k) % 864000) * interval '1 second',
             NULL, 'scale.sh', '127.0.0.1',
             encode(sha256(gen_random_uuid()::text::bytea), 'hex'), 3,
             now() - interval '40 days', now() - interval '10 days'
      FROM (SELECT id, row_number() OVER () AS n FROM users WHERE role = 'user') AS u,
           (SELECT ceil($expired::numeric / $size)::int AS per_user) AS p,
           generate_series(0, p.per_user - 1) AS k
      LIMIT $expired;"
  fi
  psql "$DB_URL" -XAtq -v ON_ERROR_STOP=1 >/dev/null <<SQL || die "seeding PostgreSQL failed"
SET synchronous_commit = off;
SET maintenance_work_mem = '256MB';
BEGIN;
CREATE TEMP TABLE scale_indexes ON COMMIT DROP AS
  SELECT indexrelid::regclass::text AS name, pg_get_indexdef(indexrelid) AS definition
  FROM pg_index WHERE indrelid IN ($table) AND NOT indisunique AND NOT indisprimary;
DO \$\$ DECLARE r record; BEGIN
  FOR r IN SELECT name FROM scale_indexes LOOP EXECUTE 'DROP INDEX ' || r.name; END LOOP;
END \$\$;
$insert
DO \$\$ DECLARE r record; BEGIN
  FOR r IN SELECT definition FROM scale_indexes LOOP EXECUTE r.definition; END LOOP;
END \$\$;
COMMIT;
ANALYZE users;
ANALYZE sessions;
SQL
}

# db_stats SUITE: row counts of the session tables and their bytes, as key=value.
db_stats() {
  if [ "$1" = sqlite ]; then
    python3 - "$DB_FILE" <<'PY'
import sqlite3, sys

db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
count = lambda table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
names = [r[0] for r in db.execute(
    "SELECT name FROM sqlite_schema WHERE tbl_name = 'sessions' AND type IN ('table', 'index')")]
marks = ",".join("?" * len(names))
session_bytes = db.execute(
    f"SELECT sum(pgsize) FROM dbstat WHERE name IN ({marks})", names).fetchone()[0]
page_size = db.execute("PRAGMA page_size").fetchone()[0]
pages = db.execute("PRAGMA page_count").fetchone()[0]
free = db.execute("PRAGMA freelist_count").fetchone()[0]
print(f"users={count('users')} sessions={count('sessions')} refresh_tokens={count('refresh_tokens')} "
      f"revocations={count('session_revocations')} session_bytes={session_bytes} "
      f"db_bytes={(pages - free) * page_size}")
PY
  else
    psql "$DB_URL" -XAtq -F ' ' -c "SELECT
      'users=' || (SELECT count(*) FROM users),
      'sessions=' || (SELECT count(*) FROM sessions),
      'refresh_tokens=' || (SELECT count(*) FROM refresh_tokens),
      'revocations=' || (SELECT count(*) FROM session_revocations),
      'session_bytes=' || pg_total_relation_size('sessions'),
      'db_bytes=' || pg_database_size(current_database())"
  fi
}

# prune_load SUITE SIZE: refreshes (pool b) from the server's start, its pruner's too, until the
# pruner logs that it is done; wrk stops on SIGINT and reports as at the end of its time.
prune_load() {
  local suite=$1 size=$2 out=$WORK/wrk-$1-$2-refresh_pruning.txt wrk_pid offset=0 length
  phase_begin now
  WRK_STARTED=$(date +%s.%N)
  env LOAD_THREADS=2 LOAD_MODE=refresh LOAD_REFRESH_POOL="$WORK/pool-b.txt" wrk -t2 -c64 \
    -d"${PRUNE_TIMEOUT}s" --timeout 10s -s bench/load.lua "$BASE" >"$out" 2>&1 &
  wrk_pid=$!
  # Only the log's new bytes are searched each time: it grows by a line per request.
  while kill -0 "$wrk_pid" 2>/dev/null; do
    sleep 0.5
    length=$(stat -c %s "$SERVER_LOG")
    # (grep reads all it is given: one that stopped early would fail the pipe under pipefail)
    if [ "$(tail -c +$((offset + 1)) "$SERVER_LOG" | head -c $((length - offset)) |
      grep -cF '"message":"pruned expired sessions and tokens"')" != 0 ]; then
      break
    fi
    offset=$((length > 4096 ? length - 4096 : 0))
  done
  kill -INT "$wrk_pid" 2>/dev/null || true
  wait "$wrk_pid" || { cat "$out" >&2; die "wrk failed"; }
  WRK_ENDED=$(date +%s.%N)
  phase_end
  local result pruned_at listening
  result=$(grep '^RESULT ' "$out" | cut -d' ' -f2-) || { cat "$out" >&2; die "wrk printed no result"; }
  pruned_at=$(log_time "pruned expired sessions and tokens")
  [ -n "$pruned_at" ] || die "the pruner did not finish within $PRUNE_TIMEOUT s"
  listening=$(log_time "latchkey is listening")
  record "$suite $size refresh_pruning $result busy_before=- others=$PHASE_OTHERS"
  record "$suite $size prune_window listening=$listening pruned_at=$pruned_at load_started=$WRK_STARTED load_ended=$WRK_ENDED"
  echo "   refresh_pruning: $(echo "$result" | grep -oE '(rps|p99_ms|non2xx|statuses)=[^ ]+' | tr '\n' ' ')others=$PHASE_OTHERS%" >&2
}

# --- one size on one database --------------------------------------------------------------------
measure_size() { # SUITE SIZE
  local suite=$1 size=$2 expired=$EXPIRED started_at
  [ -n "$expired" ] || expired=$((size > 100000 ? size : 100000))
  started_at=$(date +%s)

  say "[$suite $size] a fresh database: migrate, admin, then $size users and sessions by SQL"
  fresh_database "$suite" "$size"
  phase_begin now
  "${suite}_seed" users "$size"
  phase_end
  record "$suite $size seed_users seconds=$PHASE_SECONDS others=$PHASE_OTHERS"
  echo "   seeded in ${PHASE_SECONDS%.*} s" >&2

  start_server "$suite-$size" "$DB_URL"
  phase_begin now
  python3 bench/scale_client.py prepare "$BASE" "$PASSWORD" "$EMAIL_FORMAT" "$POOL" "$LOGINS" \
    "$WORK" >"$WORK/prepare.txt" || die "preparing the sessions failed"
  phase_end
  local login user_access chain_refresh admin_access cursor
  login=$(grep '^login_' "$WORK/prepare.txt")
  user_access=$(sed -n 's/^user_access=//p' "$WORK/prepare.txt")
  chain_refresh=$(sed -n 's/^chain_refresh=//p' "$WORK/prepare.txt")
  admin_access=$(sed -n 's/^admin_access=//p' "$WORK/prepare.txt")
  cursor=$(sed -n 's/^cursor=//p' "$WORK/prepare.txt")
  record "$suite $size login $login others=$PHASE_OTHERS"
  echo "   login: $(echo "$login" | grep -oE 'login_p(50|99)_ms=[^ ]+' | tr '\n' ' ')" >&2

  wrk -t2 -c64 -d2s -s bench/load.lua "$BASE" >/dev/null 2>&1 # warm-up
  wrk_run "$suite" "$size" me "$SECONDS_PER_RUN" LOAD_MODE=get LOAD_PATH=/v1/me LOAD_ACCESS_TOKEN="$user_access"
  wrk_run "$suite" "$size" refresh "$SECONDS_PER_RUN" LOAD_MODE=refresh LOAD_REFRESH_POOL="$WORK/pool-a.txt"
  wrk_run "$suite" "$size" page1 "$SECONDS_PER_RUN" LOAD_MODE=get LOAD_ACCESS_TOKEN="$admin_access" \
    LOAD_PATH="/v1/users?limit=50"
  wrk_run "$suite" "$size" page2 "$SECONDS_PER_RUN" LOAD_MODE=get LOAD_ACCESS_TOKEN="$admin_access" \
    LOAD_PATH="/v1/users?limit=50&cursor=$cursor"
  wrk_run "$suite" "$size" search_narrow "$SECONDS_PER_RUN" LOAD_MODE=get LOAD_ACCESS_TOKEN="$admin_access" \
    LOAD_PATH="/v1/users?email=$NARROW_PREFIX&limit=50"
  wrk_run "$suite" "$size" search_broad "$SECONDS_PER_RUN" LOAD_MODE=get LOAD_ACCESS_TOKEN="$admin_access" \
    LOAD_PATH="/v1/users?email=user&limit=50"

  sleep 3 # for queries of the last load still running
  say "[$suite $size] one session refreshed $CHAIN times"
  record "$suite $size stats_before $(db_stats "$suite")"
  record "$suite $size chain $(python3 bench/scale_client.py chain "$BASE" "$chain_refresh" "$CHAIN")"
  record "$suite $size stats_after $(db_stats "$suite")"
  record "$suite $size rss $(awk '/^Vm(HWM|RSS)/{ printf "%s_kb=%s ", tolower($1), $2 }' "/proc/$SERVER_PID/status" | tr -d ':')"
  stop_server
  record_log "$suite" "$size" log

  say "[$suite $size] $expired expired sessions by SQL, then the pruner under a refresh load"
  phase_begin now
  "${suite}_seed" expired "$size" "$expired"
  phase_end
  record "$suite $size seed_expired rows=$expired seconds=$PHASE_SECONDS others=$PHASE_OTHERS"
  record "$suite $size stats_expired $(db_stats "$suite")"
  start_server "$suite-$size-prune" "$DB_URL" LATCHKEY_PRUNE_INTERVAL=2
  prune_load "$suite" "$size"
  wrk_run "$suite" "$size" refresh_idle "$SECONDS_PER_RUN" LOAD_MODE=refresh LOAD_REFRESH_POOL="$WORK/pool-c.txt"
  record "$suite $size stats_pruned $(db_stats "$suite")"
  stop_server
  record_log "$suite" "$size" prune_log
  drop_database "$suite"
  record "$suite $size total seconds=$(($(date +%s) - started_at))"
}

SCRIPT_STARTED=$(date +%s)
for size in $SIZES; do
  measure_size sqlite "$size"
done
record "sqlite all seconds=$(($(date +%s) - SCRIPT_STARTED))"
if [ -n "$PG_URL" ]; then
  PG_STARTED=$(date +%s)
  for size in $SIZES; do
    measure_size postgres "$size"
  done
  record "postgres all seconds=$(($(date +%s) - PG_STARTED))"
fi

# --- the report ----------------------------------------------------------------------------------
mkdir -p "$(dirname "$REPORT")"
python3 - "$RESULTS" "$SIZES" "$SECONDS_PER_RUN" "$POOL" "$LOGINS" "$CHAIN" "$NARROW_PREFIX" >"$REPORT" <<'PY'
import math
import sys

results_file, sizes, seconds, pool, logins, chain, narrow = sys.argv[1:8]
sizes = sizes.split()
rows = {}
for line in open(results_file):
    parts = line.split()
    keys = tuple(p for p in parts if "=" not in p)
    rows[keys] = dict(p.split("=", 1) for p in parts if "=" in p)


def get(*key):
    return rows.get(tuple(key), {})


def num(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def human(n):
    n = int(n)
    return f"{n // 1000000}M" if n % 1000000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


out = []
w = out.append
machine = get("machine")
w(f"Machine: {machine.get('nproc')} CPUs, {machine.get('cpu', '?').replace('_', ' ')}, "
  f"{machine.get('mem_gib')} GiB; CPU {machine.get('busy_before')}% busy and load average "
  f"{machine.get('loadavg_before')} just before the run; commit {machine.get('commit')}, "
  f"{machine.get('date')}. Raw bcrypt at cost 12 on all CPUs (examples/bcrypt_rate): "
  f"{num(get('raw_bcrypt').get('per_second')):.2f}/s, other processes taking "
  f"{get('raw_bcrypt').get('others', '?')}% of the CPU meanwhile. wrk: 2 threads, 64 connections, "
  f"{seconds} s per load. One run.")

for suite in ("sqlite", "postgres"):
    present = [s for s in sizes if get(suite, s, "me")]
    if not present:
        continue
    w("")
    w(f"### {'SQLite' if suite == 'sqlite' else 'PostgreSQL'}")
    w("")
    w("| | " + " | ".join(human(s) for s in present)
      + " | cost, largest / smallest size | flat (all within 1.5×) |")
    w("| --- |" + " --- |" * (len(present) + 2))

    def row(title, values, cost=None, fmt="{:,.0f}", notes=None):
        """values: one number per size (None: only the note); cost 'up' (larger is worse) or
        'down' (a rate: smaller is worse) adds the ratio of the largest size's cost to the
        smallest's, and whether all sizes are within 1.5x of each other."""
        cells = []
        for i, v in enumerate(values):
            cell = "" if v is None else "–" if math.isnan(v) else fmt.format(v)
            if notes and notes[i]:
                cell = f"{cell} {notes[i]}".strip()
            cells.append(cell)
        ratio, flat = "", ""
        known = [v for v in values if v is not None and not math.isnan(v) and v > 0]
        if cost and len(values) > 1 and len(known) == len(values):
            r = values[-1] / values[0] if cost == "up" else values[0] / values[-1]
            ratio = f"{r:.2f}×"
            flat = "yes" if max(known) / min(known) <= 1.5 else "**no**"
        w(f"| {title} | " + " | ".join(cells) + f" | {ratio} | {flat} |")

    def field(label, key, scale=1.0):
        return [num(get(suite, s, label).get(key)) * scale for s in present]

    def wrk_rows(label, title):
        notes = []
        for s in present:
            r = get(suite, s, label)
            bits = []
            if int(r.get("non2xx", 0)):
                bits.append(f"{int(r['non2xx']):,} non-2xx")
            socket = sum(int(r.get(k, 0)) for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
            if socket:
                bits.append(f"{socket:,} socket errors/timeouts")
            if r.get("others", "0") not in ("0", "?"):
                bits.append(f"others {r['others']}%")
            notes.append(f"({', '.join(bits)})" if bits else "")
        row(f"{title}: req/s", field(label, "rps"), "down", notes=notes)
        row(f"{title}: p99 ms", field(label, "p99_ms"), "up", "{:.2f}")

    before = [get(suite, s, "stats_before") for s in present]
    after = [get(suite, s, "stats_after") for s in present]
    row("users / sessions (at the storage test)", [num(b.get("users")) for b in before],
        notes=[f"/ {int(num(b.get('sessions'))):,}" for b in before])
    row("seeding the users and sessions, s", field("seed_users", "seconds"), fmt="{:.1f}")
    row(f"login p50 ms ({logins} users, one after another)", field("login", "login_p50_ms"), "up", "{:.2f}")
    row("login p99 ms", field("login", "login_p99_ms"), "up", "{:.2f}")
    wrk_rows("me", "GET /v1/me")
    wrk_rows("refresh", "refresh")
    wrk_rows("page1", "admin list, page 1")
    wrk_rows("page2", "admin list, page 2 (cursor)")
    wrk_rows("search_narrow", f"email={narrow} (100 match)")
    wrk_rows("search_broad", "email=user (all match)")
    row("sessions table + indexes, bytes per session",
        [num(b.get("session_bytes")) / num(b.get("sessions")) for b in before], "up")
    row(f"after {chain} refreshes of one session: Δ rows (sessions, refresh_tokens)",
        [num(a.get("sessions")) - num(b.get("sessions")) + num(a.get("refresh_tokens"))
         - num(b.get("refresh_tokens")) for a, b in zip(after, before)], fmt="{:+,.0f}")
    row("… Δ bytes, sessions table + indexes",
        [num(a.get("session_bytes")) - num(b.get("session_bytes")) for a, b in zip(after, before)],
        fmt="{:+,.0f}")
    row("… those refreshes: p50 ms", field("chain", "chain_p50_ms"), "up", "{:.2f}",
        notes=[f"({get(suite, s, 'chain').get('statuses')})" for s in present])
    row("expired sessions seeded for the pruner", field("seed_expired", "rows"))
    row("pruner: rows deleted", field("prune_log", "pruned_rows"))
    row("pruner: longest batch ms (longest_batch_ms)", field("prune_log", "longest_batch_ms"), "up", "{:.1f}")
    windows = [get(suite, s, "prune_window") for s in present]
    row("pruner: s from the server's start to its line",
        [num(x.get("pruned_at")) - num(x.get("listening")) for x in windows], "up", "{:.1f}")
    row("… per 100k rows deleted, s",
        [(num(x.get("pruned_at")) - num(x.get("listening"))) * 100000 / num(get(suite, s, "prune_log").get("pruned_rows"))
         for x, s in zip(windows, present)], "up", "{:.1f}")
    row("refresh while pruning: s of load (until the pruner's line)", field("refresh_pruning", "seconds"),
        fmt="{:.1f}")
    wrk_rows("refresh_pruning", "refresh while pruning")
    row("refresh while pruning: max ms", field("refresh_pruning", "max_ms"), "up", "{:.1f}")
    wrk_rows("refresh_idle", "refresh after pruning")
    row("refresh after pruning: max ms", field("refresh_idle", "max_ms"), "up", "{:.1f}")
    for label, title in (("log", "server log, loads before pruning"), ("prune_log", "server log, pruner phase")):
        row(f"{title}: 5xx / warnings / errors", [None] * len(present), notes=[
            " / ".join(get(suite, s, label).get(k, "?") for k in ("five_xx", "warnings", "errors"))
            for s in present])
    row("server peak RSS (before pruning), MB", field("rss", "vmhwm_kb", 1 / 1024), "up", "{:.1f}")
    row("wall time of the size, s", field("total", "seconds"))
    w("")
    w("Refresh answers by status: " + "; ".join(
        f"{human(s)}: " + ", ".join(f"{title} {get(suite, s, label).get('statuses')}" for label, title in
                                   (("refresh", "refresh"), ("refresh_pruning", "while pruning"),
                                    ("refresh_idle", "after pruning")))
        for s in present) + ".")
    w(f"\"others\" is the share of the machine's CPU that other processes took during a load"
      f"{' (PostgreSQL itself among them)' if suite == 'postgres' else ''}, shown when not 0 %. "
      f"The suite took {get(suite, 'all').get('seconds', '?')} s.")
print("\n".join(out))
PY
cat "$REPORT"
for excerpt in "$WORK"/log-excerpt-*; do
  [ -e "$excerpt" ] || continue
  printf '\nServer log excerpt (%s):\n' "${excerpt##*/log-excerpt-}"
  cat "$excerpt"
done
echo
echo "Report written to $REPORT"
