#!/usr/bin/env bash
# Third-party verifiers: resource servers that know nothing of Latchkey but its JWKS URL check its
# EdDSA access tokens (examples/resource-servers: Python with PyJWT's PyJWKClient, Node with
# jose's createRemoteJWKSet). Against the release binary on a fresh SQLite database with
# generated keys, each server must accept a fresh token, refuse a tampered, an expired and a
# wrong-audience one, and follow a rotation (`latchkey keys rotate`): the token signed before it
# and the one signed after it both pass, the new signing key having been published (as the next
# key) before it signed.
#
# Three Latchkey instances share the database, hence the keys: the main one (audience
# api.example.com), one issuing 1-second tokens (to get an expired one), one for another
# audience. Installs what it needs (a venv in target/ci-venv-resource, node_modules from the
# committed lock file) and stops every process it started, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

export CARGO_TERM_COLOR=never
export NO_COLOR=1
export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false

EXAMPLES=$ROOT/examples/resource-servers
VENV=$ROOT/target/ci-venv-resource
AUDIENCE=api.example.com

source .ci/servers.sh
ci_servers resource_servers

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for URL: until it answers, at most 30 s.
wait_for() {
    for _ in $(seq 300); do
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "$1 never answered"
}

step "cargo build --release --locked"
cargo build --release --locked
BIN=$ROOT/target/release/latchkey

step "tools: PyJWT and cryptography (target/ci-venv-resource), jose (npm ci)"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$EXAMPLES/python/requirements.txt"
(cd "$EXAMPLES/node" && npm ci --silent)

DATABASE_URL="sqlite://$WORK/latchkey.db"
# latchkey NAME PORT AUDIENCE ACCESS_TTL: one instance on the shared database, EdDSA keys.
latchkey() {
    env LATCHKEY_ADDR="127.0.0.1:$2" DATABASE_URL="$DATABASE_URL" LATCHKEY_JWT_ALG=EdDSA \
        LATCHKEY_AUDIENCE="$3" LATCHKEY_ACCESS_TTL="$4" LATCHKEY_JWT_KEY_RELOAD_INTERVAL=1 \
        LATCHKEY_BCRYPT_COST=4 LATCHKEY_RATE_LIMITS=false "$BIN" >"$WORK/$1.log" 2>&1 &
    PIDS+=($!)
    wait_for "http://127.0.0.1:$2/healthz"
}

step "three Latchkey instances on one database (EdDSA, generated keys)"
MAIN_PORT=$(free_port)
latchkey main "$MAIN_PORT" "$AUDIENCE" 900
SHORT_PORT=$(free_port)
latchkey short "$SHORT_PORT" "$AUDIENCE" 1
OTHER_PORT=$(free_port)
latchkey other "$OTHER_PORT" billing.example.com 900
JWKS_URL="http://127.0.0.1:$MAIN_PORT/.well-known/jwks.json"

step "the resource servers, given only the JWKS URL"
PY_PORT=$(free_port)
LATCHKEY_JWKS_URL=$JWKS_URL LATCHKEY_AUDIENCE=$AUDIENCE PORT=$PY_PORT \
    "$VENV/bin/python" "$EXAMPLES/python/server.py" >"$WORK/python.log" 2>&1 &
PIDS+=($!)
NODE_PORT=$(free_port)
LATCHKEY_JWKS_URL=$JWKS_URL LATCHKEY_AUDIENCE=$AUDIENCE PORT=$NODE_PORT \
    node "$EXAMPLES/node/server.mjs" >"$WORK/node.log" 2>&1 &
PIDS+=($!)
for port in "$PY_PORT" "$NODE_PORT"; do
    for _ in $(seq 300); do
        curl -sS -o /dev/null "http://127.0.0.1:$port/hello" 2>/dev/null && break
        sleep 0.1
    done
done

# token PORT PATH: the access token of ada's signup or login on that instance.
token() {
    curl -fsS -H 'content-type: application/json' \
        -d '{"email":"ada@example.com","password":"correct horse battery"}' \
        "http://127.0.0.1:$1$2" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}
kid_of() {
    python3 -c 'import base64, json, sys
h = sys.argv[1].split(".")[0]
print(json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))["kid"])' "$1"
}
tampered() {
    python3 -c 'import base64, json, sys
h, p, s = sys.argv[1].split(".")
claims = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
claims["role"] = "admin"
p = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
print(f"{h}.{p}.{s}")' "$1"
}

PASSED=0
FAILED=0
# expect WHAT STATUS TOKEN: both servers answer GET /hello with STATUS.
expect() {
    local what=$1 status=$2 token=$3 name port got
    for name in python node; do
        [ "$name" = python ] && port=$PY_PORT || port=$NODE_PORT
        got=$(curl -sS -o "$WORK/body" -w '%{http_code}' -H "Authorization: Bearer $token" \
            "http://127.0.0.1:$port/hello")
        if [ "$got" = "$status" ]; then
            PASSED=$((PASSED + 1))
            printf 'ok    %-6s %-48s %s %s\n' "$name" "$what" "$got" "$(cat "$WORK/body")"
        else
            FAILED=$((FAILED + 1))
            printf 'FAIL  %-6s %-48s %s, expected %s: %s\n' "$name" "$what" "$got" "$status" \
                "$(cat "$WORK/body")"
        fi
    done
}

step "fresh, tampered, expired and wrong-audience tokens"
FRESH=$(token "$MAIN_PORT" /v1/auth/signup)
SHORT=$(token "$SHORT_PORT" /v1/auth/login)
OTHER=$(token "$OTHER_PORT" /v1/auth/login)
expect "a fresh token" 200 "$FRESH"
expect "a tampered token (role changed)" 401 "$(tampered "$FRESH")"
expect "a token for another audience" 401 "$OTHER"
sleep 3 # the 1-second token expires
expect "an expired token" 401 "$SHORT"

step "a rotation: latchkey keys rotate"
BEFORE_KID=$(kid_of "$FRESH")
NEXT_KID=$(curl -fsS "$JWKS_URL" | python3 -c 'import json, sys; print(json.load(sys.stdin)["keys"][1]["kid"])')
DATABASE_URL=$DATABASE_URL LATCHKEY_JWT_ALG=EdDSA "$BIN" keys rotate --force
for _ in $(seq 300); do
    first=$(curl -fsS "$JWKS_URL" | python3 -c 'import json, sys; print(json.load(sys.stdin)["keys"][0]["kid"])')
    [ "$first" = "$NEXT_KID" ] && break
    sleep 0.1
done
[ "$first" = "$NEXT_KID" ] || fail "the main instance never signed with the next key $NEXT_KID"
AFTER=$(token "$MAIN_PORT" /v1/auth/login)
[ "$(kid_of "$AFTER")" = "$NEXT_KID" ] || fail "the token after the rotation is not signed with $NEXT_KID"
[ "$BEFORE_KID" != "$NEXT_KID" ] || fail "the rotation changed no key"
expect "a token signed before the rotation" 200 "$FRESH"
expect "a token signed after it, by the former next key" 200 "$AFTER"

printf '\nresource servers: %d passed, %d failed\n' "$PASSED" "$FAILED"
[ "$FAILED" = 0 ]
