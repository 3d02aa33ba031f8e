#!/usr/bin/env bash
# The contract, proven by real clients: SDKs generated from openapi.yaml and a browser page,
# each run against the real release binary.
#
#   1. Python: openapi-python-client generates target/sdk/python, installed into the venv
#      target/ci-venv-clients, and clients/python/flow.py runs the session flow.
#   2. TypeScript: openapi-typescript generates clients/typescript/generated/latchkey.ts,
#      tsc --noEmit type-checks clients/typescript/flow.ts against it, and tsx runs it
#      through openapi-fetch.
#   3. Browser: examples/spa served by python3 -m http.server on its own loopback port (another
#      origin than the API's, allowed by LATCHKEY_CORS_ORIGINS), driven in Debian's headless
#      Chromium by examples/spa/test/spa.test.mjs (playwright-core), against an API in
#      refresh-cookie mode (LATCHKEY_REFRESH_COOKIE=true) with a 2 s access-token lifetime so the
#      page's refresh-on-401 path runs; then the second factor on the page: adding an
#      authenticator (TOTP codes computed in the test from the secret the page shows), a login
#      answered with a challenge and completed with a code, and with a recovery code.
#      Screenshots: target/spa.png, target/spa-logged-out.png, target/spa-mfa.png.
#   4. API reference: examples/spa/test/docs.test.mjs opens the API's GET /docs in the same
#      Chromium with every request to another host aborted, waits for Redoc to render
#      openapi.yaml and fails on any such request, CSP refusal or script error. Screenshot:
#      target/docs.png.
#
# Installs what it needs on a clean machine (Chromium from Debian when /usr/bin/chromium is
# missing, the venv, node_modules from the committed lock files), and stops every process it
# started, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

export CARGO_TERM_COLOR=never
export NO_COLOR=1
export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false

OPENAPI_PYTHON_CLIENT_VERSION=0.29.1
POETRY_CORE_VERSION=2.5.0 # build backend of the generated package
CHROMIUM=/usr/bin/chromium
SPA_ACCESS_TTL=2
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
VENV=$ROOT/target/ci-venv-clients
SDK_PY=$ROOT/target/sdk/python

source .ci/servers.sh
ci_servers clients
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
step "install: Chromium, Python venv, node_modules"
if [ ! -x "$CHROMIUM" ]; then
    SUDO=()
    [ "$(id -u)" -eq 0 ] || SUDO=(sudo)
    "${SUDO[@]}" apt-get update
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -o DPkg::Lock::Timeout=600 --no-install-recommends chromium
fi
"$CHROMIUM" --version 2>/dev/null | head -n 1

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -m pip show openapi-python-client 2>/dev/null \
    | grep -qx "Version: $OPENAPI_PYTHON_CLIENT_VERSION" \
    || ! "$VENV/bin/python" -m pip show poetry-core 2>/dev/null | grep -qx "Version: $POETRY_CORE_VERSION"; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "openapi-python-client==$OPENAPI_PYTHON_CLIENT_VERSION" "poetry-core==$POETRY_CORE_VERSION"
fi

# npm ci, skipped when node_modules was installed from this very lock file.
npm_ci() {
    local dir=$1 stamp=$1/node_modules/.latchkey-lock.sha256 want
    want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
        (cd "$dir" && npm ci --no-fund --no-audit --loglevel=error)
        echo "$want" >"$stamp"
    fi
}
npm_ci clients/typescript
npm_ci examples/spa/test

# ---------------------------------------------------------------------------------------------
step "cargo build --release --locked"
cargo build --release --locked
BIN=$TARGET_DIR/release/latchkey
[ -x "$BIN" ] || fail "no binary at $BIN"

# ---------------------------------------------------------------------------------------------
# Servers. Each listens on port 0 (the kernel picks a free loopback port) and the port is read
# back from its log, so nothing here races another process for a port.

# wait_for_line LOG PID REGEX: prints the first line of LOG matching REGEX (30 s at most).
wait_for_line() {
    local log=$1 pid=$2 regex=$3 line
    for _ in $(seq 300); do
        line=$(sed 's/\x1b\[[0-9;]*m//g' "$log" 2>/dev/null | grep -m1 -E "$regex" || true)
        if [ -n "$line" ]; then
            printf '%s\n' "$line"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || fail "process $pid exited early; see $(basename "$log") below"
        sleep 0.1
    done
    fail "timed out waiting for /$regex/ in $(basename "$log")"
}

wait_for_health() {
    local url=$1
    for _ in $(seq 100); do
        curl -fsS --max-time 2 "$url/healthz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    fail "$url/healthz did not answer"
}

