# Sourced by the CI scripts that start servers of their own (clients.sh, resource_servers.sh).
#
# `ci_servers NAME` clears the caller's LATCHKEY_* settings, so that none may change the servers
# started here; makes the work directory WORK (each server logs to a WORK/*.log); and traps EXIT,
# INT and TERM to stop every process whose pid the script adds to PIDS (TERM, then KILL after
# 10 s), show the last 30 lines of every WORK/*.log when the script failed, and remove WORK.
# `step` titles a stage; `fail` ends the script with a message naming it.

step() { printf '\n==> %s\n' "$*"; }

fail() {
    printf '%s.sh: %s\n' "$CI_NAME" "$*" >&2
    exit 1
}

ci_servers() {
    CI_NAME=$1
    while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep -E '^LATCHKEY_' || true)
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/latchkey-$CI_NAME.XXXXXX")
    PIDS=()
    trap ci_cleanup EXIT INT TERM
}

ci_cleanup() {
    local status=$? pid log
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ "$status" -ne 0 ]; then
        for log in "$WORK"/*.log; do
            [ -s "$log" ] || continue
            printf '\n--- last lines of %s ---\n' "$(basename "$log")" >&2
            tail -n 30 "$log" >&2
        done
    fi
    rm -rf "$WORK"
    exit "$status"
}
