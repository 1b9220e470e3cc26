-- POST /api/v1/auth/logout, each request ending a live login: the refresh
-- tokens come from the file BENCH_TOKENS (one per line, made fresh for
-- every run by bench/run.sh), each sent once. A logout of an unknown token
-- also answers 200, so requests sent after the tokens ran out are counted
-- as "exhausted" in the report and bench/run.sh refuses such a run.
local path = "/api/v1/auth/logout"
local headers = { ["Content-Type"] = "application/json", ["Accept"] = "application/json" }

dofile((os.getenv("BENCH_LUA_DIR") or "bench") .. "/tokens.lua")
exhausted = 0

function request()
  local token = table.remove(tokens)
  if not token then
    exhausted = exhausted + 1
    token = "exhausted"
  end
  return wrk.format("POST", path, headers, '{"refresh_token":"' .. token .. '"}')
end

-- Extra fields for report.lua: requests sent without a live token.
function extra_fields()
  local total = 0
  for _, t in ipairs(threads) do
    total = total + (t:get("exhausted") or 0)
  end
  return { string.format('"exhausted":%d', total) }
end

dofile((os.getenv("BENCH_LUA_DIR") or "bench") .. "/report.lua")
