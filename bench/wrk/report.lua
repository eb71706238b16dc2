-- wrk script of bench/src/bin/api.rs: sends the API key from the environment (never on wrk's
-- command line, where every user could read it in /proc) and prints one machine-readable line
-- with throughput, latency percentiles (µs) and errors when the run ends.
local token = os.getenv("AMIKA_BENCH_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d,"non2xx":%d,"socket_errors":%d}\n',
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max,
    e.status, e.connect + e.read + e.write + e.timeout))
end
