"""The HTTP side of bench/scale.sh: what needs answers read, not a wrk load. Standard library only.

    python3 bench/scale_client.py prepare BASE PASSWORD EMAIL_FORMAT POOL LOGINS WORK_DIR
    python3 bench/scale_client.py chain BASE REFRESH_TOKEN COUNT

`prepare` logs seeded users in (EMAIL_FORMAT % n, n from 1), each user once:
  - users 1..3*POOL over 4 connections: three pools of POOL refresh tokens, one a line, in
    WORK_DIR/pool-a.txt, pool-b.txt and pool-c.txt (each presented by one later wrk load only);
  - the next LOGINS users one after another on one keep-alive connection, timing each login;
  - the next user for the `chain` test, and admin@example.com for the admin pages;
and reads the first page of GET /v1/users?limit=50 for its next_cursor. It prints key=value lines:
login latency (p50, p90, p99, max in ms), user_access, chain_refresh, admin_access and cursor.

`chain` refreshes one session COUNT times in a row, each time with the token the previous answer
gave, and prints the answers by status and the latency.
"""

import http.client
import json
import sys
import threading
import time
import urllib.parse


def connect(base):
    url = urllib.parse.urlsplit(base)
    return http.client.HTTPConnection(url.hostname, url.port, timeout=30)


def call(conn, method, path, body=None, token=None):
    headers = {}
    if body is not None:
        headers["Content-Type"] = "application/json"
        body = json.dumps(body)
    if token:
        headers["Authorization"] = "Bearer " + token
    conn.request(method, path, body, headers)
    response = conn.getresponse()
    return response.status, response.read()


def log_in(conn, email, password):
    status, body = call(conn, "POST", "/v1/auth/login", {"email": email, "password": password})
    if status != 200:
        sys.exit(f"login of {email} failed: {status} {body[:300]!r}")
    return json.loads(body)


def percentile(sorted_values, fraction):
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def latency_fields(prefix, seconds):
    ms = sorted(s * 1000 for s in seconds)
    return (f"{prefix}_n={len(ms)} {prefix}_p50_ms={percentile(ms, 0.5):.3f} "
            f"{prefix}_p90_ms={percentile(ms, 0.9):.3f} {prefix}_p99_ms={percentile(ms, 0.99):.3f} "
            f"{prefix}_max_ms={ms[-1]:.3f}")


def prepare(base, password, email_format, pool, logins, work_dir):
    pool, logins = int(pool), int(logins)
    tokens = [None] * (3 * pool)
    failures = []

    def pool_worker(slot, workers):
        conn = connect(base)
        try:
            for n in range(slot, 3 * pool, workers):
                tokens[n] = log_in(conn, email_format % (n + 1), password)["refresh_token"]
        except SystemExit as failure:
            failures.append(str(failure))

    threads = [threading.Thread(target=pool_worker, args=(slot, 4)) for slot in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        sys.exit(failures[0])
    for index, name in enumerate("abc"):
        with open(f"{work_dir}/pool-{name}.txt", "w", encoding="ascii") as out:
            out.writelines(t + "\n" for t in tokens[index * pool:(index + 1) * pool])

    conn = connect(base)
    timings = []
    answer = None
    for n in range(3 * pool + 1, 3 * pool + 1 + logins):
        started = time.perf_counter()
        answer = log_in(conn, email_format % n, password)
        timings.append(time.perf_counter() - started)
    chain = log_in(conn, email_format % (3 * pool + 1 + logins), password)
    admin = log_in(conn, "admin@example.com", password)
    status, body = call(conn, "GET", "/v1/users?limit=50", token=admin["access_token"])
    if status != 200:
        sys.exit(f"GET /v1/users failed: {status} {body[:300]!r}")
    cursor = json.loads(body)["next_cursor"]
    if not cursor:
        sys.exit("the first page of users has no next_cursor")
    print(latency_fields("login", timings))
    print(f"user_access={answer['access_token']}")
    print(f"chain_refresh={chain['refresh_token']}")
    print(f"admin_access={admin['access_token']}")
    print(f"cursor={cursor}")


def chain(base, token, count):
    conn = connect(base)
    statuses = {}
    timings = []
    for _ in range(int(count)):
        started = time.perf_counter()
        status, body = call(conn, "POST", "/v1/auth/refresh", {"refresh_token": token})
        timings.append(time.perf_counter() - started)
        statuses[status] = statuses.get(status, 0) + 1
        if status != 200:
            break
        token = json.loads(body)["refresh_token"]
    counted = ",".join(f"{status}:{n}" for status, n in sorted(statuses.items()))
    print(f"statuses={counted} {latency_fields('chain', timings)}")


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    {"prepare": prepare, "chain": chain}[command](*args)
