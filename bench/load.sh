#!/usr/bin/env bash
# Load test of the release binary on this machine, in one command from a clean checkout:
#
#   bench/load.sh                                        # SQLite (a fresh file in a temp dir)
#   DATABASE_URL=postgres://user@127.0.0.1:5432/db bench/load.sh   # and PostgreSQL too
#
# Installs wrk (Debian) when it is missing, builds the release binary and two example programs,
# then, on each database: seeds one account with LOAD_SESSIONS sessions (at bcrypt cost 4, so it
# takes seconds), measures the database's own rotate transaction (examples/rotate_rate.rs),
# restarts the server at the default bcrypt cost 12 with rate limits off and a fixed secret, and
# runs time-bounded wrk loads against 127.0.0.1 only: /healthz, /v1/auth/verify, GET /v1/me,
# refresh (every request presents a refresh token never presented before), login, a paced verify
# load alone and while logins saturate the CPU, and 256 connections for the peak RSS; then
# refresh and login again with every rate limit checked (shared in the database on PostgreSQL)
# but set far above the load, for the cost of counting; on SQLite, the verify load again with
# EdDSA and ES256 access tokens (LATCHKEY_JWT_ALG). Raw bcrypt
# comes from examples/bcrypt_rate.rs (the same crate, all cores). On SQLite it also compares
# hashing-pool sizes (LOAD_POOL_MATRIX). Prints the tables and writes them to
# target/load/report.md. The PostgreSQL suite writes accounts named load-*@example.com into the
# database it is given: give it a throwaway one.
#
# Knobs: LOAD_SECONDS (10, each throughput run), LOAD_LOGIN_SECONDS (20), LOAD_SESSIONS (2000),
# LOAD_POOL_MATRIX ("1:2", extra HASH_THREADS:WORKERS pairs to compare with the default
# one; "" for none), LOAD_RUST_LOG (info, the server's default), LOAD_WAIT_QUIET (0: seconds to
# wait, before each measurement, for other processes to leave the CPU), LOAD_KEEP=1 keeps the
# work dir. Each measurement is reported with the share of the CPU other processes took during
# it: on a shared machine, read the figures with that column.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_RUN=${LOAD_SECONDS:-10}
LOGIN_SECONDS=${LOAD_LOGIN_SECONDS:-20}
SESSIONS=${LOAD_SESSIONS:-2000}
POOL_MATRIX=${LOAD_POOL_MATRIX-1:2}
SERVER_LOG_LEVEL=${LOAD_RUST_LOG:-info}
WAIT_QUIET=${LOAD_WAIT_QUIET:-0}
REPORT=target/load/report.md
SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
PASSWORD='correct horse battery staple'
CPUS=$(nproc)
BIN=target/release/latchkey
RUN_ID="$(date +%s)-$$"
PG_URL=""
case "${DATABASE_URL:-}" in
  postgres://* | postgresql://*) PG_URL=$DATABASE_URL ;;
esac
# Nothing from the caller's environment changes the server under test.
while read -r name; do unset "$name"; done < <(compgen -e | grep '^LATCHKEY_' || true)
unset DATABASE_URL RUST_LOG

say() { printf '\n==> %s\n' "$*" >&2; }
die() { echo "load.sh: $*" >&2; exit 1; }

# --- tools ---------------------------------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
  say "installing wrk (Debian)"
  [ "$(id -u)" = 0 ] || die "wrk is missing and installing it needs root: apt-get install wrk"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
for tool in curl python3 cargo; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is needed"
done

say "building the release binary and the measuring examples"
cargo build --release --quiet --bin latchkey --example bcrypt_rate --example rotate_rate

