-- Shared by the scenario scripts (loaded with dofile): when wrk finishes,
-- print one line "BENCH_JSON {...}" with flat keys that bench/run.sh reads.
-- Latencies are in microseconds, duration_s in seconds.
function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  local non2xx = e.status
  local ok = summary.requests - non2xx
  local fields = {
    string.format('"requests":%d', summary.requests),
    string.format('"ok_requests":%d', ok),
    string.format('"non2xx":%d', non2xx),
    string.format('"connect_errors":%d', e.connect),
    string.format('"read_errors":%d', e.read),
    string.format('"write_errors":%d', e.write),
    string.format('"timeouts":%d', e.timeout),
    string.format('"bytes":%d', summary.bytes),
    string.format('"duration_s":%.6f', secs),
    string.format('"rps":%.3f', summary.requests / secs),
    string.format('"ok_rps":%.3f', ok / secs),
    string.format('"lat_mean_us":%.1f', latency.mean),
    string.format('"lat_stdev_us":%.1f', latency.stdev),
    string.format('"lat_min_us":%d', latency.min),
    string.format('"lat_max_us":%d', latency.max),
    string.format('"lat_p50_us":%d', latency:percentile(50)),
    string.format('"lat_p90_us":%d', latency:percentile(90)),
    string.format('"lat_p99_us":%d', latency:percentile(99)),
    string.format('"lat_p999_us":%d', latency:percentile(99.9)),
  }
  -- A scenario may add its own counters (logout.lua: tokens exhausted).
  if extra_fields then
    for _, f in ipairs(extra_fields()) do
      table.insert(fields, f)
    end
  end
  io.write("BENCH_JSON {" .. table.concat(fields, ",") .. "}\n")
end
