-- POST /api/v1/auth/register, each request a new account: the username and
-- address are the run's nonce (BENCH_NONCE, set by bench/run.sh for every
-- run), the wrk thread and a counter, so no two requests of any run
-- collide. The password is the benchmark's (from the environment).
local password = os.getenv("BENCH_PASSWORD") or "Bench-Passw0rd!x"
local nonce = os.getenv("BENCH_NONCE") or tostring(os.time())
local path = "/api/v1/auth/register"
local headers = { ["Content-Type"] = "application/json", ["Accept"] = "application/json" }

local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

local n = 0
function request()
  n = n + 1
  local name = string.format("r%s_%d_%d", nonce, id, n)
  return wrk.format("POST", path, headers,
    '{"username":"' .. name .. '","email":"' .. name .. '@example.com","password":"' .. password .. '"}')
end

dofile((os.getenv("BENCH_LUA_DIR") or "bench") .. "/report.lua")
