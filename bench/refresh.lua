-- POST /api/v1/auth/refresh, each request spending a live refresh token:
-- each login's chain goes on with the token its last answer returned. wrk
-- asks for a connection's next request before it hands over the previous
-- answer, so the thread keeps a pool of two chains per connection. The
-- starting tokens are read from the file BENCH_TOKENS (one per line;
-- bench/run.sh makes them fresh for every run). A refused refresh breaks
-- its chain: a request finding the pool empty sends a spent token and
-- counts as an error, so a run with errors is visible, never easier.
local path = "/api/v1/auth/refresh"
local headers = { ["Content-Type"] = "application/json", ["Accept"] = "application/json" }

dofile((os.getenv("BENCH_LUA_DIR") or "bench") .. "/tokens.lua")
local spent = "spent-token"

function request()
  local token = table.remove(tokens) or spent
  return wrk.format("POST", path, headers, '{"refresh_token":"' .. token .. '"}')
end

function response(status, headers, body)
  if status == 200 then
    local next = body:match('"refresh_token"%s*:%s*"([^"]+)"')
    if next then
      table.insert(tokens, next)
    end
  end
end

dofile((os.getenv("BENCH_LUA_DIR") or "bench") .. "/report.lua")