WORK=$(mktemp -d /tmp/latchkey-load.XXXXXX)
RESULTS=$WORK/results.txt
: >"$RESULTS"
SERVER_PID=""
BACKGROUND_PIDS=()
cleanup() {
  local pid
  for pid in "${BACKGROUND_PIDS[@]}" $SERVER_PID; do
    kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [ "${LOAD_KEEP:-0}" = 1 ]; then
    echo "work dir kept: $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

record() { echo "$*" >>"$RESULTS"; }

# --- the machine, and how busy it is with other work ---------------------------------------------
cpu_busy_ticks() { awk '/^cpu /{ print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
cpu_busy_percent() { # over $1 seconds, all cores
  local before after
  before=$(cpu_busy_ticks)
  sleep "$1"
  after=$(cpu_busy_ticks)
  echo $(((after - before) * 100 / ($1 * $(getconf CLK_TCK) * CPUS)))
}
# CPU time of this script's finished children (servers, wrk, examples), in ticks, into
# CHILD_TICKS. Not in a subshell: `times` there would count the subshell's children only.
read_child_ticks() {
  times >"$WORK/times"
  CHILD_TICKS=$(tail -n 1 "$WORK/times" | awk -v hz="$(getconf CLK_TCK)" '{
    total = 0
    for (i = 1; i <= 2; i++) { split($i, p, /[ms]/); total += p[1] * 60 + p[2] }
    printf "%d\n", total * hz }')
}

# Before a measurement: wait (up to LOAD_WAIT_QUIET seconds) until other processes leave the CPU.
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

# The CPU ticks of the running server, all its threads.
server_ticks() {
  if [ -n "$SERVER_PID" ] && [ -r "/proc/$SERVER_PID/stat" ]; then
    sed 's/.*) //' "/proc/$SERVER_PID/stat" | awk '{ print $12 + $13 }'
  else
    echo 0
  fi
}

# phase_begin / phase_end bracket one measurement; phase_end sets PHASE_OTHERS, the percentage of
# the machine's CPU that processes other than this script's (server, wrk, examples) took meanwhile.
phase_begin() {
  wait_quiet
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
}

busy=$(cpu_busy_percent 3)
record "machine nproc=$CPUS cpu=$(awk -F': ' '/^model name/{ gsub(/ /, "_", $2); print $2; exit }' /proc/cpuinfo)" \
  "mem_gib=$(awk '/^MemTotal/{ printf "%.1f", $2 / 1048576 }' /proc/meminfo)" \
  "busy_before=$busy loadavg_before=$(cut -d' ' -f1 /proc/loadavg)"

# --- the server ----------------------------------------------------------------------------------
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server NAME DATABASE_URL BCRYPT_COST [VAR=VALUE…]
start_server() {
  local name=$1 url=$2 cost=$3
  shift 3
  PORT=$(free_port)
  BASE="http://127.0.0.1:$PORT"
  SERVER_LOG=$WORK/server-$name.log
  # One account holds every seeded session: the per-user cap (100 by default) would end most.
  env LATCHKEY_ADDR="127.0.0.1:$PORT" DATABASE_URL="$url" LATCHKEY_JWT_SECRET="$SECRET" \
    LATCHKEY_RATE_LIMITS=false LATCHKEY_MAX_SESSIONS_PER_USER=10000 \
    LATCHKEY_BCRYPT_COST="$cost" RUST_LOG="$SERVER_LOG_LEVEL" "$@" \
    "$BIN" serve >"$SERVER_LOG" 2>&1 &
  SERVER_PID=$!
  local attempt
  for attempt in $(seq 1 150); do
    if curl -fsS -o /dev/null "$BASE/healthz" 2>/dev/null; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 20 "$SERVER_LOG" >&2; die "the server did not start"; }
    sleep 0.2
  done
  die "the server did not answer /healthz within 30 s"
}

stop_server() {
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" || true
  SERVER_PID=""
}

# What the server's log says about the requests it answered: 5xx answers, and warnings and errors
# other than those of the mail outbox (without LATCHKEY_SMTP_URL every mail is a warning).
record_log() { # SUITE LABEL
  local plain=$WORK/plain.log five_xx warnings errors
  sed 's/\x1b\[[0-9;]*m//g' "$SERVER_LOG" | grep -v 'latchkey::mail' >"$plain" || true
  five_xx=$(grep -cE ' status=5[0-9][0-9]( |$)' "$plain" || true)
  warnings=$(grep -cE '^[^ ]+ +WARN ' "$plain" || true)
  errors=$(grep -cE '^[^ ]+ +ERROR ' "$plain" || true)
  record "$1 $2 five_xx=$five_xx warnings=$warnings errors=$errors"
  if [ "$warnings" != 0 ] || [ "$errors" != 0 ] || [ "$five_xx" != 0 ]; then
    grep -E '^[^ ]+ +(WARN|ERROR) | status=5[0-9][0-9]( |$)' "$plain" | head -n 5 | cut -c1-400 \
      >"$WORK/log-excerpt-$1-$2"
  fi
  rm -f "$plain"
  [ "${LOAD_KEEP:-0}" = 1 ] || rm -f "$SERVER_LOG"
}

# wrk_run SUITE LABEL THREADS CONNECTIONS SECONDS [VAR=VALUE…]: one bounded load, one RESULT line.
wrk_run() {
  local suite=$1 label=$2 threads=$3 connections=$4 duration=$5
  shift 5
  local out=$WORK/wrk-$suite-$label.txt bracket=1
  if [ "${IN_PHASE:-0}" = 1 ]; then bracket=0; fi
  [ "$bracket" = 0 ] || phase_begin
  env LOAD_THREADS="$threads" "$@" wrk -t"$threads" -c"$connections" -d"${duration}s" \
    --timeout 10s -s bench/load.lua "$BASE" >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed"; }
  [ "$bracket" = 0 ] || phase_end
  local result
  result=$(grep '^RESULT ' "$out" | cut -d' ' -f2-) || { cat "$out" >&2; die "wrk printed no result"; }
  if [ "$bracket" = 1 ]; then
    result="$result busy_before=$PHASE_BUSY others=$PHASE_OTHERS"
  fi
  record "$suite $label conns=$connections $result"
  echo "   $label (c=$connections): $(echo "$result" | grep -oE '(rps|p99_ms|non2xx|others)=[^ ]+' | tr '\n' ' ')" >&2
}

GET_ME=(LOAD_MODE=get LOAD_PATH=/v1/me)
PACED_VERIFY=(LOAD_MODE=get LOAD_PATH=/v1/auth/verify LOAD_PACE_MS=10)

# login_and_verify SUITE SUFFIX: a login load saturating the hashing pool and, from its third
# second on, the paced verify load.
login_and_verify() {
  local suite=$1 suffix=$2
  phase_begin
  env LOAD_MODE=login LOAD_EMAIL="$LOGIN_EMAIL" LOAD_PASSWORD="$PASSWORD" \
    wrk -t1 -c8 -d"$((SECONDS_PER_RUN + 4))s" --timeout 10s -s bench/load.lua "$BASE" \
    >"$WORK/wrk-$suite-login_bg$suffix.txt" 2>&1 &
  local login_pid=$!
  BACKGROUND_PIDS+=("$login_pid")
  sleep 2
  IN_PHASE=1 wrk_run "$suite" "verify_paced_under_login$suffix" 1 16 "$SECONDS_PER_RUN" \
    LOAD_ACCESS_TOKEN="$ACCESS" "${PACED_VERIFY[@]}"
  wait "$login_pid" || die "the background login load failed"
  phase_end
  local extra="busy_before=$PHASE_BUSY others=$PHASE_OTHERS"
  sed -i "\$s/\$/ $extra/" "$RESULTS"
  record "$suite login_during_verify$suffix conns=8 $(grep '^RESULT ' "$WORK/wrk-$suite-login_bg$suffix.txt" | cut -d' ' -f2-) $extra"
}

# --- raw bcrypt ----------------------------------------------------------------------------------
say "raw bcrypt at cost 12: $CPUS threads, then 1"
# measured CPUS COMMAND…: runs a measuring example inside a phase, prints its line and the phase.
measured() {
  local line
  phase_begin
  line=$("$@" | cut -d' ' -f2-)
  phase_end
  echo "$line busy_before=$PHASE_BUSY others=$PHASE_OTHERS"
}
record "raw $(measured target/release/examples/bcrypt_rate "$CPUS" 12 8)"
record "raw1 $(measured target/release/examples/bcrypt_rate 1 12 8)"

# --- one database --------------------------------------------------------------------------------
suite() { # NAME DATABASE_URL
  local name=$1 url=$2
  local started_ticks started_at pool_email
  read_child_ticks
  started_ticks=$(($(cpu_busy_ticks) - CHILD_TICKS))
  started_at=$(date +%s)
  pool_email="load-pool-$RUN_ID@example.com"
  LOGIN_EMAIL="load-login-$RUN_ID@example.com"

  say "[$name] seeding $SESSIONS sessions at bcrypt cost 4"
  start_server "$name-seed" "$url" 4
  ACCESS=$(python3 bench/seed.py "$BASE" "$pool_email" "$PASSWORD" "$SESSIONS" "$WORK/refresh-$name.txt")
  stop_server

  say "[$name] the database's own rotate transaction, 8 clients"
  record "$name rotate $(measured target/release/examples/rotate_rate "$url" "$pool_email" 8 "$SECONDS_PER_RUN")"

  say "[$name] the server at bcrypt cost 12, defaults otherwise"
  start_server "$name" "$url" 12
  curl -fsS -o /dev/null -H 'content-type: application/json' "$BASE/v1/auth/signup" \
    -d "{\"email\":\"$LOGIN_EMAIL\",\"password\":\"$PASSWORD\"}" || die "signup failed"
  wrk -t2 -c64 -d2s -s bench/load.lua "$BASE" >/dev/null 2>&1 # warm-up
  wrk_run "$name" healthz 2 64 "$SECONDS_PER_RUN" LOAD_MODE=get LOAD_PATH=/healthz
  wrk_run "$name" verify 2 64 "$SECONDS_PER_RUN" LOAD_ACCESS_TOKEN="$ACCESS" LOAD_MODE=get LOAD_PATH=/v1/auth/verify
  wrk_run "$name" me 2 64 "$SECONDS_PER_RUN" LOAD_ACCESS_TOKEN="$ACCESS" "${GET_ME[@]}"
  wrk_run "$name" refresh 2 64 "$SECONDS_PER_RUN" LOAD_MODE=refresh LOAD_REFRESH_POOL="$WORK/refresh-$name.txt"
  wrk_run "$name" verify_paced 1 16 "$SECONDS_PER_RUN" LOAD_ACCESS_TOKEN="$ACCESS" "${PACED_VERIFY[@]}"
  wrk_run "$name" login 1 8 "$LOGIN_SECONDS" LOAD_MODE=login LOAD_EMAIL="$LOGIN_EMAIL" LOAD_PASSWORD="$PASSWORD"
  login_and_verify "$name" ""
  record "$name rss_before_256 $(awk '/^Vm(HWM|RSS)/{ printf "%s_kb=%s ", tolower($1), $2 }' "/proc/$SERVER_PID/status" | tr -d ':')"
  wrk_run "$name" mix_256 2 256 "$SECONDS_PER_RUN" LOAD_ACCESS_TOKEN="$ACCESS" LOAD_MODE=mix
  record "$name rss_after_256 $(awk '/^Vm(HWM|RSS)/{ printf "%s_kb=%s ", tolower($1), $2 }' "/proc/$SERVER_PID/status" | tr -d ':')"
  stop_server
  record_log "$name" log

  # The same refresh and login loads with every limit checked (on PostgreSQL: in the database,
  # shared by all instances) but set far above the load, so nothing is refused: the cost of
  # counting.
  say "[$name] refresh and login with the rate limits on"
  start_server "$name-seed-limited" "$url" 4
  python3 bench/seed.py "$BASE" "limited-$pool_email" "$PASSWORD" "$SESSIONS" "$WORK/refresh-$name-limited.txt" >/dev/null
  stop_server
  start_server "$name-limited" "$url" 12 LATCHKEY_RATE_LIMITS=true \
    LATCHKEY_RATE_LOGIN_PER_IP=1000000/s LATCHKEY_RATE_LOGIN_PER_ACCOUNT=1000000/s \
    LATCHKEY_RATE_REFRESH_PER_IP=1000000/s
  wrk_run "$name" refresh_limited 2 64 "$SECONDS_PER_RUN" LOAD_MODE=refresh LOAD_REFRESH_POOL="$WORK/refresh-$name-limited.txt"
  wrk_run "$name" login_limited 1 8 "$LOGIN_SECONDS" LOAD_MODE=login LOAD_EMAIL="$LOGIN_EMAIL" LOAD_PASSWORD="$PASSWORD"
  stop_server
  record_log "$name" log_limited

  # Access tokens signed with a key pair (issue 17): the same verify load with each algorithm, on
  # SQLite (the algorithm's cost does not depend on the database).
  if [ "$name" = sqlite ]; then
    local alg token
    for alg in EdDSA ES256; do
      say "[$name] verify with LATCHKEY_JWT_ALG=$alg"
      start_server "$name-$alg" "$url" 4 LATCHKEY_JWT_ALG="$alg"
      token=$(curl -fsS -H 'content-type: application/json' "$BASE/v1/auth/login" \
        -d "{\"email\":\"$LOGIN_EMAIL\",\"password\":\"$PASSWORD\"}" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])') ||
        die "login with $alg failed"
      wrk -t2 -c64 -d2s -s bench/load.lua "$BASE" >/dev/null 2>&1 # warm-up
      wrk_run "$name" "verify_$alg" 2 64 "$SECONDS_PER_RUN" LOAD_ACCESS_TOKEN="$token" LOAD_MODE=get LOAD_PATH=/v1/auth/verify
      stop_server
    done
  fi

  if [ "$name" = sqlite ] && [ -n "$POOL_MATRIX" ]; then
    local pair hash_threads workers
    for pair in $POOL_MATRIX; do
      hash_threads=${pair%%:*}
      workers=${pair#*:}
      [ "$workers" = "$pair" ] && workers=$CPUS
      say "[$name] hashing pool: LATCHKEY_HASH_THREADS=$hash_threads LATCHKEY_WORKERS=$workers"
      start_server "$name-pool-$hash_threads-$workers" "$url" 12 \
        LATCHKEY_HASH_THREADS="$hash_threads" LATCHKEY_WORKERS="$workers"
      wrk_run "$name" "verify_paced@$hash_threads:$workers" 1 16 "$SECONDS_PER_RUN" LOAD_ACCESS_TOKEN="$ACCESS" "${PACED_VERIFY[@]}"
      wrk_run "$name" "login@$hash_threads:$workers" 1 8 "$LOGIN_SECONDS" LOAD_MODE=login LOAD_EMAIL="$LOGIN_EMAIL" LOAD_PASSWORD="$PASSWORD"
      login_and_verify "$name" "@$hash_threads:$workers"
      stop_server
      record_log "$name" "log@$hash_threads:$workers"
    done
  fi

  local ended_ticks wall
  read_child_ticks
  ended_ticks=$(($(cpu_busy_ticks) - CHILD_TICKS))
  wall=$(($(date +%s) - started_at))
  record "$name others cpu_percent=$(((ended_ticks - started_ticks) * 100 / (wall * $(getconf CLK_TCK) * CPUS))) seconds=$wall loadavg_after=$(cut -d' ' -f1 /proc/loadavg)"
}

suite sqlite "sqlite://$WORK/load.db"
if [ -n "$PG_URL" ]; then
  suite postgres "$PG_URL"
fi

# The ceiling again at the end: the better of the two counts (other work only ever lowers it).
say "raw bcrypt at cost 12 again: $CPUS threads"
record "raw_end $(measured target/release/examples/bcrypt_rate "$CPUS" 12 8)"

# --- the report ----------------------------------------------------------------------------------
mkdir -p "$(dirname "$REPORT")"
python3 - "$RESULTS" "$CPUS" "$POOL_MATRIX" >"$REPORT" <<'PY'
import sys

results_file, cpus, matrix = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
rows = {}
for line in open(results_file):
    parts = line.split()
    fields = dict(p.split("=", 1) for p in parts if "=" in p)
    keys = [p for p in parts if "=" not in p]
    rows[tuple(keys)] = fields


def get(*key):
    return rows.get(tuple(key), {})


def num(value):
    return float(value) if value not in (None, "") else float("nan")


machine = get("machine")
raw_start, raw_end = num(get("raw").get("per_second")), num(get("raw_end").get("per_second"))
raw = max(raw_start, raw_end)
raw1 = num(get("raw1").get("per_second"))
field_notes_rotate = {"sqlite": 2400.0, "postgres": 4900.0}
out = []
w = out.append
w(f"Machine: {machine.get('nproc')} CPUs, {machine.get('cpu', '?').replace('_', ' ')}, "
  f"{machine.get('mem_gib')} GiB; CPU {machine.get('busy_before')}% busy and load average "
  f"{machine.get('loadavg_before')} just before the run.")
w(f"Raw bcrypt, cost 12 (examples/bcrypt_rate): {raw:.2f}/s on {cpus} threads (the better of "
  f"{raw_start:.2f}/s at the start and {raw_end:.2f}/s at the end; other processes took "
  f"{get('raw').get('others', '?')}% and {get('raw_end').get('others', '?')}% of the CPU meanwhile), "
  f"{raw1:.2f}/s on 1.")
for suite in ("sqlite", "postgres"):
    if not get(suite, "healthz"):
        continue
    healthz, verify, me = get(suite, "healthz"), get(suite, "verify"), get(suite, "me")
    refresh, login = get(suite, "refresh"), get(suite, "login")
    paced, under = get(suite, "verify_paced"), get(suite, "verify_paced_under_login")
    rotate, rss = get(suite, "rotate"), get(suite, "rss_after_256")
    others, log = get(suite, "others"), get(suite, "log")
    h = num(healthz["rps"])
    rotate_rate = num(rotate.get("per_second"))
    peak_mb = num(rss.get("vmhwm_kb")) / 1024
    w("")
    w(f"### {suite}")
    w("")
    w("| Ratio | Measured | Target | Holds |")
    w("| --- | --- | --- | --- |")

    def ratio(name, value, target, holds, detail):
        verdict = "–" if holds is None else ("yes" if holds else "**no**")
        w(f"| {name} | {value} ({detail}) | {target} | {verdict} |")

    v = num(verify["rps"]) / h
    ratio("verify / healthz throughput", f"{v:.2f}", "≥ 0.75", v >= 0.75,
          f"{num(verify['rps']):,.0f} vs {h:,.0f} req/s")
    m = num(me["rps"]) / h
    me_target = 0.5 if suite == "sqlite" else 0.3
    ratio("me / healthz throughput", f"{m:.2f}", f"≥ {me_target}", m >= me_target,
          f"{num(me['rps']):,.0f} req/s")
    l = num(login["rps"]) / raw
    ratio("login / raw bcrypt", f"{l:.2f}", "≥ 0.9", l >= 0.9,
          f"{num(login['rps']):.2f} vs {raw:.2f}/s")
    p = num(under["p99_ms"]) / num(paced["p99_ms"])
    ratio("verify p99 under login load / alone", f"{p:.1f}", "≤ 10", p <= 10,
          f"{num(under['p99_ms']):.2f} vs {num(paced['p99_ms']):.2f} ms")
    r = num(refresh["rps"]) / rotate_rate
    ratio("refresh / DB rotate transaction", f"{r:.2f}", "≥ 0.5", r >= 0.5,
          f"{num(refresh['rps']):,.0f} vs {rotate_rate:,.0f}/s measured, 8 clients; "
          f"{num(refresh['rps']) / field_notes_rotate[suite]:.2f} of the field notes' "
          f"{field_notes_rotate[suite]:,.0f}/s")
    refresh_limited, login_limited = get(suite, "refresh_limited"), get(suite, "login_limited")
    if refresh_limited:
        rl = num(refresh_limited["rps"]) / num(refresh["rps"])
        ratio("refresh, limits on / off", f"{rl:.2f}", "≥ 0.9", rl >= 0.9,
              f"{num(refresh_limited['rps']):,.0f} vs {num(refresh['rps']):,.0f} req/s")
        ll = num(login_limited["rps"]) / num(login["rps"])
        ratio("login, limits on / off", f"{ll:.2f}", "≥ 0.9", ll >= 0.9,
              f"{num(login_limited['rps']):.2f} vs {num(login['rps']):.2f}/s")
    for alg in ("EdDSA", "ES256"):
        by_alg = get(suite, f"verify_{alg}")
        if by_alg:
            va = num(by_alg["rps"]) / num(verify["rps"])
            ratio(f"verify {alg} / HS256 throughput", f"{va:.2f}", "–", None,
                  f"{num(by_alg['rps']):,.0f} vs {num(verify['rps']):,.0f} req/s")
    ratio("peak RSS at 256 connections", f"{peak_mb:.1f} MB", "≤ 40 MB", peak_mb <= 40,
          "VmHWM over the whole run")
    w("")
    w("| Load | Connections | Requests/s | p50 ms | p99 ms | max ms | non-2xx | socket errors "
      f"| statuses | others' CPU{' (PostgreSQL in it)' if suite == 'postgres' else ''} |")
    w("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, title in [
        ("healthz", "GET /healthz"),
        ("verify", "GET /v1/auth/verify"),
        ("verify_EdDSA", "GET /v1/auth/verify, EdDSA tokens"),
        ("verify_ES256", "GET /v1/auth/verify, ES256 tokens"),
        ("me", "GET /v1/me"),
        ("refresh", "POST /v1/auth/refresh"),
        ("refresh_limited", "POST /v1/auth/refresh, limits on"),
        ("login", "POST /v1/auth/login"),
        ("login_limited", "POST /v1/auth/login, limits on"),
        ("verify_paced", "verify, paced (10 ms pause per connection)"),
        ("verify_paced_under_login", "the same, during a login load"),
        ("login_during_verify", "that login load"),
        ("mix_256", "GET /v1/me + verify, alternating"),
    ]:
        row = get(suite, label)
        if not row:
            continue
        socket_errors = sum(int(row.get(k, 0)) for k in
                            ("connect_errors", "read_errors", "write_errors", "timeouts"))
        w(f"| {title} | {row['conns']} | {num(row['rps']):,.1f} | {num(row['p50_ms']):.2f} | "
          f"{num(row['p99_ms']):.2f} | {num(row['max_ms']):.1f} | {row['non2xx']} | {socket_errors} | "
          f"{row.get('statuses', '-')} | {row.get('others', '?')}% |")
    before = get(suite, "rss_before_256")
    w("")
    w(f"Server RSS: {num(before.get('vmrss_kb')) / 1024:.1f} MB before the 256-connection load, "
      f"{num(rss.get('vmrss_kb')) / 1024:.1f} MB after it, peak {peak_mb:.1f} MB. "
      f"Server log: {log.get('five_xx')} answers 5xx, {log.get('warnings')} warnings, "
      f"{log.get('errors')} errors. DB rotate: {rotate.get('rotations')} rotations, "
      f"{rotate.get('failures')} failures, others' CPU {rotate.get('others', '?')}%.")
    w(f"Other processes used {others.get('cpu_percent')}% of the machine's CPU during this suite "
      f"({others.get('seconds')} s{', PostgreSQL included' if suite == 'postgres' else ''}); "
      f"load average {others.get('loadavg_after')} at its end.")
    if suite == "sqlite" and matrix:
        w("")
        w("Hashing pool (SQLite, bcrypt cost 12; login load: 8 connections; verify: 16 "
          "connections paced at 10 ms):")
        w("")
        w("| LATCHKEY_HASH_THREADS:WORKERS | login/s alone | vs raw bcrypt (all cores) | "
          "verify p99 alone ms | verify p99 under login ms | ratio | verify/s under login | "
          "login/s under verify | others' CPU |")
        w("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        entries = [("", f"{cpus}:{cpus} (default)")] + [
            ("@" + (e if ":" in e else f"{e}:{cpus}"), e if ":" in e else f"{e}:{cpus}")
            for e in matrix]
        for suffix, title in entries:
            lg, pa = get(suite, "login" + suffix), get(suite, "verify_paced" + suffix)
            un, lv = get(suite, "verify_paced_under_login" + suffix), get(suite, "login_during_verify" + suffix)
            if not lg:
                continue
            w(f"| {title} | {num(lg['rps']):.2f} | {num(lg['rps']) / raw:.2f} | "
              f"{num(pa['p99_ms']):.2f} | {num(un['p99_ms']):.2f} | "
              f"{num(un['p99_ms']) / num(pa['p99_ms']):.1f} | {num(un['rps']):,.0f} | "
              f"{num(lv['rps']):.2f} | {lg.get('others', '?')}%, {pa.get('others', '?')}%, "
              f"{un.get('others', '?')}% |")
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
