#!/usr/bin/env bash
# Gatehouse benchmark harness: measures the service against limits measured
# in the same run, on the same cores, and writes the results into
# BENCHMARKS.md (between the bench:results markers). See BENCHMARKS.md.
#
#   bash bench/run.sh                      # full run, ~7 minutes
#   bash bench/run.sh --duration 3 --warmup 1 --output /tmp/bench.md   # smoke run
#
# Every load run is bounded by wrk -d; traffic goes to 127.0.0.1 only; every
# process this script starts is stopped by its PID on exit.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: bash bench/run.sh [options]

Options (each also settable through the environment variable shown):
  --duration SECS      measured seconds per wrk run          (BENCH_DURATION, 15)
  --warmup SECS        unmeasured warm-up before each run, 0 = none (BENCH_WARMUP, 2)
  --rounds N           rounds of the flood, me and health scenarios; the
                       median round decides                  (BENCH_ROUNDS, 3)
  --scenarios LIST     comma list of login,flood,me,health,refresh,logout,register
                                                             (BENCH_SCENARIOS, all)
  --output FILE        markdown file to write results into   (BENCH_OUTPUT, BENCHMARKS.md)
  --raw-dir DIR        keep raw wrk outputs and server logs  (BENCH_RAW_DIR, none)
  --no-build           use the existing target/release binaries (BENCH_BUILD=0)
  --strict             exit 1 when a target is missed        (BENCH_STRICT=1)
  -h, --help           this text

Environment only:
  BENCH_SERVER_CPUS    cores for gatehouse, baseline-server and argon2-rate (default 0)
  BENCH_CLIENT_CPUS    cores for wrk (default: every other allowed core)
  BENCH_ARGON2_MEMORY, BENCH_ARGON2_TIME, BENCH_ARGON2_PARALLELISM
                       Argon2id parameters (default 65536 KiB, 3, 4: the contract defaults)
  BENCH_ARGON2_MAX_CONCURRENT  ARGON2_MAX_CONCURRENT for the service (default: its own)
  BENCH_LOGIN_CONNECTIONS (16), BENCH_FLOOD_CONNECTIONS (64),
  BENCH_PROBE_CONNECTIONS (1), BENCH_ME_CONNECTIONS (32), BENCH_HEALTH_CONNECTIONS (32),
  BENCH_WRITE_CONNECTIONS (16: refresh, logout and register)
  BENCH_LOGOUT_LOGINS  live logins made before each logout run (default 150000)
  register runs on a service of its own with Argon2id m=8 KiB, t=1, p=1, so
  the write path, not the hash, is measured
  BENCH_WRK_TIMEOUT    wrk --timeout (default 30s: flooded logins queue behind hashing)
  BENCH_DATABASE_URL, BENCH_REDIS_URL  passed to the service as DATABASE_URL/REDIS_URL
                       (default: SQLite in a temporary DATA_DIR, no Redis)
  BENCH_GATEHOUSE_BIN  the service binary to measure (default target/release/gatehouse)
EOF
}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench_dir="$root/bench"

duration=${BENCH_DURATION:-15}
warmup=${BENCH_WARMUP:-2}
rounds=${BENCH_ROUNDS:-3}
scenarios=${BENCH_SCENARIOS:-login,flood,me,health,refresh,logout,register}
output=${BENCH_OUTPUT:-$root/BENCHMARKS.md}
raw_dir=${BENCH_RAW_DIR:-}
build=${BENCH_BUILD:-1}
strict=${BENCH_STRICT:-0}

while [[ $# -gt 0 ]]; do
  case $1 in
    --duration) duration=${2:?--duration needs a value}; shift 2 ;;
    --warmup) warmup=${2:?--warmup needs a value}; shift 2 ;;
    --rounds) rounds=${2:?--rounds needs a value}; shift 2 ;;
    --scenarios) scenarios=${2:?--scenarios needs a value}; shift 2 ;;
    --output) output=${2:?--output needs a value}; shift 2 ;;
    --raw-dir) raw_dir=${2:?--raw-dir needs a value}; shift 2 ;;
    --no-build) build=0; shift ;;
    --strict) strict=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench: unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done

argon2_memory=${BENCH_ARGON2_MEMORY:-65536}
argon2_time=${BENCH_ARGON2_TIME:-3}
argon2_parallelism=${BENCH_ARGON2_PARALLELISM:-4}
argon2_max_concurrent=${BENCH_ARGON2_MAX_CONCURRENT:-}
login_conns=${BENCH_LOGIN_CONNECTIONS:-16}
flood_conns=${BENCH_FLOOD_CONNECTIONS:-64}
probe_conns=${BENCH_PROBE_CONNECTIONS:-1}
me_conns=${BENCH_ME_CONNECTIONS:-32}
health_conns=${BENCH_HEALTH_CONNECTIONS:-32}
write_conns=${BENCH_WRITE_CONNECTIONS:-16}
logout_logins=${BENCH_LOGOUT_LOGINS:-150000}
wrk_timeout=${BENCH_WRK_TIMEOUT:-30s}

# The benchmark account (register + login).
bench_username=benchuser
bench_email=bench@example.com
bench_password='Bench-Passw0rd!x'

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
  printf 'bench: ERROR: %s\n' "$*" >&2
  exit 1
}

# ---------------------------------------------------------------- checks ---

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
duration=${duration%s}
warmup=${warmup%s}
if ! is_uint "$rounds" || ((rounds == 0)); then
  die "--rounds must be a whole number > 0"
fi
if ! is_uint "$duration" || ((duration == 0)); then
  die "--duration must be a whole number of seconds > 0"
