#!/usr/bin/env bash
# Export memory: peak RSS of the service while it streams every user as
# NDJSON, for a small and a large user table (default 1,000 and 1,000,000).
# Flat memory means the export streams from the database cursor.
#
#   bash bench/export-memory.sh [SMALL] [LARGE]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
small=${1:-1000}
large=${2:-1000000}
bin="$root/target/release/gatehouse"
seed="$root/target/release/seed-users"
[ -x "$bin" ] && [ -x "$seed" ] || cargo build --release -p gatehouse -p gatehouse-bench

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
key_b64=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

measure() {
  local n=$1 dir="$work/$1"
  mkdir -p "$dir"
  local db="sqlite://$dir/gatehouse.db"
  "$seed" --database-url "$db" --count "$n" --data-key "k1:$key_b64" --blind-key "$key_b64" >/dev/null
  local port; port=$(free_port)
  local env=(env -i PATH="$PATH" DATABASE_URL="$db" DATA_DIR="$dir" BIND_ADDR="127.0.0.1:$port"
    METRICS_ADDR=127.0.0.1:0 JWT_SECRET_KEY=export-bench-secret-0123456789-abcdefgh
    DATA_ENCRYPTION_KEYS="k1:$key_b64" BLIND_INDEX_KEY="$key_b64" RATE_LIMIT_ENABLED=false
    ARGON2_MEMORY_COST=64 ARGON2_TIME_COST=1 ARGON2_PARALLELISM=1 LOG_LEVEL=warn)
  printf 'Bench-Adm1n-Pass!\n' | "${env[@]}" "$bin" create-admin --username exporter --email exporter@example.com >/dev/null
  "${env[@]}" "$bin" serve >"$dir/server.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.05; done
  local token
  token=$(curl -sf -X POST "http://127.0.0.1:$port/api/v1/auth/login" -H 'content-type: application/json' \
    -d '{"email":"exporter@example.com","password":"Bench-Adm1n-Pass!"}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  local before; before=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  local start; start=$(date +%s.%N)
  local bytes
  bytes=$(curl -sf -H "authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/users/export?format=ndjson" | wc -c)
  local end; end=$(date +%s.%N)
  local after; after=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  printf '| %s | %s | %s | %s | %.1f |\n' "$((n + 1))" "$bytes" "$before" "$after" "$(echo "$end - $start" | bc)"
}

echo "| users exported | bytes | peak RSS before (KiB) | peak RSS after (KiB) | seconds |"
echo "|---|---|---|---|---|"
measure "$small"
measure "$large"
