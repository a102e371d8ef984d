#!/usr/bin/env bash
# Cold start and warm latency of the predict and authorizer Lambda binaries under a CPU quota
# that emulates each Lambda memory size, and a Markdown table of the figures.
#
# Lambda gives a function CPU in proportion to its memory: 1,769 MB is one vCPU, so 256 MB is
# 256/1769 = 14.5 % of one. Each size here runs the binaries inside a cgroup whose CPU quota
# is that share of one CPU: cgroup v1's cpu.cfs_quota_us over cpu.cfs_period_us = 100000 (v1's
# equivalent of cgroup v2's cpu.max "QUOTA 100000"); with cgroup v2 it writes cpu.max. Needs
# root (it creates the cgroup and removes it on exit).
#
# Per size, each measured by scripts/bench_lambda_cold_start.py (a local Lambda Runtime API:
# process start -> first answered invocation, then warm invocations of the same event):
#   predict, own check       events/predict-post.json: Basic auth checked by predict itself
#                            (the first invocation hashes with argon2id; warm ones hit the
#                            container's verified-pair cache)
#   predict, authorizer      events/predict-post-authorizer.json: the authorizer's context,
#                            no hashing at all (what runs behind API Gateway's authorizer)
#   authorizer, cache hit    events/authorizer-allowed.json: the first answer hashes; warm
#                            ones hit the authorizer's own verified-pair cache
#   authorizer, cache miss   the same event with FRAUDRISK_AUTH_CACHE_SECS=0: every warm
#                            answer is one argon2id check (what API Gateway's cache misses cost)
#
# The user store and the champion are local (SQLite and a folder in a temporary state), as in
# scripts/bench-http.sh: no network round trip is in these figures.
#
# Environment:
#   BENCH_SIZES="128 256 512 1024 1769"  memory sizes in MB
#   BENCH_RUNS=5           cold starts per measure (the table shows their median)
#   BENCH_WARM=200         warm invocations per cold start (cache-miss rows: BENCH_WARM_MISS=20)
#   BENCH_PROFILE=release  cargo profile of the two binaries (lambda: what ships, slow to build)
#   BENCH_SKIP_BUILD=1     use the binaries already built
#   FRAUDCTL               the fraudctl that prepares the state (else a dev build)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${FRAUDRISK_CACHE:-$HOME/.cache/fraudrisk}
# shellcheck source=scripts/local-server.sh
source "$root/scripts/local-server.sh"

sizes=${BENCH_SIZES:-"128 256 512 1024 1769"}
runs=${BENCH_RUNS:-5}
warm=${BENCH_WARM:-200}
warm_miss=${BENCH_WARM_MISS:-20}
profile=${BENCH_PROFILE:-release}
command_line="BENCH_SIZES=\"$sizes\" BENCH_RUNS=$runs BENCH_WARM=$warm BENCH_WARM_MISS=$warm_miss BENCH_PROFILE=$profile bash scripts/bench-cpu-quota.sh"

if [ "$(id -u)" != 0 ]; then
  echo "bench-cpu-quota: needs root to create a cgroup" >&2
  exit 2
fi
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  echo "bench-cpu-quota: cargo build --profile $profile -p predict -p authorizer (target dir $CARGO_TARGET_DIR)" >&2
  (cd "$root" && cargo build --locked --quiet --profile "$profile" -p predict -p authorizer)
fi
profile_dir=$profile
[ "$profile" = dev ] && profile_dir=debug
predict_bin=$CARGO_TARGET_DIR/$profile_dir/predict
authorizer_bin=$CARGO_TARGET_DIR/$profile_dir/authorizer
ensure_fraudctl bench-cpu-quota

# --- the cgroup ---------------------------------------------------------------------------------
group=fraudrisk-bench-$$
if [ -f /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then
  cgroup=/sys/fs/cgroup/cpu/$group
  set_quota() { echo 100000 >"$cgroup/cpu.cfs_period_us"; echo "$1" >"$cgroup/cpu.cfs_quota_us"; }
  cgroup_kind="cgroup v1 cpu.cfs_quota_us / cpu.cfs_period_us (v2: cpu.max)"
elif [ -f /sys/fs/cgroup/cpu.max ]; then
  cgroup=/sys/fs/cgroup/$group
  set_quota() { echo "$1 100000" >"$cgroup/cpu.max"; }
  cgroup_kind="cgroup v2 cpu.max"
else
  echo "bench-cpu-quota: no cgroup CPU controller found (/sys/fs/cgroup/cpu or cpu.max)" >&2
  exit 1
fi
mkdir "$cgroup"

work=$(mktemp -d "${TMPDIR:-/tmp}/fraudrisk-cpu-quota.XXXXXX")
cleanup() {
  # The functions are stopped by the benchmark; an emptied cgroup can be removed.
  rmdir "$cgroup" 2>/dev/null || echo "bench-cpu-quota: could not remove $cgroup" >&2
  rm -rf "$work"
}
trap cleanup EXIT

# --- the state: generated rows, a champion, the events' user --------------------------------------
user=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["test_user"]["username"])' "$root/events/manifest.json")
password=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["test_user"]["password"])' "$root/events/manifest.json")
echo "bench-cpu-quota: preparing the state in $work/state" >&2
fraudctl_local --state "$work/state" --format json load-data --reference-rows 2000 --shifted-rows 0 --generate reference >/dev/null
fraudctl_local --state "$work/state" --format json initialtrain >/dev/null
printf '%s\n' "$password" | fraudctl_local --state "$work/state" user add "$user" --password-stdin >/dev/null

