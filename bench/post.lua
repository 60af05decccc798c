-- wrk script: POST a Qlara delivery-status body (Webhooks guide shape) with a unique messageId
-- per request to WRK_PATH (default /webhook; ours: /webhook/<token>). Same body as the peers'
-- post.lua, so every target parses the same bytes. Prints one RESULT line at the end.
-- WRK_KIND=sends posts what an application reports to /v1/sends instead (same ids, channel
-- and phone), with WRK_AUTH as its Authorization header.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local path = os.getenv("WRK_PATH") or "/webhook"
local sends = os.getenv("WRK_KIND") == "sends"
if os.getenv("WRK_AUTH") then
  wrk.headers["Authorization"] = os.getenv("WRK_AUTH")
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

local n = 0
function request()
  n = n + 1
  local body
  if sends then
    body = string.format('{"messageId":"msg_%d_%d","customerMessageId":"ref%d","phoneNumber":"+393901234567","sentAt":"2025-04-08T14:30:00Z","channel":"sms"}', tid, n, n)
  else
    body = string.format('{"messageId":"msg_%d_%d","customerMessageId":"ref%d","phoneNumber":"+393901234567","status":"DELIVERED","timestamp":"2025-04-08T14:30:00Z","channel":"sms","error":null}', tid, n, n)
  end
  return wrk.format(nil, path, nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d p50_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
