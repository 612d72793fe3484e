-- The wrk script of bench/ingest.ts: POST /messages with unique rocket
-- messages, the same shapes as bench/ingest-messages.ts (~250 bytes each),
-- one per request or `batch` per request as a JSON array, with no
-- Content-Type (as the rockets test program may send none).
--
--   wrk -t1 -c64 -d5s -s bench/ingest-load.lua <url> -- <prefix> <batch> <key>
--
-- <key> is a key with the `write` scope, sent as Bearer (ingest runs with AUTH=on).
--
-- <prefix> must differ between runs (bench/ingest.ts passes a random one):
-- message ids are <prefix>-<thread>-<rocket>:<number>, so a run never
-- resends an earlier run's ids and the stream's dedup never flatters a figure.
-- Prints one JSON line with the figures when done.

local threads = {}
local ROCKETS = 1000
local TIME = "2025-04-02T09:21:50.458989221+02:00"
local MISSIONS = { "ARTEMIS", "APOLLO", "GEMINI", "MERCURY", "SKYLAB" }

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

function init(args)
  prefix = (args[1] or "run") .. "-" .. id .. "-"
  batch = tonumber(args[2] or "1")
  headers = {}
  if args[3] then headers["Authorization"] = "Bearer " .. args[3] end
  n = 0
end

local function metadata(channel, number, messageType)
  return '{"metadata":{"channel":"' .. channel .. '","messageNumber":' .. number ..
    ',"messageTime":"' .. TIME .. '","messageType":"' .. messageType .. '"},'
end

local function message(i)
  local channel = prefix .. (i % ROCKETS)
  local number = math.floor(i / ROCKETS) + 1
  if number == 1 then
    return metadata(channel, 1, "RocketLaunched") .. '"message":{"type":"Falcon-9","launchSpeed":500,"mission":"ARTEMIS"}}'
  end
  if number % 10 == 0 then
    return metadata(channel, number, "RocketMissionChanged") ..
      '"message":{"newMission":"' .. MISSIONS[number % #MISSIONS + 1] .. '"}}'
  end
  local kind = (number % 2 == 1) and "RocketSpeedIncreased" or "RocketSpeedDecreased"
  return metadata(channel, number, kind) .. '"message":{"by":' .. (100 + i % 900) .. '}}'
end

function request()
  local body
  if batch == 1 then
    body = message(n)
    n = n + 1
  else
    local items = {}
    for k = 1, batch do
      items[k] = message(n)
      n = n + 1
    end
    body = "[" .. table.concat(items, ",") .. "]"
  end
  return wrk.format("POST", "/messages", headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"ok":%d,"non2xx":%d,"errors":%d,"timeouts":%d,"seconds":%.3f,"latencyP50Ms":%.2f,"latencyP99Ms":%.2f}\n',
    summary.requests,
    summary.requests - e.status - e.read - e.write - e.timeout,
    e.status,
    e.connect + e.read + e.write,
    e.timeout,
    summary.duration / 1e6,
    latency:percentile(50) / 1000,
    latency:percentile(99) / 1000))
end
