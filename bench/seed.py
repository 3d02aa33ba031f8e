"""Seeds a running Latchkey for bench/load.sh: one account and COUNT sessions of it.

    python3 bench/seed.py BASE_URL EMAIL PASSWORD COUNT REFRESH_POOL_FILE

Signs EMAIL up (or keeps it when it exists), logs it in COUNT times over a few keep-alive
connections, writes each session's refresh token to REFRESH_POOL_FILE, one a line, and prints the
last access token. Standard library only. Meant for a server at a low bcrypt cost: load.sh seeds
at cost 4, then restarts the server at the cost being measured.
"""

import http.client
import json
import sys
import threading
import urllib.parse


def post(conn, path, body):
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, response.read()


def main():
    base, email, password, count, pool_file = sys.argv[1:6]
    count = int(count)
    url = urllib.parse.urlsplit(base)

    def connect():
        return http.client.HTTPConnection(url.hostname, url.port, timeout=30)

    status, body = post(connect(), "/v1/auth/signup", {"email": email, "password": password})
    if status not in (201, 409):
        sys.exit(f"signup failed: {status} {body[:300]!r}")

    workers = 8
    results = [[] for _ in range(workers)]
    failures = []

    def log_in(slot):
        conn = connect()
        for _ in range(slot, count, workers):
            status, body = post(conn, "/v1/auth/login", {"email": email, "password": password})
            if status != 200:
                failures.append(f"{status} {body[:200]!r}")
                continue
            answer = json.loads(body)
            results[slot].append((answer["refresh_token"], answer["access_token"]))

    threads = [threading.Thread(target=log_in, args=(slot,)) for slot in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        sys.exit(f"{len(failures)} logins failed, first: {failures[0]}")
    pairs = [pair for slot in results for pair in slot]
    with open(pool_file, "w", encoding="ascii") as out:
        out.writelines(refresh + "\n" for refresh, _ in pairs)
    print(pairs[-1][1])


if __name__ == "__main__":
    main()
