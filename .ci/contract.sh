#!/usr/bin/env bash
# The contract, proven by real clients. Builds the release binary, starts it on a fresh SQLite
# database on a free loopback port, and checks openapi.yaml against it:
#   1. openapi-spec-validator and Redocly lint: the document itself is valid OpenAPI 3.0;
#   2. the server serves exactly openapi.yaml at GET /openapi.yaml;
#   3. the README's curl, second-factor and HTTPie walkthroughs run exactly as printed (only the
#      port changes), and the statuses they print are the ones their step comments promise
#      ("# Sign up: 201 ...");
#   4. schemathesis, every check, all four phases (examples, coverage, fuzzing, and the stateful
#      phase following the spec's links), authenticated as an admin (.ci/contract_hooks.py).
# Tools install themselves into target/ci-venv (created only when missing, kept between runs) and
# the npx cache. Takes about CONTRACT_MAX_TIME (schemathesis' time budget, default 180 s) plus a
# few seconds once the release build and the tools are there.
#
# Environment: CONTRACT_MAX_TIME (seconds, default 180), CONTRACT_SEED (default fixed, so a run
# can be repeated), CONTRACT_KEEP=1 keeps the work directory (server log, database).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

export CARGO_TERM_COLOR=never

# Versions this script was verified with.
SCHEMATHESIS_VERSION=4.32.5
HTTPIE_VERSION=3.2.4
SPEC_VALIDATOR_VERSION=0.9.0
REDOCLY_VERSION=2.77.0

MAX_TIME=${CONTRACT_MAX_TIME:-180}
SEED=${CONTRACT_SEED:-20251124}

