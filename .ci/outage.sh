#!/usr/bin/env bash
# A PostgreSQL outage under a running instance: /readyz turns 503 and requests that need the
# database get 503 database_unavailable quickly, while token-only routes keep working; when
# PostgreSQL is back the instance recovers by itself, without a restart.
set -euo pipefail
cd "$(dirname "$0")/.."

source .ci/postgres.sh
work=$(mktemp -d /tmp/latchkey-outage.XXXXXX)
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    stop_postgres
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "outage check FAILED: $*" >&2
    echo "--- server log ---" >&2
    tail -n 40 "$work/server.log" >&2 || true
    exit 1
}

# status METHOD PATH [curl args…]: prints the HTTP status; the body goes to $work/body.
status() {
    local method=$1 path=$2
    shift 2
    curl -s -o "$work/body" -w '%{http_code}' --max-time 10 -X "$method" "$base$path" "$@"
}

# within SECONDS EXPECTED METHOD PATH [curl args…]: asserts the answer and that it came in time.
within() {
    local limit=$1 expected=$2 method=$3 path=$4
    shift 4
    local started ended got
    started=$(date +%s%N)
    got=$(status "$method" "$path" "$@")
    ended=$(date +%s%N)
    local ms=$(((ended - started) / 1000000))
    [ "$got" = "$expected" ] || fail "$method $path answered $got, expected $expected: $(cat "$work/body")"
    [ "$ms" -le $((limit * 1000)) ] || fail "$method $path took ${ms} ms (limit ${limit} s)"
    echo "  $method $path -> $got in ${ms} ms"
}

cargo build --release --locked --quiet
start_postgres
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
env -i PATH="$PATH" \
    DATABASE_URL="$PG_URL" \
    LATCHKEY_ADDR="127.0.0.1:$port" \
    LATCHKEY_JWT_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
    LATCHKEY_BCRYPT_COST=4 \
    LATCHKEY_RATE_LIMITS=false \
    target/release/latchkey serve >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
    [ "$(status GET /healthz)" = 200 ] && break
    sleep 0.1
done

echo "database up:"
within 5 200 GET /readyz
within 5 201 POST /v1/auth/signup -H 'content-type: application/json' \
    -d '{"email":"ada@example.com","password":"correct horse battery"}'
access=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_token"])' "$work/body")
within 5 200 GET /v1/me -H "authorization: Bearer $access"

echo "database down:"
as_pg_owner "'$PG_BIN/pg_ctl' -D '$PG_DIR/data' -m fast stop >/dev/null"
within 5 503 GET /readyz
grep -q '"code":"database_unavailable"' "$work/body" || fail "readyz body: $(cat "$work/body")"
for _ in 1 2 3; do
    within 5 503 GET /v1/me -H "authorization: Bearer $access"
    grep -q '"code":"database_unavailable"' "$work/body" || fail "me body: $(cat "$work/body")"
done
within 5 503 POST /v1/auth/login -H 'content-type: application/json' \
    -d '{"email":"ada@example.com","password":"correct horse battery"}'
within 2 200 GET /healthz
within 2 204 GET /v1/auth/verify -H "authorization: Bearer $access"
kill -0 "$server_pid" 2>/dev/null || fail "the server died"

echo "database back:"
as_pg_owner "'$PG_BIN/pg_ctl' -D '$PG_DIR/data' -l '$PG_DIR/server.log' -w \
    -o \"-p $PG_PORT -k '$PG_DIR' -c listen_addresses=127.0.0.1 -c fsync=off\" start >/dev/null"
recovered=""
for _ in $(seq 60); do
    if [ "$(status GET /readyz)" = 200 ]; then recovered=yes; break; fi
    sleep 0.5
done
[ -n "$recovered" ] || fail "readyz did not recover within 30 s"
within 5 200 GET /readyz
within 5 200 POST /v1/auth/login -H 'content-type: application/json' \
    -d '{"email":"ada@example.com","password":"correct horse battery"}'
within 5 200 GET /v1/me -H "authorization: Bearer $access"
if grep -q '"status":500\|internal_error' "$work/server.log"; then
    fail "the outage caused a 500"
fi
echo "outage check: 1 passed, 0 failed"