SPA_LOG=$WORK/spa-http.log
python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$ROOT/examples/spa" >"$SPA_LOG" 2>&1 &
PIDS+=($!)
SPA_PORT=$(wait_for_line "$SPA_LOG" "${PIDS[-1]}" 'Serving HTTP on' | grep -oE 'port [0-9]+' | grep -oE '[0-9]+')
SPA_ORIGIN=http://127.0.0.1:$SPA_PORT

# start_api NAME [VAR=VALUE…]: starts the release binary on a fresh SQLite file; sets API_URL.
start_api() {
    local name=$1 log=$WORK/$1.log port
    shift
    env RUST_LOG=info \
        DATABASE_URL="sqlite://$WORK/$name.db" \
        LATCHKEY_ADDR=127.0.0.1:0 \
        LATCHKEY_JWT_SECRET="$(head -c 48 /dev/urandom | base64 | tr -d '\n')" \
        LATCHKEY_BCRYPT_COST=4 \
        LATCHKEY_RATE_LIMITS=false \
        LATCHKEY_CORS_ORIGINS="$SPA_ORIGIN" \
        "$@" \
        "$BIN" serve >"$log" 2>&1 &
    PIDS+=($!)
    port=$(wait_for_line "$log" "${PIDS[-1]}" 'latchkey is listening' | grep -oE 'port=[0-9]+' | cut -d= -f2)
    [ -n "$port" ] || fail "could not read the port of $name from its log"
    API_URL=http://127.0.0.1:$port
    wait_for_health "$API_URL"
}

step "start the API (SDK checks) and the page server"
start_api api-sdk
SDK_API=$API_URL
echo "API $SDK_API (default access-token lifetime); page server $SPA_ORIGIN"

# ---------------------------------------------------------------------------------------------
step "1/4 Python SDK (openapi-python-client $OPENAPI_PYTHON_CLIENT_VERSION)"
rm -rf "$SDK_PY"
mkdir -p "$(dirname "$SDK_PY")"
"$VENV/bin/openapi-python-client" generate \
    --path openapi.yaml \
    --config clients/python/openapi-python-client.yaml \
    --output-path "$SDK_PY" \
    --fail-on-warning
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    --no-build-isolation --force-reinstall --no-deps "$SDK_PY"
"$VENV/bin/python" -m pip check >"$WORK/pip-check.txt" \
    || { cat "$WORK/pip-check.txt" >&2; fail "the generated SDK's requirements do not fit the venv"; }
"$VENV/bin/python" clients/python/flow.py "$SDK_API"

# ---------------------------------------------------------------------------------------------
step "2/4 TypeScript SDK (openapi-typescript + openapi-fetch)"
(
    cd clients/typescript
    rm -rf generated
    ./node_modules/.bin/openapi-typescript ../../openapi.yaml --output generated/latchkey.ts
    ./node_modules/.bin/tsc --version
    ./node_modules/.bin/tsc --noEmit
    echo "tsc --noEmit: ok"
    ./node_modules/.bin/tsx flow.ts "$SDK_API"
)

# ---------------------------------------------------------------------------------------------
step "3/4 Browser example (Chromium, refresh cookie, access tokens of $SPA_ACCESS_TTL s)"
# The cookie is Secure, SameSite=Strict, and the page is served over plain http: Chromium takes
# http://127.0.0.1 as a secure context (loopback), so it stores and sends Secure cookies there,
# and the page's origin (another port of 127.0.0.1) is the same site as the API, so the Strict
# cookie goes with the page's fetches. Cookie-authenticated requests must come from an origin in
# LATCHKEY_CORS_ORIGINS (start_api sets the page's).
start_api api-spa LATCHKEY_REFRESH_COOKIE=true LATCHKEY_ACCESS_TTL=$SPA_ACCESS_TTL
SPA_API=$API_URL
echo "API $SPA_API; page $SPA_ORIGIN/index.html?api=$SPA_API"
(
    cd examples/spa/test
    SPA_URL="$SPA_ORIGIN/index.html?api=$SPA_API" \
        API_URL="$SPA_API" \
        ACCESS_TTL=$SPA_ACCESS_TTL \
        SCREENSHOT="$ROOT/target/spa.png" \
        CHROMIUM="$CHROMIUM" \
        node --test --test-reporter=spec spa.test.mjs
)
echo "screenshots: target/spa.png, target/spa-logged-out.png, target/spa-mfa.png"

# ---------------------------------------------------------------------------------------------
step "4/4 API reference: GET /docs in Chromium, offline"
(
    cd examples/spa/test
    API_URL="$SDK_API" \
        SCREENSHOT="$ROOT/target/docs.png" \
        CHROMIUM="$CHROMIUM" \
        node --test --test-reporter=spec docs.test.mjs
)
echo "screenshot: target/docs.png"

step "clients: all four checks passed"
