-- wrk script: one job per wrk thread (run with -c equal to -t, so one job = one connection),
-- 10 it_ops-like records (~850 bytes) per POST, timestamps increasing by 100 ms per record.
-- Optional script argument: the first timestamp in epoch ms (give each run a later one).
local counter = 0
local regions = {"eu-west", "eu-central", "us-east", "us-west", "ap-south", "sa-east"}
local words = {"disk", "ok", "warn", "cron", "gc", "tls", "miss", "node"}

function setup(thread)
  counter = counter + 1
  thread:set("job", "job" .. counter)
end

function init(args)
  t = tonumber(args[1] or "1700000000000")
  path = "/_ml/anomaly_detectors/" .. job .. "/_data"
  hdrs = { ["Content-Type"] = "application/x-ndjson" }
  math.randomseed(#job)
end

function request()
  local lines = {}
  for i = 1, 10 do
    t = t + 100
    lines[i] = string.format('{"time":%.0f,"kpi":%.1f,"host":"srv-%d","region":"%s","note":"%s"}',
      t, 50 + math.random() * 100, math.random(0, 199), regions[math.random(1, 6)], words[math.random(1, 8)])
  end
  return wrk.format("POST", path, hdrs, table.concat(lines, "\n") .. "\n")
end
