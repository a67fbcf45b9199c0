-- wrk script for every benchmark run.
--  * BENCH_POST_BYTES=N in the environment: each request is a POST with an N-byte body.
--  * done() prints one machine-readable line, "BENCH_JSON {...}", that bench/report.py reads
--    (latencies in microseconds, from the same histogram as wrk's --latency table).

local post_bytes = tonumber(os.getenv("BENCH_POST_BYTES") or "")
if post_bytes then
  wrk.method = "POST"
  wrk.body = string.rep("x", post_bytes)
  wrk.headers["Content-Type"] = "application/octet-stream"
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %.0f, "duration_us": %.0f, "bytes": %.0f, ' ..
    '"p50_us": %.0f, "p90_us": %.0f, "p99_us": %.0f, "max_us": %.0f, ' ..
    '"errors_connect": %.0f, "errors_read": %.0f, "errors_write": %.0f, ' ..
    '"errors_status": %.0f, "errors_timeout": %.0f}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