step() { printf '\n==> %s\n' "$*"; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/latchkey-contract.XXXXXX")
SERVER_PID=
cleanup() {
    local status=$?
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [ "$status" -ne 0 ] && [ -s "$WORK/server.log" ]; then
        printf '\n==> last lines of the server log (%s)\n' "$WORK/server.log"
        tail -n 40 "$WORK/server.log"
    fi
    if [ "${CONTRACT_KEEP:-}" = 1 ]; then
        echo "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$status"
}
trap cleanup EXIT

step "cargo build --release --locked"
cargo build --release --locked
BIN=$ROOT/target/release/latchkey

step "tools: schemathesis $SCHEMATHESIS_VERSION, httpie $HTTPIE_VERSION, openapi-spec-validator $SPEC_VALIDATOR_VERSION (target/ci-venv)"
VENV=$ROOT/target/ci-venv
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
PINNED="schemathesis==$SCHEMATHESIS_VERSION httpie==$HTTPIE_VERSION openapi-spec-validator==$SPEC_VALIDATOR_VERSION"
# shellcheck disable=SC2086 # PINNED is a list of words
if ! "$VENV/bin/python" - $PINNED <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version

for pin in sys.argv[1:]:
    name, wanted = pin.split("==")
    try:
        if version(name) != wanted:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
EOF
then
    # shellcheck disable=SC2086
    "$VENV/bin/pip" install --quiet --disable-pip-version-check $PINNED
fi

# The second-factor walkthrough computes its codes with oathtool (Debian's package).
if ! command -v oathtool >/dev/null; then
    step "install: oathtool"
    SUDO=()
    [ "$(id -u)" -eq 0 ] || SUDO=(sudo)
    "${SUDO[@]}" apt-get update
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -o DPkg::Lock::Timeout=600 --no-install-recommends oathtool
fi

step "openapi-spec-validator openapi.yaml"
"$VENV/bin/openapi-spec-validator" openapi.yaml

step "redocly lint openapi.yaml (@redocly/cli@$REDOCLY_VERSION)"
REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
    npx --yes "@redocly/cli@$REDOCLY_VERSION" lint openapi.yaml

step "start latchkey on a fresh SQLite database"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
ADMIN_EMAIL=root@example.com
# The spec's example password: the examples phase then gets past the password checks of
# DELETE /v1/me, PUT /v1/me/password and PATCH /v1/me with this admin's token.
ADMIN_PASSWORD='correct horse battery staple'
# Exported: `latchkey admin create`, run by the schemathesis hooks, must use the same database.
export DATABASE_URL=sqlite://$WORK/latchkey.db
export LATCHKEY_ADDR=127.0.0.1:$PORT
LATCHKEY_JWT_SECRET=$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')
export LATCHKEY_JWT_SECRET
export LATCHKEY_BCRYPT_COST=4
# Rate limits off, or the fuzzer's thousands of logins from one address would get 429s. An
# environment variable, not a flag: a build without rate limiting ignores it.
export LATCHKEY_RATE_LIMITS=false
export LATCHKEY_METRICS_ON_API=true
# A day: the fuzzer's admin token must not expire during the run (it is renewed on a 401 anyway).
export LATCHKEY_ACCESS_TTL=86400
export LATCHKEY_BOOTSTRAP_ADMIN_EMAIL=$ADMIN_EMAIL
export LATCHKEY_BOOTSTRAP_ADMIN_PASSWORD=$ADMIN_PASSWORD
export RUST_LOG=${RUST_LOG:-warn}
"$BIN" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
    if curl -fsS -o /dev/null "$URL/healthz" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "latchkey exited before it answered /healthz" >&2
        exit 1
    fi
    sleep 0.1
done
curl -fsS -o /dev/null "$URL/healthz"
echo "listening on $URL"

step "GET /openapi.yaml serves openapi.yaml"
curl -fsS "$URL/openapi.yaml" | cmp - openapi.yaml

# The README's walkthroughs, run exactly as printed (.ci/readme_blocks.sh): each is the ```sh
# block right after its `<!-- walkthrough:NAME -->` marker, and the only change is the port,
# `localhost:8080` becoming the test server's. Nothing wraps curl or http: the blocks print the
# status of every request themselves, and those must be, in order, the statuses the step
# comments promise. Standard input is not a terminal, as in a script.
source .ci/readme_blocks.sh

run_walkthrough() {
    local name=$1 dir
    dir=$WORK/walkthrough-$name
    mkdir -p "$dir"
    readme_block "walkthrough:$name" | sed -E "s/(localhost|127\.0\.0\.1):8080\b/\1:$PORT/g" \
        >"$dir/walkthrough.sh"
    PATH="$VENV/bin:$PATH" HTTPIE_CONFIG_DIR=$dir/httpie \
        run_readme_block "$name walkthrough" "$dir" "$dir/output" "$dir/walkthrough.sh"
}

step "README walkthrough: curl"
run_walkthrough curl

# Enrolls the curl walkthrough's account: it runs after that one, as the README says.
step "README walkthrough: second factor (curl and oathtool)"
run_walkthrough mfa

step "README walkthrough: HTTPie"
run_walkthrough httpie

# Every check schemathesis has, nothing excluded. The hooks file authenticates every request as
# an admin (logging in again, or making a new admin, when the fuzzer has revoked, demoted,
# disabled or deleted the one it used) and teaches schemathesis the two rules JSON Schema cannot
# state (passwords are at most 72 UTF-8 *bytes*; a list cursor must be one the server issued)
# plus one that depends on server state (a changed email needs current_password); each is
# explained, narrowly, in .ci/contract_hooks.py, and the summary counts what they drop.
step "schemathesis $SCHEMATHESIS_VERSION: all checks, all phases, ${MAX_TIME}s, seed $SEED"
(
    # schemathesis and hypothesis keep caches in the working directory: not in the repository.
    cd "$WORK"
    CONTRACT_URL=$URL \
        CONTRACT_ADMIN_EMAIL=$ADMIN_EMAIL \
        CONTRACT_ADMIN_PASSWORD=$ADMIN_PASSWORD \
        CONTRACT_BIN=$BIN \
        PYTHONPATH=$ROOT/.ci \
        SCHEMATHESIS_HOOKS=contract_hooks \
        "$VENV/bin/schemathesis" run "$ROOT/openapi.yaml" \
        --url "$URL" \
        --checks all \
        --phases examples,coverage,fuzzing,stateful \
        --max-time "$MAX_TIME" \
        --seed "$SEED" \
        --generation-database none \
        --workers 2 \
        --request-timeout 10 \
        --no-color
)

step "contract: all checks passed"
