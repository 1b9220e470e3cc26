#!/usr/bin/env bash
# Smoke test of deploy/nginx/gatehouse.conf: real nginx terminating TLS in
# front of two Gatehouse instances on one PostgreSQL and one Redis.
# Needs: TEST_DATABASE_URL, TEST_REDIS_URL, a built gatehouse binary
# (GATEHOUSE_BIN, default target/debug/gatehouse), nginx and openssl.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${GATEHOUSE_BIN:-target/debug/gatehouse}
: "${TEST_DATABASE_URL:?}" "${TEST_REDIS_URL:?}"

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_a=$(free_port); port_b=$(free_port); port_tls=$(free_port); port_http=$(free_port)

# A throwaway certificate for auth.example.com.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=auth.example.com" \
  -addext "subjectAltName=DNS:auth.example.com" \
  -keyout "$work/privkey.pem" -out "$work/fullchain.pem" 2>/dev/null

# The example configuration, with this run's ports and paths.
mkdir -p "$work/logs"
sed -e "s#gatehouse-1:8000#127.0.0.1:$port_a#; s#gatehouse-2:8000#127.0.0.1:$port_b#" \
    -e "s#listen 443 ssl http2;#listen 127.0.0.1:$port_tls ssl http2;#; s#listen 80;#listen 127.0.0.1:$port_http;#" \
    -e "s#/etc/ssl/gatehouse/#$work/#" \
    deploy/nginx/gatehouse.conf > "$work/site.conf"
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/logs/error.log warn;
events { worker_connections 256; }
http {
  access_log $work/logs/access.log;
  client_body_temp_path $work/body; proxy_temp_path $work/proxy;
  fastcgi_temp_path $work/fastcgi; uwsgi_temp_path $work/uwsgi; scgi_temp_path $work/scgi;
  include $work/site.conf;
}
CONF
nginx -t -c "$work/nginx.conf" -p "$work" 2>&1 | tail -n 1

# One schema for both instances.
schema="nginx_$(date +%s)_$$"
psql "$TEST_DATABASE_URL" -qc "CREATE SCHEMA $schema"
case "$TEST_DATABASE_URL" in *\?*) sep='&';; *) sep='?';; esac
db_url="${TEST_DATABASE_URL}${sep}options=-c%20search_path%3D$schema"

start_instance() {
  env -i PATH="$PATH" DATABASE_URL="$db_url" REDIS_URL="$TEST_REDIS_URL" REDIS_KEY_PREFIX="$schema:" \
    JWT_SECRET_KEY=nginx-smoke-secret-0123456789-abcdefghij \
    DATA_ENCRYPTION_KEYS="k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" \
    BLIND_INDEX_KEY="AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" \
    BIND_ADDR="127.0.0.1:$1" METRICS_ADDR=127.0.0.1:0 DATA_DIR="$work/data-$1" \
    TRUSTED_PROXIES=127.0.0.1/32 ALLOWED_HOSTS=auth.example.com \
    ARGON2_MEMORY_COST=64 ARGON2_TIME_COST=1 ARGON2_PARALLELISM=1 LOG_LEVEL=info \
    "$bin" serve > "$work/logs/gatehouse-$1.log" 2>&1 &
  pids+=($!)
}
start_instance "$port_a"
start_instance "$port_b"
# nginx starts once both instances are ready, as compose's health
# dependencies do: refused connections before that would count against
# max_fails and take an instance out of the rotation for fail_timeout.
for p in "$port_a" "$port_b"; do
  for _ in $(seq 1 300); do
    curl -sf -o /dev/null --max-time 2 -H "host: auth.example.com" "http://127.0.0.1:$p/ready" && break
    sleep 0.1
  done
done
nginx -c "$work/nginx.conf" -p "$work" -g 'daemon off;' &
pids+=($!)

base="https://auth.example.com:$port_tls"
curl_() { curl -sS --max-time 10 --interface 127.0.0.2 --cacert "$work/fullchain.pem" --resolve "auth.example.com:$port_tls:127.0.0.1" "$@"; }
# nginx up (both instances answer /ready through it in turn).
for _ in $(seq 1 300); do
  curl_ -f -o /dev/null "$base/ready" 2>/dev/null && curl_ -f -o /dev/null "$base/ready" 2>/dev/null && break
  sleep 0.1
done

fail() { echo "nginx smoke: $*" >&2; for f in "$work"/logs/*; do echo "--- $f"; tail -n 20 "$f"; done >&2; exit 1; }

headers=$(curl_ -D - -o /dev/null "$base/health")
grep -q "^HTTP/.* 200" <<<"$headers" || fail "health through nginx: $headers"
grep -qi "^strict-transport-security:" <<<"$headers" || fail "no HSTS behind TLS-terminating proxy"
grep -qi "^x-request-id:" <<<"$headers" || fail "no request id"

code=$(curl_ -o /dev/null -w '%{http_code}' -X POST "$base/api/v1/auth/register" \
  -H 'content-type: application/json' \
  -d '{"username":"edge","email":"edge@example.com","password":"Edg3-Passw0rd!x"}')
[ "$code" = 201 ] || fail "register through nginx: $code"
token=$(curl_ -X POST "$base/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"email":"edge@example.com","password":"Edg3-Passw0rd!x"}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
for _ in 1 2 3 4; do
  code=$(curl_ -o /dev/null -w '%{http_code}' -H "authorization: Bearer $token" "$base/api/v1/users/me")
  [ "$code" = 200 ] || fail "me through nginx: $code"
done
# The client (127.0.0.2) is not a trusted proxy: a forged X-Forwarded-For
# prefix does not become its address.
curl_ -o /dev/null -H 'x-forwarded-for: 6.6.6.6' "$base/health"
grep -q '"ip":"6.6.6.6"' "$work"/logs/gatehouse-*.log && fail "spoofed client address was believed"
grep -q '"ip":"127.0.0.2"' "$work"/logs/gatehouse-*.log || fail "client address not logged"
# Both instances served traffic (round robin).
for p in "$port_a" "$port_b"; do
  grep -q '"route":"/api/v1/users/me"' "$work/logs/gatehouse-$p.log" || fail "instance $p served nothing"
done
# Bodies over nginx's limit are refused before they reach Gatehouse.
code=$(head -c 12000000 /dev/zero | curl_ -o /dev/null -w '%{http_code}' -X POST \
  -H 'content-type: application/json' --data-binary @- "$base/api/v1/auth/login")
[ "$code" = 413 ] || fail "oversized body: $code"
psql "$TEST_DATABASE_URL" -qc "SET client_min_messages = warning; DROP SCHEMA $schema CASCADE"
echo "nginx smoke: 1 passed, 0 failed"