_local_env
measure() { # NAME SIZE BINARY EVENT WARM EXPECT... (extra env in MEASURE_ENV)
  local name=$1 size=$2 binary=$3 event=$4 count=$5
  shift 5
  echo "bench-cpu-quota: $size MB: $name" >&2
  # shellcheck disable=SC2086 # MEASURE_ENV is zero or one NAME=VALUE word
  "${LOCAL_ENV[@]}" FRAUDRISK_STATE_DIR="$work/state" ${MEASURE_ENV:-} \
    python3 "$root/scripts/bench_lambda_cold_start.py" "$binary" "$event" \
    --runs "$runs" --warm "$count" --cgroup "$cgroup" --memory-mb "$size" "$@" \
    >"$work/$name-$size.json"
}

for size in $sizes; do
  quota=$(( size * 100000 / 1769 ))
  set_quota "$quota"
  MEASURE_ENV="" measure predict-own "$size" "$predict_bin" "$root/events/predict-post.json" "$warm"
  MEASURE_ENV="" measure predict-context "$size" "$predict_bin" "$root/events/predict-post-authorizer.json" "$warm"
  MEASURE_ENV="" measure authorizer-hit "$size" "$authorizer_bin" "$root/events/authorizer-allowed.json" "$warm" \
    --expect-status 0 --expect-authorized true
  MEASURE_ENV="FRAUDRISK_AUTH_CACHE_SECS=0" measure authorizer-miss "$size" "$authorizer_bin" \
    "$root/events/authorizer-allowed.json" "$warm_miss" --expect-status 0 --expect-authorized true
done

# --- the table -----------------------------------------------------------------------------------
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
echo
echo "Machine: $(nproc) cores ($cpu); load average (1, 5, 15 min) at start: $load_start, at end: $load_end"
echo "Command: $command_line"
echo "Binaries: host build, profile $profile; quota: $cgroup_kind, period 100 ms; median of $runs cold starts"
echo
python3 - "$work" "$sizes" <<'PY'
import json, os, sys
work, sizes = sys.argv[1], sys.argv[2].split()
def get(name, size, key):
    with open(os.path.join(work, f"{name}-{size}.json")) as f:
        return json.load(f)[key]["median"]
print("| memory | CPU (of one vCPU) | predict cold, own argon2 check | predict cold, authorizer context | ratio | predict warm p50 / p99: own check (cached) | predict warm p50 / p99: context | authorizer cold (argon2) | authorizer warm, cache hit p50 / p99 | authorizer warm, cache miss (argon2) p50 / p99 |")
print("|---|---|---|---|---|---|---|---|---|---|")
for size in sizes:
    share = int(size) / 1769
    own, ctx = get("predict-own", size, "first_answer_ms"), get("predict-context", size, "first_answer_ms")
    print(
        f"| {size} MB | {share:.1%} "
        f"| {own:.1f} ms | {ctx:.1f} ms | {own / ctx:.2f}x "
        f"| {get('predict-own', size, 'warm_p50_ms'):.2f} / {get('predict-own', size, 'warm_p99_ms'):.2f} ms "
        f"| {get('predict-context', size, 'warm_p50_ms'):.2f} / {get('predict-context', size, 'warm_p99_ms'):.2f} ms "
        f"| {get('authorizer-hit', size, 'first_answer_ms'):.1f} ms "
        f"| {get('authorizer-hit', size, 'warm_p50_ms'):.2f} / {get('authorizer-hit', size, 'warm_p99_ms'):.2f} ms "
        f"| {get('authorizer-miss', size, 'warm_p50_ms'):.1f} / {get('authorizer-miss', size, 'warm_p99_ms'):.1f} ms |"
    )
PY
echo
echo "Cold: process start -> first answered invocation (runtime ready, store opened, champion loaded for predict)."
echo "Warm: round trip of one invocation through the local runtime API. Host x86-64, not Graviton."
