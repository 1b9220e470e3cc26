#!/usr/bin/env bash
# Per-request cost of the Redis store against the in-process one: the same
# `GET /api/v1/users/me` load (each request checks the denylist twice and
# the user cache once) with and without REDIS_URL, back to back.
#
#   BENCH_REDIS_URL=redis://127.0.0.1:6379 bash bench/redis-cost.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${BENCH_REDIS_URL:?set BENCH_REDIS_URL to a Redis server on this machine}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run() {
  bash "$root/bench/run.sh" --no-build --scenarios me --output "$work/$1.md" >/dev/null 2>&1 || true
  grep -E '^\| gh-me ' "$work/$1.md" | awk -F'|' '{gsub(/ /,"",$8); print $8}'
}
memory=$(BENCH_REDIS_URL= run memory)
redis=$(run redis)
python3 - "$memory" "$redis" <<'PY'
import sys
m, r = float(sys.argv[1]), float(sys.argv[2])
print("| store | `/users/me` req/s | ratio to in-process |")
print("|---|---|---|")
print(f"| in-process (moka) | {m:.0f} | 1.000 |")
print(f"| Redis (denylist + cache invalidation channel) | {r:.0f} | {r/m:.3f} |")
PY
