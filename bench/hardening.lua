-- wrk script of bench/hardening.py: GET requests cycling through a list of paths,
-- timed per request. Run it with as many threads as connections (-tN -cN): each
-- thread then has one connection, so the request it sent last is the one that
-- answers, and the request still unanswered when the run stops is known too.
--
-- Configured by environment variables, not arguments, so that the bearer token
-- does not show in `ps`:
--   HARDENING_PATHS     the paths (with query strings), one a line
--   HARDENING_TOKEN     a passport, sent as "Authorization: Bearer ..." (optional)
--   HARDENING_DELAY_MS  a pause before each request of a connection (optional):
--                       caps the rate at connections / pause
-- done() writes one line for bench/hardening.py: "hardening-result {json}" with
-- the latencies of the answered requests and the ages of the unanswered ones
-- (microseconds), and wrk's error counts.

local ffi = require("ffi")
ffi.cdef([[
  typedef struct { long tv_sec; long tv_nsec; } hardening_timespec;
  int clock_gettime(int clock, hardening_timespec *now);
]])
local CLOCK_MONOTONIC = 1
local clock = ffi.new("hardening_timespec")

local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
  return tonumber(clock.tv_sec) * 1000000 + math.floor(tonumber(clock.tv_nsec) / 1000)
end

local paths = {}
for path in string.gmatch(os.getenv("HARDENING_PATHS") or "", "[^\n]+") do
  paths[#paths + 1] = path
end
local token = os.getenv("HARDENING_TOKEN") or ""
local pause = tonumber(os.getenv("HARDENING_DELAY_MS") or "0") or 0
local headers = {}
if token ~= "" then
  headers["Authorization"] = "Bearer " .. token
end

-- setup() and done() run in the main environment; the rest in each thread's.
local threads = {}

function setup(thread)
  thread:set("offset", #threads)
  threads[#threads + 1] = thread
end

-- Per thread (globals, so that done() can read them with thread:get).
latencies = {}
sent_at = -1
local requests = {}
local counter = 0

function init(args)
  -- Prebuilt requests: building one per call costs wrk's thread.
  for index, path in ipairs(paths) do
    requests[index] = wrk.format("GET", path, headers)
  end
  -- Threads start at different paths, so that they do not ask for the same one.
  counter = offset or 0
end

function request()
  counter = counter % #requests + 1
  sent_at = now_us()
  return requests[counter]
end

function response(status, _, _)
  latencies[#latencies + 1] = now_us() - sent_at
  sent_at = -1
end

if pause > 0 then
  function delay()
    return pause
  end
end

function done(summary, _, _)
  local stopped = now_us()
  local answered = {}
  local unanswered = {}
  for _, thread in ipairs(threads) do
    for _, value in ipairs(thread:get("latencies")) do
      answered[#answered + 1] = string.format("%d", value)
    end
    local since = thread:get("sent_at")
    if since >= 0 then
      unanswered[#unanswered + 1] = string.format("%d", stopped - since)
    end
  end
  local errors = summary.errors
  io.write(string.format(
    'hardening-result {"duration_us": %d, "status_errors": %d, '
      .. '"connect_errors": %d, "read_errors": %d, "write_errors": %d, '
      .. '"answered_us": [%s], "unanswered_us": [%s]}\n',
    summary.duration, errors.status, errors.connect, errors.read, errors.write,
    table.concat(answered, ","), table.concat(unanswered, ",")
  ))
end
