-- GET /api/v1/users/me with "Authorization: Bearer <token>"; the token comes
-- from the environment (BENCH_TOKEN, set by bench/run.sh after logging in).
local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
wrk.headers["Accept"] = "application/json"

dofile((os.getenv("BENCH_LUA_DIR") or "bench") .. "/report.lua")
