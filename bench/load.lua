-- The wrk side of bench/load.sh, configured through the environment:
--   LOAD_MODE          get (default), login, refresh or mix
--   LOAD_PATH          the path of `get` (default /healthz)
--   LOAD_ACCESS_TOKEN  sent as a Bearer token when set
--   LOAD_PACE_MS       pause after each response on a connection (a paced, not saturating, load)
--   LOAD_EMAIL, LOAD_PASSWORD        the account of `login`
--   LOAD_REFRESH_POOL, LOAD_THREADS  `refresh`: a file of refresh tokens, one a line, split
--                                    between wrk's LOAD_THREADS threads
-- `refresh` presents every token once: each thread keeps a queue of its tokens, takes the next
-- one for each request and appends the successor each 200 answer carries, so every session is
-- refreshed once per round through the queue and no token is ever presented twice.
-- done() prints one line for load.sh: RESULT key=value …

local mode = os.getenv("LOAD_MODE") or "get"
local pace = tonumber(os.getenv("LOAD_PACE_MS") or "0")
local token = os.getenv("LOAD_ACCESS_TOKEN")

if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

if mode == "get" then
  wrk.path = os.getenv("LOAD_PATH") or "/healthz"
elseif mode == "login" then
  wrk.method = "POST"
  wrk.path = "/v1/auth/login"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = string.format('{"email":"%s","password":"%s"}',
    os.getenv("LOAD_EMAIL"), os.getenv("LOAD_PASSWORD"))
end

local threads = {}

-- Main state, once per thread, before that thread's init().
function setup(thread)
  thread:set("index", #threads)
  table.insert(threads, thread)
end

statuses = {}
local queue, head, tail = {}, 1, 1
local prepared = {}
local turn = 0

function init(args)
  if mode == "refresh" then
    local count = tonumber(os.getenv("LOAD_THREADS") or "1")
    local line_number = 0
    for line in io.lines(os.getenv("LOAD_REFRESH_POOL")) do
      if line_number % count == index then
        queue[tail] = line
        tail = tail + 1
      end
      line_number = line_number + 1
    end
  elseif mode == "mix" then
    prepared = { wrk.format("GET", "/v1/me"), wrk.format("GET", "/v1/auth/verify") }
  end
end

if mode == "refresh" then
  function request()
    local presented = queue[head]
    if presented then
      queue[head] = nil
      head = head + 1
    else
      -- Every token of this thread is in flight or was lost to an error: this one is refused
      -- (401) and shows up in the status counts.
      presented = "exhausted"
    end
    return wrk.format("POST", "/v1/auth/refresh", { ["Content-Type"] = "application/json" },
      '{"refresh_token":"' .. presented .. '"}')
  end
elseif mode == "mix" then
  function request()
    turn = turn + 1
    return prepared[turn % 2 + 1]
  end
end

if mode == "refresh" or mode == "login" then
  function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
    if mode == "refresh" and status == 200 then
      local successor = body:match('"refresh_token":"([^"]+)"')
      if successor then
        queue[tail] = successor
        tail = tail + 1
      end
    end
  end
end

if pace > 0 then
  function delay()
    return pace
  end
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    local theirs = thread:get("statuses")
    if type(theirs) == "table" then
      for status, n in pairs(theirs) do
        counts[status] = (counts[status] or 0) + n
      end
    end
  end
  local status_list = {}
  for status, n in pairs(counts) do
    table.insert(status_list, status .. ":" .. n)
  end
  table.sort(status_list)
  local seconds = summary.duration / 1e6
  local errors = summary.errors
  io.write(string.format(
    "RESULT requests=%d seconds=%.2f rps=%.2f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f " ..
    "non2xx=%d connect_errors=%d read_errors=%d write_errors=%d timeouts=%d statuses=%s\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, errors.status, errors.connect, errors.read, errors.write, errors.timeout,
    #status_list > 0 and table.concat(status_list, ",") or "-"))
end
