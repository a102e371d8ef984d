#!/usr/bin/env bash
# Two builds side by side in one run, so machine load affects both alike (scripts/bench-http.sh
# measures one build): `fraudctl serve` of each over its own fresh state, both listening, then
# ROUNDS rounds of wrk (2 threads, 4 keep-alive connections, SECONDS each) on POST /predict and
# GET /predict?<20 fields>, the order old/new alternating between rounds; each line gives
# req/s, p50/p99 (ms) and the server's CPU time per request (utime + stime from /proc, which
# contention inflates less than it cuts throughput). Then, when predict binaries are given,
# ROUNDS alternating cold-start runs of each (scripts/bench_lambda_cold_start.py, 5 starts).
#
# Usage: bench-http-ab.sh OLD_FRAUDCTL NEW_FRAUDCTL [OLD_PREDICT NEW_PREDICT [ROUNDS [SECONDS]]]
#   (pass "" "" for the predict binaries to skip the cold starts)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/local-server.sh
source "$root/scripts/local-server.sh"
OLD=$1 NEW=$2 OLDP=${3:-} NEWP=${4:-} ROUNDS=${5:-3} SECS=${6:-10}
work=$(mktemp -d "${TMPDIR:-/tmp}/fraudrisk-ab.XXXXXX")
user=merlin password=wizard-pass
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap 'cleanup; rm -rf "$work"' EXIT
declare -A url
for v in old new; do
  if [ $v = old ]; then FRAUDCTL=$OLD; else FRAUDCTL=$NEW; fi
  prepare_state "$work/$v" "$user" "$password"
  start_server "$work/$v"
  url[$v]=$SERVER_URL; pids+=("$SERVER_PID"); eval "pid_$v=$SERVER_PID"
  SERVER_PID=
done
body=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["no_of_dependents"]=1; print(json.dumps(d, separators=(",", ":")))' "$root/shared/src/seed_example.json")
query=$(python3 -c 'import json,sys,urllib.parse; print(urllib.parse.urlencode(json.loads(sys.argv[1])))' "$body")
auth=$(printf '%s:%s' "$user" "$password" | base64 -w0)
lua() { cat <<LUA
wrk.method = "$1"
wrk.path = "$2"
wrk.headers["Authorization"] = "Basic $auth"
wrk.headers["Accept"] = "application/json"
$( [ -n "$3" ] && printf 'wrk.headers["Content-Type"] = "application/json"\nwrk.body = [[%s]]\n' "$3" )
done = function(summary, latency, requests)
  io.write(string.format("BENCH rps=%.0f p50=%.3f p99=%.3f non2xx=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50)/1000, latency:percentile(99)/1000,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
}
lua POST /predict "$body" >"$work/post.lua"
lua GET "/predict?$query" "" >"$work/get.lua"
for v in old new; do curl -sS -u "$user:$password" -H 'Content-Type: application/json' -d "$body" "${url[$v]}/predict" | head -c 300; echo; done
echo "load at start: $(cat /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
  for kind in post get; do
    for v in old new; do
      [ $((r % 2)) = 0 ] && { [ $v = old ] && v=new || v=old; }
      p=pid_$v
      t0=$(awk '{print $14+$15}' /proc/${!p}/stat)
      out=$(wrk -t2 -c4 -d"${SECS}s" -s "$work/$kind.lua" "${url[$v]}")
      t1=$(awk '{print $14+$15}' /proc/${!p}/stat)
      line=$(grep '^BENCH' <<<"$out")
      reqs=$(grep -o '[0-9]* requests in' <<<"$out" | cut -d' ' -f1)
      cpu=$(awk -v a=$t0 -v b=$t1 -v n=$reqs -v hz=$(getconf CLK_TCK) 'BEGIN{printf "%.1f", (b-a)/hz*1e6/n}')
      echo "round=$r $kind $v $line cpu_us_per_req=$cpu load=$(cut -d' ' -f1 /proc/loadavg)"
    done
  done
done
for v in old new; do p=pid_$v; awk -v v=$v '/^VmRSS/ { r = $2 } /^VmHWM/ { h = $2 } END { printf "%s rss=%.1f hwm=%.1f MiB\n", v, r / 1024, h / 1024 }' /proc/${!p}/status; done
cleanup; pids=()
if [ -n "$OLDP" ]; then
  _local_env
  for r in $(seq "$ROUNDS"); do
    for v in old new; do
      [ $((r % 2)) = 0 ] && { [ $v = old ] && v=new || v=old; }
      if [ $v = old ]; then b=$OLDP; else b=$NEWP; fi
      "${LOCAL_ENV[@]}" FRAUDRISK_STATE_DIR="$work/$v" python3 "$root/scripts/bench_lambda_cold_start.py" "$b" "$root/events/predict-post.json" --runs 5 --warm 200 >"$work/cold-$v-$r.json"
      python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("cold round=%s %s init=%.1f first=%.1f (min %.1f) warm_p50=%.2f rss=%.1f" % (sys.argv[2], sys.argv[3], d["init_ms"]["median"], d["first_answer_ms"]["median"], d["first_answer_ms"]["min"], d["warm_p50_ms"]["median"], d["rss_mib"]["median"]))' "$work/cold-$v-$r.json" "$r" "$v"
      echo "  load=$(cut -d' ' -f1 /proc/loadavg)"
    done
  done
fi
echo "load at end: $(cat /proc/loadavg)"
rm -rf "$work"
