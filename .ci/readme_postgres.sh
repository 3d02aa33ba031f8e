#!/usr/bin/env bash
# The README's PostgreSQL recipe (the ```sh block after `<!-- recipe:postgres -->`), run exactly
# as printed against a throwaway cluster (.ci/postgres.sh), as a reader would paste it into a
# script: only its ports, 8080 and 8081, become free ones. Like the README tells readers, PGHOST,
# PGPORT and PGUSER point `createdb` and `postgres:///latchkey` at the server; the block gets
# those and PATH/HOME alone, nothing else of this environment. It runs in the repository root
# (it builds and runs target/release/latchkey) and must print the statuses its comments promise
# (.ci/readme_blocks.sh). Everything it started, the cluster and its instances, is stopped at the
# end, also when it fails; its instance logs (target/latchkey-PORT.log) are shown on failure and
# removed.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=never
source .ci/postgres.sh
source .ci/readme_blocks.sh

work=$(mktemp -d /tmp/latchkey-readme-pg.XXXXXX)
read -r port_a port_b < <(python3 -c '
import socket
a, b = socket.socket(), socket.socket()
a.bind(("127.0.0.1", 0)); b.bind(("127.0.0.1", 0))
print(a.getsockname()[1], b.getsockname()[1])')
logs=(target/latchkey-$port_a.log target/latchkey-$port_b.log)

cleanup() {
    local status=$?
    if [ -n "$BLOCK_PGID" ]; then
        kill -- -"$BLOCK_PGID" 2>/dev/null || true
    fi
    stop_postgres
    if [ "$status" -ne 0 ]; then
        for log in "${logs[@]}"; do
            [ -s "$log" ] && { printf '\n==> last lines of %s\n' "$log"; tail -n 30 "$log"; }
        done
    fi
    rm -f "${logs[@]}"
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT

cargo build --release --locked --quiet
start_postgres

readme_block recipe:postgres |
    sed -E "s/\b8080\b/$port_a/g; s/\b8081\b/$port_b/g" >"$work/recipe.sh"

# createdb comes with PostgreSQL's client programs; where only the server's bin directory has it
# (a cluster found under /usr/lib/postgresql), that directory goes last on PATH.
path=$PATH
command -v createdb >/dev/null 2>&1 || path=$PATH:$PG_BIN
block_env=(PATH="$path" HOME="$HOME" PGHOST=127.0.0.1 PGPORT="$PG_PORT" PGUSER=latchkey)
# What cargo needs to find the toolchain and to see the release build just made as fresh.
for var in CARGO_HOME RUSTUP_HOME RUSTUP_TOOLCHAIN RUSTFLAGS CARGO_TERM_COLOR TMPDIR; do
    if [ -n "${!var:-}" ]; then
        block_env+=("$var=${!var}")
    fi
done
before=$(git status --porcelain --untracked-files=all)
run_readme_block "PostgreSQL recipe" "$PWD" "$work/output" "$work/recipe.sh" "${block_env[@]}"

# The recipe ends by stopping both instances; nothing of it may still run once they have shut
# down (they finish in-flight requests first, none here).
for _ in $(seq 50); do
    pgrep -g "$BLOCK_PGID" >/dev/null || break
    sleep 0.1
done
if pgrep -g "$BLOCK_PGID" >/dev/null; then
    echo "the PostgreSQL recipe left processes running:" >&2
    pgrep -a -g "$BLOCK_PGID" >&2
    exit 1
fi
echo "the PostgreSQL recipe stopped everything it started"

# Nor may it leave files in the repository beyond its logs under target/ (ignored, and removed
# on exit).
after=$(git status --porcelain --untracked-files=all)
if [ "$after" != "$before" ]; then
    echo "the PostgreSQL recipe changed the work tree:" >&2
    diff <(printf '%s\n' "$before") <(printf '%s\n' "$after") >&2 || true
    exit 1
fi
