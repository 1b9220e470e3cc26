-- GET /health (plain request) with the JSON report at the end.
dofile((os.getenv("BENCH_LUA_DIR") or "bench") .. "/report.lua")
