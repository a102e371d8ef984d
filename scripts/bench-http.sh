#!/usr/bin/env bash
# HTTP benchmarks of the predict path, all on loopback, and a table of the figures:
#   1. throughput and p50/p99 latency of POST /predict (the seed's example, corrected) through
#      `fraudctl serve` under wrk (keep-alive, 2 connections per core, BENCH_SECONDS long);
#   2. the same for GET /predict?<20 fields> (JSON answer);
#   3. resident memory of the serving process after the load;
#   4. cold start of the predict Lambda binary (host build of functions/predict, `lambda`
#      profile) under a local Lambda Runtime API (scripts/bench_lambda_cold_start.py): process
#      start -> runtime ready with the champion loaded, and -> first answered invocation;
#      warm invocation latency through the runtime API; its resident memory.
# Every figure depends on the machine and on what else runs on it: compare runs on one machine.
#
# Environment:
#   BENCH_SECONDS=10     wrk duration per run
#   BENCH_CONNECTIONS    wrk connections (default 2 per core)
#   BENCH_RUNS=5         cold starts measured
#   BENCH_SKIP_BUILD=1   use the binaries already in $CARGO_TARGET_DIR/{release,lambda}
#   FRAUDCTL, PREDICT_BIN  use these binaries (skips their build)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${FRAUDRISK_CACHE:-$HOME/.cache/fraudrisk}
# shellcheck source=scripts/local-server.sh
source "$root/scripts/local-server.sh"

seconds=${BENCH_SECONDS:-10}
cores=$(nproc)
connections=${BENCH_CONNECTIONS:-$((2 * cores))}
threads=$(( cores < connections ? cores : connections ))
runs=${BENCH_RUNS:-5}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# --- tools ----------------------------------------------------------------------------------------
need_apt=()
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "bench-http: installing ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "${need_apt[@]}" >/dev/null 2>&1 || {
    apt-get update -qq && apt-get install -y -qq "${need_apt[@]}" >/dev/null
  }
fi

# --- binaries: fraudctl in release (what `cargo install` gives), predict in the `lambda` profile
# (what ships: fat LTO, one codegen unit) --------------------------------------------------------
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  if [ -z "${FRAUDCTL:-}" ]; then
    echo "bench-http: cargo build --release -p fraudctl (target dir $CARGO_TARGET_DIR)" >&2
    (cd "$root" && cargo build --release --quiet -p fraudctl)
  fi
  if [ -z "${PREDICT_BIN:-}" ]; then
    echo "bench-http: cargo build --profile lambda -p predict (target dir $CARGO_TARGET_DIR)" >&2
    (cd "$root" && cargo build --profile lambda --quiet -p predict)
  fi
fi
FRAUDCTL=${FRAUDCTL:-$CARGO_TARGET_DIR/release/fraudctl}
PREDICT_BIN=${PREDICT_BIN:-$CARGO_TARGET_DIR/lambda/predict}
export FRAUDCTL

