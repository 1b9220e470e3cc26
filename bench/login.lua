-- POST /api/v1/auth/login with a JSON body; the credentials come from the
-- environment (set by bench/run.sh) so the script holds no secret.
local email = os.getenv("BENCH_EMAIL") or "bench@example.com"
local password = os.getenv("BENCH_PASSWORD") or "Bench-Passw0rd!x"

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
-- Neither value contains a character that needs JSON escaping.
wrk.body = '{"email":"' .. email .. '","password":"' .. password .. '"}'

dofile((os.getenv("BENCH_LUA_DIR") or "bench") .. "/report.lua")