fi
is_uint "$warmup" || die "--warmup must be a whole number of seconds"
for v in argon2_memory argon2_time argon2_parallelism login_conns flood_conns probe_conns \
  me_conns health_conns write_conns logout_logins; do
  if ! is_uint "${!v}" || ((${!v} == 0)); then
    die "$v must be a positive integer (got '${!v}')"
  fi
done
if [[ -n $argon2_max_concurrent ]]; then
  is_uint "$argon2_max_concurrent" || die "BENCH_ARGON2_MAX_CONCURRENT must be an integer"
fi

declare -A want=()
IFS=',' read -r -a scenario_list <<<"$scenarios"
for s in "${scenario_list[@]}"; do
  s=${s// /}
  case $s in
    login | flood | me | health | refresh | logout | register) want[$s]=1 ;;
    '') ;;
    *) die "unknown scenario '$s' (known: login, flood, me, health, refresh, logout, register)" ;;
  esac
done
((${#want[@]} > 0)) || die "no scenario selected"
wants() { [[ -n ${want[$1]:-} ]]; }
needs_account() { wants login || wants flood || wants me || wants refresh || wants logout; }
# The Argon2id parameters of the register scenario's service.
register_argon2=(8 1 1)

# ------------------------------------------------------ process tracking ---

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-bench.XXXXXX")
declare -A live_pids=()

track() { live_pids[$1]=1; }

# Stop one process we started: TERM, up to 10 s, then KILL.
stop_pid() {
  local pid=$1 _
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "process $pid did not stop on TERM: sending KILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
  unset "live_pids[$pid]"
}

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  local status=$? pid
  trap - EXIT INT TERM
  for pid in "${!live_pids[@]}"; do
    stop_pid "$pid"
  done
  if [[ -n $raw_dir && -d $tmp ]]; then
    mkdir -p "$raw_dir"
    cp "$tmp"/*.txt "$tmp"/*.log "$tmp"/*.json "$raw_dir"/ 2>/dev/null || true
    log "raw outputs kept in $raw_dir"
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ tools ---

need_tool() {
  local cmd=$1 pkg=$2
  command -v "$cmd" >/dev/null 2>&1 && return 0
  if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    die "$cmd is missing: install the '$pkg' package"
  fi
  log "installing $pkg (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null 2>&1 || {
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
  }
  command -v "$cmd" >/dev/null 2>&1 || die "$cmd still missing after installing $pkg"
}
need_tool wrk wrk
need_tool curl curl
need_tool taskset util-linux

# --------------------------------------------------------------- cores ---

cpu_list_re='^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$'

# Expand a cpu list ("0-2,5") into one number per line.
expand_cpus() {
  local part a b i
  IFS=',' read -r -a parts <<<"$1"
  for part in "${parts[@]}"; do
    if [[ $part =~ ^([0-9]+)-([0-9]+)$ ]]; then
      a=${BASH_REMATCH[1]} b=${BASH_REMATCH[2]}
      for ((i = a; i <= b; i++)); do echo "$i"; done
    elif [[ $part =~ ^[0-9]+$ ]]; then
      echo "$part"
    elif [[ -n $part ]]; then
      return 1
    fi
  done
}

allowed_cpus=$(taskset -pc $$ | sed 's/.*: *//')
mapfile -t allowed < <(expand_cpus "$allowed_cpus")
server_cpus=${BENCH_SERVER_CPUS:-${allowed[0]}}
[[ $server_cpus =~ $cpu_list_re ]] || die "bad BENCH_SERVER_CPUS '$server_cpus' (e.g. 0 or 0-1)"
mapfile -t server_set < <(expand_cpus "$server_cpus")
((${#server_set[@]} > 0)) || die "BENCH_SERVER_CPUS is empty"
for c in "${server_set[@]}"; do
  printf '%s\n' "${allowed[@]}" | grep -qx "$c" \
    || die "BENCH_SERVER_CPUS: core $c is not available (allowed: $allowed_cpus)"
done
if [[ -n ${BENCH_CLIENT_CPUS:-} ]]; then
  client_cpus=$BENCH_CLIENT_CPUS
  [[ $client_cpus =~ $cpu_list_re ]] || die "bad BENCH_CLIENT_CPUS '$client_cpus' (e.g. 1)"
  mapfile -t client_set < <(expand_cpus "$client_cpus")
else
  client_set=()
  for c in "${allowed[@]}"; do
    printf '%s\n' "${server_set[@]}" | grep -qx "$c" || client_set+=("$c")
  done
  client_cpus=$(
    IFS=,
    echo "${client_set[*]}"
  )
fi
server_cores=${#server_set[@]}
client_cores=${#client_set[@]}
if ((client_cores > 0)); then
  pin_client=("$(command -v taskset)" -c "$client_cpus")
  wrk_threads=$client_cores
  client_note="\`taskset -c $client_cpus\` ($client_cores core(s))"
else
  log "WARNING: no core left for wrk: it shares the server's cores, numbers are pessimistic"
  pin_client=()
  wrk_threads=1
  client_note="unpinned (shares the server cores: no core left)"
fi
pin_server=("$(command -v taskset)" -c "$server_cpus")
log "server cores: $server_cpus ($server_cores); wrk cores: ${client_cpus:-shared} ($client_cores)"

# ------------------------------------------------------------------ build ---

cd "$root"
if [[ $build == 1 ]]; then
  log "building release binaries (cargo build --release -p gatehouse -p gatehouse-bench)"
  cargo build --release -p gatehouse -p gatehouse-bench
fi
target_dir=${CARGO_TARGET_DIR:-$root/target}
gatehouse_bin=${BENCH_GATEHOUSE_BIN:-$target_dir/release/gatehouse}
baseline_bin=$target_dir/release/baseline-server
argon2_bin=$target_dir/release/argon2-rate
limit_bin=$target_dir/release/write-limit
for b in "$gatehouse_bin" "$baseline_bin" "$argon2_bin" "$limit_bin"; do
  [[ -x $b ]] || die "missing $b (run without --no-build)"
done

# ---------------------------------------------------------------- helpers ---

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A free loopback port other than the ones given.
free_port() {
  local p _ taken
  for _ in $(seq 1 500); do
    p=$((20000 + RANDOM % 30000))
    taken=0
    for x in "$@"; do [[ $p == "$x" ]] && taken=1; done
    ((taken == 0)) && ! port_in_use "$p" && {
      echo "$p"
      return 0
    }
  done
  die "no free loopback port found"
}

# wait_http URL PID LOGFILE: until URL answers 2xx, or the process dies, or 60 s.
wait_http() {
  local url=$1 pid=$2 logfile=$3
  local deadline=$((SECONDS + 60))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "server exited during start-up; last lines of its log:"
      tail -n 20 "$logfile" >&2 || true
      die "server did not start (see above)"
    fi
    curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null && return 0
    sleep 0.1
  done
  tail -n 20 "$logfile" >&2 || true
  die "$url did not answer within 60 s"
}

# http_json METHOD URL [BODY] [AUTH]: sets http_status and http_body.
http_json() {
  local method=$1 url=$2 body=${3:-} auth=${4:-}
  local args=(-sS -o "$tmp/http_body" -w '%{http_code}' --max-time 60 -X "$method"
    -H 'Accept: application/json')
  [[ -n $body ]] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
  [[ -n $auth ]] && args+=(-H "Authorization: Bearer $auth")
  http_status=$(curl "${args[@]}" "$url") || http_status=000
  http_body=$(cat "$tmp/http_body" 2>/dev/null || true)
}

# jget FILE KEY: a number or string value of a (unique) key in a flat JSON line.
jget() {
  local v
  v=$(sed -n "s/.*\"$2\":[[:space:]]*\"\{0,1\}\([^\",}]*\).*/\1/p" "$1" | head -n 1)
  [[ -n $v ]] || die "no '$2' in $1"
  echo "$v"
}

# calc EXPR: evaluate an awk expression (parenthesised: a bare `>` inside
# printf would be an output redirection).
calc() { awk "BEGIN { printf \"%.6f\", ($1) }"; }
fmt() { awk -v v="$1" -v f="$2" 'BEGIN { printf f, v }'; }
ms() { awk -v v="$1" 'BEGIN { printf "%.2f", v / 1000 }'; }
# median N...: the middle value (the lower middle of an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# list_ms US...: microseconds as "a / b / c" milliseconds.
list_ms() {
  local out="" v
  for v in "$@"; do out+="${out:+ / }$(ms "$v")"; done
  echo "$out"
}

# compared NAME: sets c_ratio (the median of the rounds' ratios), c_rps and
# c_base (gatehouse's and the baseline's req/s in that round), c_list (every
# ratio, in round order) and c_bad (non-2xx answers over all rounds).
compared() {
  local name=$1 r g b ratio best=""
  local -a ratios=()
  c_bad=0 c_list=""
  for ((r = 1; r <= rounds; r++)); do
    g=$(jget "$tmp/gh-$name-r$r.json" ok_rps)
    b=$(jget "$tmp/bl-$name-r$r.json" ok_rps)
    c_bad=$((c_bad + $(jget "$tmp/gh-$name-r$r.json" non2xx)))
    ratio=$(calc "$b > 0 ? $g / $b : 0")
    ratios+=("$ratio")
    c_list+="${c_list:+ / }$(fmt "$ratio" %.3f)"
  done
  c_ratio=$(median "${ratios[@]}")
  # The round the median comes from, for its absolute numbers.
  for ((r = 1; r <= rounds; r++)); do
    [[ -z $best && ${ratios[r - 1]} == "$c_ratio" ]] && best=$r
  done
  c_rps=$(jget "$tmp/gh-$name-r$best.json" ok_rps)
  c_base=$(jget "$tmp/bl-$name-r$best.json" ok_rps)
}

run_bg_wrk() {
  # run_bg_wrk NAME CONNS THREADS SECS LUA URL: starts wrk, sets wrk_pid.
  local name=$1 conns=$2 threads=$3 secs=$4 lua=$5 url=$6
  ((threads > conns)) && threads=$conns
  BENCH_LUA_DIR=$bench_dir BENCH_EMAIL=$bench_email BENCH_PASSWORD=$bench_password \
    BENCH_TOKEN=${access_token:-} BENCH_TOKENS=${tokens_file:-} BENCH_THREADS=$threads \
    BENCH_NONCE=${bench_nonce:-} \
    "${pin_client[@]}" wrk -t"$threads" -c"$conns" -d"${secs}s" --timeout "$wrk_timeout" \
    --latency -s "$bench_dir/$lua" "$url" >"$tmp/wrk-$name.txt" 2>&1 &
  wrk_pid=$!
  track "$wrk_pid"
}

finish_wrk() {
  # finish_wrk NAME PID: waits, checks, extracts the JSON report to NAME.json.
  local name=$1 pid=$2
  if ! wait "$pid"; then
    unset "live_pids[$pid]"
    cat "$tmp/wrk-$name.txt" >&2 || true
    die "wrk run '$name' failed"
  fi
  unset "live_pids[$pid]"
  grep '^BENCH_JSON ' "$tmp/wrk-$name.txt" | sed 's/^BENCH_JSON //' >"$tmp/$name.json" || true
  [[ -s $tmp/$name.json ]] || {
    cat "$tmp/wrk-$name.txt" >&2
    die "wrk run '$name' printed no report"
  }
  log "  $name: $(jget "$tmp/$name.json" ok_rps) 2xx req/s, p99 $(ms "$(jget "$tmp/$name.json" lat_p99_us)") ms, non-2xx $(jget "$tmp/$name.json" non2xx)"
}

# run_wrk NAME CONNS LUA URL: optional warm-up, then one measured run.
run_wrk() {
  local name=$1 conns=$2 lua=$3 url=$4
  if ((warmup > 0)); then
    run_bg_wrk "$name-warmup" "$conns" "$wrk_threads" "$warmup" "$lua" "$url"
    finish_wrk "$name-warmup" "$wrk_pid" 2>/dev/null || die "warm-up for '$name' failed"
  fi
  log "wrk $name: -c$conns, ${duration}s"
  run_bg_wrk "$name" "$conns" "$wrk_threads" "$duration" "$lua" "$url"
  finish_wrk "$name" "$wrk_pid"
}

# --------------------------------------------------------------- gatehouse ---

start_gatehouse() {
  local data_dir=$tmp/data jwt
  mkdir -p "$data_dir"
  gh_port=$(free_port)
  local metrics_port
  metrics_port=$(free_port "$gh_port")
  jwt=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  local envs=(
    "PATH=$PATH"
    "HOME=$tmp"
    ENVIRONMENT=development
    "DATA_DIR=$data_dir"
    "BIND_ADDR=127.0.0.1:$gh_port"
    "METRICS_ADDR=127.0.0.1:$metrics_port"
    "JWT_SECRET_KEY=$jwt"
    ACCESS_TOKEN_EXPIRE_MINUTES=120
    RATE_LIMIT_ENABLED=false
    # The largest value the config accepts; every benchmark login succeeds
    # anyway, and a success resets the counter.
    MAX_LOGIN_ATTEMPTS=1000
    LOG_LEVEL=warn
    LOG_FORMAT=json
    "ARGON2_MEMORY_COST=$argon2_memory"
    "ARGON2_TIME_COST=$argon2_time"
    "ARGON2_PARALLELISM=$argon2_parallelism"
    # Same worker count as baseline-server --workers (tokio reads this
    # when the service does not set one itself).
    "TOKIO_WORKER_THREADS=$server_cores"
  )
  [[ -n $argon2_max_concurrent ]] && envs+=("ARGON2_MAX_CONCURRENT=$argon2_max_concurrent")
  [[ -n ${BENCH_DATABASE_URL:-} ]] && envs+=("DATABASE_URL=$BENCH_DATABASE_URL")
  [[ -n ${BENCH_REDIS_URL:-} ]] && envs+=("REDIS_URL=$BENCH_REDIS_URL")
  log "starting gatehouse on 127.0.0.1:$gh_port (cores $server_cpus, DATA_DIR $data_dir)"
  # A clean environment and a cwd without .env: only the settings above apply.
  (cd "$tmp" && exec env -i "${envs[@]}" "${pin_server[@]}" "$gatehouse_bin" serve) \
    >"$tmp/gatehouse.log" 2>&1 &
  gh_pid=$!
  track "$gh_pid"
  wait_http "http://127.0.0.1:$gh_port/health" "$gh_pid" "$tmp/gatehouse.log"
  log "gatehouse is up (pid $gh_pid)"
}

create_account() {
  local base="http://127.0.0.1:$gh_port/api/v1"
  local hint=""
  http_json POST "$base/auth/register" \
    "{\"username\":\"$bench_username\",\"email\":\"$bench_email\",\"password\":\"$bench_password\"}"
  [[ $http_status == 404 || $http_status == 405 ]] && hint=" (are the auth endpoints implemented in this build?)"
  [[ $http_status == 2?? ]] \
    || die "POST /api/v1/auth/register returned HTTP $http_status, expected 201$hint: ${http_body:0:600}"
  [[ $http_status == 201 ]] || log "WARNING: register returned $http_status, the contract says 201"

  http_json POST "$base/auth/login" "{\"email\":\"$bench_email\",\"password\":\"$bench_password\"}"
  [[ $http_status == 2?? ]] \
    || die "POST /api/v1/auth/login returned HTTP $http_status, expected 200$hint: ${http_body:0:600}"
  access_token=$(printf '%s' "$http_body" \
    | sed -n 's/.*"access_token"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')
  [[ -n $access_token ]] \
    || die "POST /api/v1/auth/login returned HTTP $http_status without an access_token: ${http_body:0:600}"

  http_json GET "$base/users/me" "" "$access_token"
  [[ $http_status == 200 ]] \
    || die "GET /api/v1/users/me with the fresh token returned HTTP $http_status, expected 200: ${http_body:0:600}"
  user_id=$(printf '%s' "$http_body" | sed -n 's/.*"id"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')
  [[ -n $user_id ]] || die "GET /api/v1/users/me returned no id: ${http_body:0:600}"
  log "benchmark account registered, logged in, /users/me answers 200"
}

# The service's database, as write-limit reaches it.
db_url() {
  if [[ -n ${BENCH_DATABASE_URL:-} ]]; then
    echo "$BENCH_DATABASE_URL"
  else
    echo "sqlite://$tmp/data/gatehouse.db"
  fi
}

# login_tokens N FILE: N fresh logins through the API, their refresh tokens
# (from the cookie) one per line in FILE.
login_tokens() {
  local n=$1 file=$2 i
  : >"$file"
  for ((i = 0; i < n; i++)); do
    curl -sS -D "$tmp/login_headers" -o /dev/null --max-time 60 -X POST \
      -H 'Content-Type: application/json' \
      --data-binary "{\"email\":\"$bench_email\",\"password\":\"$bench_password\"}" \
      "http://127.0.0.1:$gh_port/api/v1/auth/login" || true
    sed -n 's/^[Ss]et-[Cc]ookie: refresh_token=\([^;]*\);.*/\1/p' "$tmp/login_headers" >>"$file"
  done
  (($(wc -l <"$file") == n)) || die "could not make $n logins (see the service log)"
}

# run_limit NAME ARGS...: write-limit on the server cores; its JSON to NAME.json.
run_limit() {
  local name=$1
  shift
  log "write-limit $name: $*"
  "${pin_server[@]}" "$limit_bin" --database-url "$(db_url)" --user-id "$user_id" "$@" \
    >"$tmp/$name.json" 2>"$tmp/$name.log" || {
    cat "$tmp/$name.log" >&2
    die "write-limit $name failed"
  }
  log "  $name: $(jget "$tmp/$name.json" ops_per_sec) ops/s"
}

# scenario_write KIND ROUND: the service under KIND (refresh or logout), then
# the limit on the same database and cores, alternating which goes first.
scenario_write() {
  local kind=$1 r=$2 lua=$1.lua
  local url="http://127.0.0.1:$gh_port/api/v1/auth/$kind"
  tokens_file=$tmp/tokens-$kind-r$r
  local limit_args=("$kind" --concurrency "$write_conns" --seconds "$duration")
  [[ $kind == logout ]] && limit_args+=(--logins "$logout_logins")
  if ((r % 2 == 0)); then
    run_limit "limit-$kind-r$r" "${limit_args[@]}"
  fi
  # Fresh live tokens for every run: refresh chains start from logins made
  # through the API (two per connection: wrk asks for a connection's next
  # request before it hands over the previous answer); logout spends
  # logins made through the store, untimed.
  if [[ $kind == refresh ]]; then
    login_tokens $((2 * write_conns)) "$tokens_file"
  else
    "${pin_server[@]}" "$limit_bin" --database-url "$(db_url)" --user-id "$user_id" \
      seed --count "$logout_logins" >"$tokens_file" 2>"$tmp/seed-$kind-r$r.log" \
      || die "write-limit seed failed: $(cat "$tmp/seed-$kind-r$r.log")"
  fi
  log "wrk $kind (round $r): -c$write_conns, ${duration}s"
  run_bg_wrk "gh-$kind-r$r" "$write_conns" "$wrk_threads" "$duration" "$lua" "$url"
  finish_wrk "gh-$kind-r$r" "$wrk_pid"
  if ((r % 2 == 1)); then
    run_limit "limit-$kind-r$r" "${limit_args[@]}"
  fi
  tokens_file=
}

# scenario_register ROUND: new accounts through the service, then the
# limit on the same database and cores, alternating which goes first.
scenario_register() {
  local r=$1 url="http://127.0.0.1:$gh_port/api/v1/auth/register"
  local limit_args=(register --concurrency "$write_conns" --seconds "$duration")
  ((r % 2 == 0)) && run_limit "limit-register-r$r" "${limit_args[@]}"
  bench_nonce="$(date +%s)r$r"
  log "wrk register (round $r): -c$write_conns, ${duration}s"
  run_bg_wrk "gh-register-r$r" "$write_conns" "$wrk_threads" "$duration" register.lua "$url"
  finish_wrk "gh-register-r$r" "$wrk_pid"
  ((r % 2 == 1)) && run_limit "limit-register-r$r" "${limit_args[@]}"
  bench_nonce=
}

scenario_flood() {
  # scenario_flood ROUND MODE: 64 connections flood /login while one
  # connection probes /health; the probe runs strictly inside the flood
  # (starts after the warm-up lead, ends before the flood does). MODE
  # `pinned`: wrk on its own cores; `unpinned`: wrk wherever the kernel puts
  # it, the service's core included. The service's peak RSS is reset before
  # (clear_refs 5) and read after (VmHWM), in KiB, into NAME-rss.
  local r=$1 mode=$2 name=flood-$2
  local lead=$((warmup > 0 ? warmup : 1))
  local flood_secs=$((duration + 2 * lead))
  local saved_pin=("${pin_client[@]}")
  [[ $mode == unpinned ]] && pin_client=()
  echo 5 >"/proc/$gh_pid/clear_refs" 2>/dev/null || log "cannot reset the peak RSS (clear_refs): it covers the whole run"
  log "wrk flood (round $r, $mode): -c$flood_conns on /login for ${flood_secs}s, -c$probe_conns on /health for ${duration}s"
  run_bg_wrk "$name-login-r$r" "$flood_conns" "$wrk_threads" "$flood_secs" login.lua \
    "http://127.0.0.1:$gh_port/api/v1/auth/login"
  local flood_pid=$wrk_pid
  sleep "$lead"
  run_bg_wrk "$name-health-r$r" "$probe_conns" 1 "$duration" health.lua \
    "http://127.0.0.1:$gh_port/health"
  local probe_pid=$wrk_pid
  finish_wrk "$name-health-r$r" "$probe_pid"
  finish_wrk "$name-login-r$r" "$flood_pid"
  awk '/^VmHWM:/ { print $2 }' "/proc/$gh_pid/status" >"$tmp/$name-rss-r$r.txt"
  log "  peak RSS during the flood: $(cat "$tmp/$name-rss-r$r.txt") KiB"
  pin_client=("${saved_pin[@]}")
}

start_baseline() {
  bl_port=$(free_port "$gh_port")
  log "starting baseline-server on 127.0.0.1:$bl_port (cores $server_cpus, $server_cores worker(s))"
  "${pin_server[@]}" "$baseline_bin" --addr "127.0.0.1:$bl_port" --workers "$server_cores" \
    >"$tmp/baseline.log" 2>&1 &
  bl_pid=$!
  track "$bl_pid"
  wait_http "http://127.0.0.1:$bl_port/health" "$bl_pid" "$tmp/baseline.log"
}

# compare NAME CONNS LUA PATH: one round per `rounds`, each a gatehouse run
# and a baseline run back to back, alternating which goes first, so drift
# in the machine's speed falls on both sides of every ratio.
compare() {
  local name=$1 conns=$2 lua=$3 path=$4 r
  for ((r = 1; r <= rounds; r++)); do
    if ((r % 2 == 1)); then
      run_wrk "gh-$name-r$r" "$conns" "$lua" "http://127.0.0.1:$gh_port$path"
      run_wrk "bl-$name-r$r" "$conns" "$lua" "http://127.0.0.1:$bl_port$path"
    else
      run_wrk "bl-$name-r$r" "$conns" "$lua" "http://127.0.0.1:$bl_port$path"
      run_wrk "gh-$name-r$r" "$conns" "$lua" "http://127.0.0.1:$gh_port$path"
    fi
  done
}

# -------------------------------------------------------------------- run ---

started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
access_token=""

if wants login || wants flood || wants me || wants health || wants refresh || wants logout; then
  start_gatehouse
  if needs_account; then
    create_account
  fi
  # The baseline waits, idle, on the same cores while gatehouse is measured
  # (and the other way round): an idle server takes no CPU.
  if wants me || wants health; then
    start_baseline
  fi
  wants health && compare health "$health_conns" health.lua /health
  wants me && compare me "$me_conns" me.lua /api/v1/users/me
  if wants me || wants health; then
    stop_pid "$bl_pid"
    log "baseline-server stopped"
  fi
  for kind in refresh logout; do
    if wants "$kind"; then
      for ((r = 1; r <= rounds; r++)); do scenario_write "$kind" "$r"; done
    fi
  done
  wants login && run_wrk gh-login "$login_conns" login.lua \
    "http://127.0.0.1:$gh_port/api/v1/auth/login"
  if wants flood; then
    if wants login || wants me || wants health || wants refresh || wants logout; then
      # The flood's memory bound is about the flood: a fresh process on the
      # same database, so what earlier scenarios left in its caches (the
      # logins they ended, the tokens they checked: bounded and expiring)
      # is not counted against it.
      stop_pid "$gh_pid"
      log "gatehouse restarted for the flood"
      start_gatehouse
    fi
    for ((r = 1; r <= rounds; r++)); do
      scenario_flood "$r" pinned
      scenario_flood "$r" unpinned
    done
  fi
  if ! kill -0 "$gh_pid" 2>/dev/null; then
    tail -n 20 "$tmp/gatehouse.log" >&2 || true
    die "gatehouse exited during the run (its last log lines are above)"
  fi
  stop_pid "$gh_pid"
  log "gatehouse stopped"
fi

if wants register; then
  # A service of its own, with the smallest Argon2id the configuration
  # takes; the account create_account makes is write-limit's --user-id.
  saved_argon2=("$argon2_memory" "$argon2_time" "$argon2_parallelism")
  read -r argon2_memory argon2_time argon2_parallelism <<<"${register_argon2[*]}"
  # The database may be the one the other scenarios used: an account of
  # its own.
  bench_username=benchregister bench_email=bench-register@example.com
  start_gatehouse
  create_account
  for ((r = 1; r <= rounds; r++)); do scenario_register "$r"; done
  stop_pid "$gh_pid"
  log "gatehouse (register) stopped"
  read -r argon2_memory argon2_time argon2_parallelism <<<"${saved_argon2[*]}"
fi

if wants login; then
  log "argon2-rate: ${duration}s, $server_cores thread(s) on cores $server_cpus"
  "${pin_server[@]}" "$argon2_bin" --memory-kib "$argon2_memory" --time-cost "$argon2_time" \
    --parallelism "$argon2_parallelism" --threads "$server_cores" --seconds "$duration" \
    >"$tmp/argon2.json" 2>"$tmp/argon2.log" &
  a_pid=$!
  track "$a_pid"
  if ! wait "$a_pid"; then
    unset "live_pids[$a_pid]"
    cat "$tmp/argon2.log" >&2
    die "argon2-rate failed"
  fi
  unset "live_pids[$a_pid]"
  log "  argon2-rate: $(jget "$tmp/argon2.json" hashes_per_sec) hashes/s"
fi


# ---------------------------------------------------------------- report ---

failed=0
verdict() {
  # verdict OK_EXPR NON2XX: sets `result` to pass / MISS, or INVALID when
  # errors spoil the run (not called in $(...), so `failed` sticks).
  local ok=$1 bad=${2:-0}
  if ((bad > 0)); then
    result="INVALID ($bad non-2xx)"
    failed=1
  elif [[ $(calc "($ok) ? 1 : 0") == 1.000000 ]]; then
    result="pass"
  else
    result="MISS"
    failed=1
  fi
}

commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$root" status --porcelain --untracked-files=no -- . ':!BENCHMARKS.md' 2>/dev/null) ]]; then
  commit="$commit (with uncommitted changes)"
fi
cpu_model=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
[[ -n $cpu_model ]] || cpu_model=unknown
mem_total=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
# `wrk -v` prints its version and usage, then exits 1.
wrk_version=$({ wrk -v 2>&1 || true; } | awk 'NR == 1 { print $1, $2 }')
rustc_version=$(rustc -V 2>/dev/null || echo unknown)
db_note="SQLite in a fresh temporary DATA_DIR"
[[ -n ${BENCH_DATABASE_URL:-} ]] && db_note="DATABASE_URL=${BENCH_DATABASE_URL%%://*}://…"
[[ -n ${BENCH_REDIS_URL:-} ]] && db_note="$db_note, Redis"
max_conc_note=${argon2_max_concurrent:-"service default"}

results=$tmp/results.md
{
  echo "Generated by \`bench/run.sh\` on $started (UTC), git commit \`$commit\`."
  echo
  echo "### Machine and settings"
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| nproc | $(nproc) |"
  echo "| CPU | $cpu_model |"
  echo "| memory | $mem_total |"
  echo "| kernel | $(uname -r) |"
  echo "| toolchain | $rustc_version, release profile |"
  echo "| load generator | $wrk_version, $client_note, $wrk_threads thread(s) |"
  echo "| server cores | \`taskset -c $server_cpus\` ($server_cores core(s)): gatehouse and baseline-server side by side (only one under load at a time), then argon2-rate alone |"
  echo "| tokio workers | $server_cores (gatehouse via TOKIO_WORKER_THREADS, baseline via --workers) |"
  echo "| Argon2id | m=$argon2_memory KiB, t=$argon2_time, p=$argon2_parallelism, 32-byte hash, 16-byte salt; ARGON2_MAX_CONCURRENT: $max_conc_note |"
  echo "| database | $db_note |"
  echo "| runs | ${duration} s measured each, ${warmup} s warm-up before each; wrk --timeout $wrk_timeout; $rounds round(s) of flood, /users/me and /health (gatehouse and baseline back to back, alternating order), the median round decides |"
  echo "| connections | login $login_conns; flood $flood_conns on /login + $probe_conns on /health; /users/me $me_conns; /health $health_conns; refresh, logout and register $write_conns (write-limit: as many tasks) |"
  echo
  echo "### Targets"
  echo
  echo "| # | metric | measured | limit (same run, same cores) | ratio | target | result |"
  echo "|---|---|---|---|---|---|---|"
  if wants login; then
    l_rps=$(jget "$tmp/gh-login.json" ok_rps)
    l_bad=$(jget "$tmp/gh-login.json" non2xx)
    a_rate=$(jget "$tmp/argon2.json" hashes_per_sec)
    l_ratio=$(calc "$a_rate > 0 ? $l_rps / $a_rate : 0")
    verdict "$l_ratio >= 0.9" "$l_bad"
    echo "| 1 | login throughput, \`POST /api/v1/auth/login\` | $(fmt "$l_rps" %.2f) logins/s | $(fmt "$a_rate" %.2f) raw Argon2id hashes/s ($server_cores thread(s)) | $(fmt "$l_ratio" %.3f) | ≥ 0.9 | $result |"
  else
    echo "| 1 | login throughput | not run | | | ≥ 0.9 | |"
  fi
  if wants flood; then
    # The bound on memory: every hash in flight at once, plus 48 MiB.
    hashes=${argon2_max_concurrent:-$server_cores}
    rss_bound=$((hashes * argon2_memory + 48 * 1024))
    for mode in pinned unpinned; do
      p99s=() rss=() f_bad=0 f_to=0
      for ((r = 1; r <= rounds; r++)); do
        p99s+=("$(jget "$tmp/flood-$mode-health-r$r.json" lat_p99_us)")
        rss+=("$(cat "$tmp/flood-$mode-rss-r$r.txt")")
        f_bad=$((f_bad + $(jget "$tmp/flood-$mode-health-r$r.json" non2xx)))
        f_to=$((f_to + $(jget "$tmp/flood-$mode-health-r$r.json" timeouts)))
      done
      p99=$(median "${p99s[@]}")
      verdict "$p99 < 5000 && $f_to == 0" "$f_bad"
      echo "| 2 | \`GET /health\` p99 latency while $flood_conns connections flood \`/login\`, wrk $mode (median of $rounds rounds: $(list_ms "${p99s[@]}") ms) | $(ms "$p99") ms | — | — | < 5 ms | $result |"
      peak=$(printf '%s\n' "${rss[@]}" | sort -n | tail -n 1)
      verdict "$peak <= $rss_bound" 0
      echo "| 7 | service peak RSS during that flood, wrk $mode (each round: $(printf '%s KiB ' "${rss[@]}")) | $((peak / 1024)) MiB | $hashes hash(es) × $((argon2_memory / 1024)) MiB + 48 MiB | — | ≤ $((rss_bound / 1024)) MiB | $result |"
    done
  else
    echo "| 2 | \`/health\` p99 under a login flood | not run | | | < 5 ms | |"
  fi
  if wants me; then
    compared me
    verdict "$c_ratio >= 0.5" "$c_bad"
    echo "| 3 | \`GET /api/v1/users/me\` throughput (valid Bearer token; median of $rounds rounds, ratios $c_list) | $(fmt "$c_rps" %.0f) req/s | $(fmt "$c_base" %.0f) req/s, bare axum handler | $(fmt "$c_ratio" %.3f) | ≥ 0.5 | $result |"
  else
    echo "| 3 | \`/users/me\` throughput | not run | | | ≥ 0.5 | |"
  fi
  if wants health; then
    compared health
    echo "| i | \`GET /health\` throughput (informational: middleware cost; median of $rounds rounds, ratios $c_list) | $(fmt "$c_rps" %.0f) req/s | $(fmt "$c_base" %.0f) req/s, bare axum handler | $(fmt "$c_ratio" %.3f) | — | — |"
  fi
  for kind in refresh logout register; do
    if wants "$kind"; then
      rates=() ratios=() w_list="" w_bad=0 w_ex=0
      for ((r = 1; r <= rounds; r++)); do
        g=$(jget "$tmp/gh-$kind-r$r.json" ok_rps)
        l=$(jget "$tmp/limit-$kind-r$r.json" ops_per_sec)
        rates+=("$g")
        ratios+=("$(calc "$l > 0 ? $g / $l : 0")")
        w_list+="${w_list:+ / }$(fmt "$g" %.0f) vs $(fmt "$l" %.0f)"
        w_bad=$((w_bad + $(jget "$tmp/gh-$kind-r$r.json" non2xx)))
        [[ $kind == logout ]] && w_ex=$((w_ex + $(jget "$tmp/gh-$kind-r$r.json" exhausted)))
      done
      w_rate=$(median "${rates[@]}")
      w_ratio=$(median "${ratios[@]}")
      if [[ $kind == refresh ]]; then
        if [[ -n ${BENCH_DATABASE_URL:-} ]]; then w_target=1500; else w_target=3000; fi
        verdict "$w_rate >= $w_target" "$w_bad"
        echo "| 4 | \`POST /api/v1/auth/refresh\`, each request spending a live token ($write_conns connections; median of $rounds rounds, service vs limit per round: $w_list) | $(fmt "$w_rate" %.0f) rotations/s | write-limit: the spend transaction through the store, no HTTP, no audit entry | $(fmt "$w_ratio" %.3f) | ≥ $w_target/s | $result |"
      elif [[ $kind == register ]]; then
        verdict "1" "$w_bad"
        echo "| 6 | \`POST /api/v1/auth/register\`, each request a new account (informational; Argon2id m=${register_argon2[0]} KiB, t=${register_argon2[1]}, p=${register_argon2[2]} on a service of its own; $write_conns connections; median of $rounds rounds, service vs limit per round: $w_list) | $(fmt "$w_rate" %.0f) accounts/s | write-limit: the account, its token and mail in one transaction through the store, no hash, no HTTP, no audit entry | $(fmt "$w_ratio" %.3f) | — | $result |"
      else
        verdict "1" "$((w_bad + w_ex))"
        echo "| 5 | \`POST /api/v1/auth/logout\`, each request ending a live login (informational; $write_conns connections; median of $rounds rounds, service vs limit per round: $w_list) | $(fmt "$w_rate" %.0f) logouts/s | write-limit: find + revoke through the store, no HTTP, no audit entry | $(fmt "$w_ratio" %.3f) | — | $result |"
      fi
    fi
  done
  echo
  echo "### Raw numbers"
  echo
  echo "| run | server | path | connections | seconds | requests | 2xx req/s | non-2xx | socket errors (c/r/w) | timeouts | p50 ms | p90 ms | p99 ms | max ms |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  row() {
    local name=$1 server=$2 path=$3 note=$4 conns=$5 f=$tmp/$1.json
    [[ -s $f ]] || return 0
    echo "| $name | $server | \`$path\`$note | $conns | $(fmt "$(jget "$f" duration_s)" %.1f) | $(jget "$f" requests) | $(fmt "$(jget "$f" ok_rps)" %.2f) | $(jget "$f" non2xx) | $(jget "$f" connect_errors)/$(jget "$f" read_errors)/$(jget "$f" write_errors) | $(jget "$f" timeouts) | $(ms "$(jget "$f" lat_p50_us)") | $(ms "$(jget "$f" lat_p90_us)") | $(ms "$(jget "$f" lat_p99_us)") | $(ms "$(jget "$f" lat_max_us)") |"
  }
  row gh-login gatehouse /api/v1/auth/login "" "$login_conns"
  for ((r = 1; r <= rounds; r++)); do
    for mode in pinned unpinned; do
      row "flood-$mode-login-r$r" gatehouse /api/v1/auth/login " (the flood, wrk $mode)" "$flood_conns"
      row "flood-$mode-health-r$r" gatehouse /health " (probe during the flood, wrk $mode)" "$probe_conns"
    done
  done
  for kind in refresh logout register; do
    for ((r = 1; r <= rounds; r++)); do
      row "gh-$kind-r$r" gatehouse "/api/v1/auth/$kind" "" "$write_conns"
    done
  done
  for ((r = 1; r <= rounds; r++)); do
    row "gh-me-r$r" gatehouse /api/v1/users/me "" "$me_conns"
    row "bl-me-r$r" baseline-server /api/v1/users/me "" "$me_conns"
  done
  for ((r = 1; r <= rounds; r++)); do
    row "gh-health-r$r" gatehouse /health "" "$health_conns"
    row "bl-health-r$r" baseline-server /health "" "$health_conns"
  done
  if [[ -s $tmp/argon2.json ]]; then
    echo
    echo "argon2-rate (\`taskset -c $server_cpus\`):"
    echo
    echo '```json'
    cat "$tmp/argon2.json"
    echo '```'
  fi
} >"$results"

start_marker='<!-- bench:results:start -->'
end_marker='<!-- bench:results:end -->'
if [[ -f $output ]] && grep -qF "$start_marker" "$output" && grep -qF "$end_marker" "$output"; then
  awk -v res="$results" -v s="$start_marker" -v e="$end_marker" '
    $0 == s { print; while ((getline line < res) > 0) print line; skip = 1; next }
    $0 == e { skip = 0 }
    !skip { print }
  ' "$output" >"$tmp/output.md"
  cat "$tmp/output.md" >"$output"
else
  [[ -f $output ]] && echo >>"$output"
  {
    [[ -s $output ]] || printf '# Gatehouse benchmarks\n\n'
    echo "## Results"
    echo
    echo "$start_marker"
    cat "$results"
    echo "$end_marker"
  } >>"$output"
fi
log "results written to $output"
cat "$results"

if [[ $failed == 1 ]]; then
  log "at least one target was missed or a run had errors"
  [[ $strict == 1 ]] && exit 1
fi
exit 0