# --- state and server -----------------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/fraudrisk-bench.XXXXXX")
cleanup() {
  stop_server
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The user of the sample events (events/manifest.json), so events/*.json work as they are.
user=merlin
password=wizard-pass
echo "bench-http: preparing the state (load-data, initialtrain, user $user)" >&2
prepare_state "$work/state" "$user" "$password"
start_server "$work/state"
echo "bench-http: fraudctl serve on $SERVER_URL (pid $SERVER_PID)" >&2

# The seed's example body, corrected (no_of_dependents 1), and the same fields as a query.
body=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["no_of_dependents"]=1; print(json.dumps(d, separators=(",", ":")))' \
  "$root/shared/src/seed_example.json")
query=$(python3 -c 'import json,sys,urllib.parse; print(urllib.parse.urlencode(json.loads(sys.argv[1])))' "$body")

# A request of each kind must answer 200 before it is timed.
for check in "POST /predict" "GET /predict?$query"; do
  method=${check%% *}
  target=${check#* }
  if [ "$method" = POST ]; then
    answer=$(curl -sS -u "$user:$password" -H 'Content-Type: application/json' -d "$body" \
      -w '\n%{http_code}' "$SERVER_URL$target")
  else
    answer=$(curl -sS -u "$user:$password" -H 'Accept: application/json' -w '\n%{http_code}' "$SERVER_URL$target")
  fi
  code=${answer##*$'\n'}
  if [ "$code" != 200 ] || ! grep -q '"message"' <<<"$answer"; then
    echo "bench-http: $method /predict answered $code: ${answer%$'\n'*}" >&2
    exit 1
  fi
done

# wrk: the request, and a summary line (microseconds) that this script reads.
auth=$(printf '%s:%s' "$user" "$password" | base64 -w0)
lua() { # $1 method, $2 path, $3 body ("" for none)
  cat <<LUA
wrk.method = "$1"
wrk.path = "$2"
wrk.headers["Authorization"] = "Basic $auth"
wrk.headers["Accept"] = "application/json"
$( [ -n "$3" ] && printf 'wrk.headers["Content-Type"] = "application/json"\nwrk.body = [[%s]]\n' "$3" )
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH requests=%d seconds=%.3f p50=%d p90=%d p99=%d max=%d non2xx=%d errors=%d\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.status, e.connect + e.read + e.write + e.timeout))
end
LUA
}
lua POST /predict "$body" >"$work/post.lua"
lua GET "/predict?$query" "" >"$work/get.lua"

declare -A result
run_wrk() { # $1 name, $2 lua file
  echo "bench-http: wrk -t$threads -c$connections -d${seconds}s $1" >&2
  local line
  line=$(wrk -t"$threads" -c"$connections" -d"${seconds}s" -s "$2" "$SERVER_URL" | tee "$work/$1.wrk" | grep '^BENCH ')
  field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$line"; }
  if [ "$(field non2xx)" != 0 ] || [ "$(field errors)" != 0 ]; then
    echo "bench-http: $1 had $(field non2xx) non-2xx answers and $(field errors) socket errors" >&2
    cat "$work/$1.wrk" >&2
    exit 1
  fi
  result[$1.rps]=$(awk -v r="$(field requests)" -v s="$(field seconds)" 'BEGIN { printf "%.0f", r / s }')
  local q
  for q in p50 p99 max; do
    result[$1.$q]=$(awk -v v="$(field $q)" 'BEGIN { printf "%.3f", v / 1000 }')
  done
}
run_wrk post "$work/post.lua"
run_wrk get "$work/get.lua"

read -r serve_rss serve_hwm < <(awk '/^VmRSS/ { r = $2 } /^VmHWM/ { h = $2 } END { printf "%.1f %.1f\n", r / 1024, h / 1024 }' "/proc/$SERVER_PID/status")
stop_server

# --- cold start of the predict Lambda binary -----------------------------------------------------------
echo "bench-http: cold start of $PREDICT_BIN ($runs runs) under a local Lambda Runtime API" >&2
_local_env
"${LOCAL_ENV[@]}" FRAUDRISK_STATE_DIR="$work/state" \
  python3 "$root/scripts/bench_lambda_cold_start.py" "$PREDICT_BIN" "$root/events/predict-post.json" \
  --runs "$runs" --warm 500 >"$work/cold.json"
cold() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.1f" % d[sys.argv[2]][sys.argv[3]])' "$work/cold.json" "$1" "$2"; }

# --- the table -------------------------------------------------------------------------------------------
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
echo
echo "Machine: $cores cores ($cpu); load average (1, 5, 15 min) at start: $load_start, at end: $load_end"
echo "wrk: $threads threads, $connections keep-alive connections, ${seconds} s per run, loopback"
echo
printf '| %-64s | %-28s |\n' "measure" "value"
printf '|%s|%s|\n' "$(printf -- '-%.0s' {1..66})" "$(printf -- '-%.0s' {1..30})"
row() { printf '| %-64s | %-28s |\n' "$1" "$2"; }
row "POST /predict (seed body), fraudctl serve: throughput" "${result[post.rps]} req/s"
row "POST /predict: latency p50 / p99 (max)" "${result[post.p50]} / ${result[post.p99]} ms (${result[post.max]})"
row "GET /predict?<20 fields> (JSON): throughput" "${result[get.rps]} req/s"
row "GET /predict: latency p50 / p99 (max)" "${result[get.p50]} / ${result[get.p99]} ms (${result[get.max]})"
row "fraudctl serve resident memory after the load (peak)" "$serve_rss MiB ($serve_hwm)"
row "predict Lambda binary: start -> runtime ready, champion loaded" "$(cold init_ms median) ms (min $(cold init_ms min))"
row "predict Lambda binary: start -> first answered invocation" "$(cold first_answer_ms median) ms (min $(cold first_answer_ms min))"
row "predict Lambda binary: warm invocation p50 / p99" "$(cold warm_p50_ms median) / $(cold warm_p99_ms median) ms"
row "predict Lambda binary: resident memory after 501 calls (peak)" "$(cold rss_mib median) MiB ($(cold peak_rss_mib median))"
echo
echo "Cold start: median of $runs runs; the first invocation includes the password check (argon2id)."
echo "Lambda figures are on this x86-64 host through a local runtime API, not on Graviton in AWS."
