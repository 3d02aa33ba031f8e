# Helpers for running the README's shell blocks exactly as printed. Source it.
#
# A block is the ```sh fence right after a `<!-- NAME -->` marker line. Its step comments promise
# statuses: the first number after the first `:` or `?` of a comment such as
# `# Sign up: 201 with a token response.` or `# Who am I? 200 with the user.`. The block itself
# prints the status of every request: curl with `-w '\n%{http_code}\n'` (or, where `$(…)` keeps
# the body, `-w '%{stderr}%{http_code}\n'`): a line of three digits; HTTPie with `--print=hb`:
# its `HTTP/1.1 201 Created` status line. Nothing is wrapped or added: the checks only read what
# the block printed.

# readme_block NAME: prints the block after `<!-- NAME -->` in README.md, or fails.
readme_block() {
    local name=$1
    awk -v marker="<!-- $name -->" '
        $0 == marker { armed = 1; next }
        armed && !inside { if ($0 == "```sh") { inside = 1; next } else { exit 1 } }
        inside && $0 == "```" { found = 1; exit }
        inside { print }
        END { if (!found) exit 1 }
    ' README.md || {
        echo "README.md has no \`<!-- $name -->\` marker followed by a closed \`\`\`sh block" >&2
        return 1
    }
}

# promised_statuses: the statuses the step comments of the block on stdin promise, one a line.
promised_statuses() {
    sed -nE 's/^#[^:?{]*[:?] ([1-5][0-9]{2})([^0-9].*)?$/\1/p'
}

# printed_statuses FILE: the statuses a block printed (its stdout and stderr, FILE), in order, one
# a line: lines of exactly three digits (curl's; no log or body line is one) and HTTPie status
# lines, searched anywhere in a line, since HTTPie ends a body without a newline when its output
# is not a terminal. Each request is a process of its own that finishes before the next starts,
# so the one stream keeps their order.
printed_statuses() {
    awk '
        /^[1-5][0-9][0-9]$/ { print; next }
        {
            line = $0
            while (match(line, /HTTP\/[0-9.]+ [1-5][0-9][0-9]/)) {
                print substr(line, RSTART + RLENGTH - 3, 3)
                line = substr(line, RSTART + RLENGTH)
            }
        }
    ' "$1"
}

# run_readme_block NAME CWD OUT SCRIPT [VAR=VALUE…]: runs SCRIPT (the block, after the caller's
# port substitution) with `bash -euo pipefail` in the directory CWD, stdin not a terminal (as in a
# script or CI), stdout and stderr together to the file OUT (outside CWD, so as not to litter
# it); shows that; then checks that it succeeded and printed, in order, exactly the statuses its
# comments promise. With VAR=VALUE arguments the block gets those variables alone (`env -i`),
# else the caller's environment. The block runs in a process group of its own, BLOCK_PGID:
# `kill -- -$BLOCK_PGID` stops whatever it left running.
BLOCK_PGID=
run_readme_block() {
    local name=$1 cwd=$2 out=$3 script=$4 expected actual status=0
    shift 4
    expected=$(promised_statuses <"$script")
    if [ -z "$expected" ]; then
        echo "the $name block promises no status in its step comments" >&2
        return 1
    fi
    local launch=()
    if [ "$#" -gt 0 ]; then
        launch=(env -i "$@")
    fi
    set -m # job control: the background job below gets a process group of its own
    (cd "$cwd" && exec "${launch[@]}" bash -euo pipefail "$script" </dev/null >"$out" 2>&1) &
    BLOCK_PGID=$!
    set +m
    wait "$BLOCK_PGID" || status=$?
    cat "$out"
    echo
    actual=$(printed_statuses "$out")
    if [ "$status" -ne 0 ]; then
        echo "the $name block failed, exit status $status (statuses so far: ${actual//$'\n'/ })" >&2
        return 1
    fi
    if [ "$actual" != "$expected" ]; then
        echo "the $name block printed the statuses: ${actual//$'\n'/ }" >&2
        echo "its step comments promise:           ${expected//$'\n'/ }" >&2
        return 1
    fi
    echo "statuses as promised: ${actual//$'\n'/ }"
}
