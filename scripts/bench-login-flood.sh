#!/usr/bin/env bash
# Login flood: 64 parallel clients sending wrong passwords for 30 s against `fraudctl serve`
# (release build), each request from a new loopback address and for a new user name (the
# worst case: the failed-login limits never trigger, only the bounded hashing pool holds).
# Reports the server's peak and after-burst resident memory, the answers the attackers got
# (401, 503 with Retry-After when the pool's queue wait ran out), a valid user's p50/p99 on
# GET /hello during the burst, and the load average. Aim: peak < 150 MiB, valid p99 < 250 ms.
#
# Environment: FLOOD_CLIENTS=64, FLOOD_SECONDS=30, FRAUDCTL (skip the build), BENCH_SKIP_BUILD=1.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${FRAUDRISK_CACHE:-$HOME/.cache/fraudrisk}
# shellcheck source=scripts/local-server.sh
source "$root/scripts/local-server.sh"

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}
if [ -z "${FRAUDCTL:-}" ] && [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  echo "bench-login-flood: cargo build --release -p fraudctl" >&2
  (cd "$root" && cargo build --release --quiet -p fraudctl)
fi
FRAUDCTL=${FRAUDCTL:-$CARGO_TARGET_DIR/release/fraudctl}
export FRAUDCTL

work=$(mktemp -d "${TMPDIR:-/tmp}/fraudrisk-flood.XXXXXX")
cleanup() {
  stop_server
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

user=merlin
password=wizard-pass
echo "bench-login-flood: preparing the state" >&2
prepare_state "$work/state" "$user" "$password"
start_server "$work/state"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
echo "bench-login-flood: fraudctl serve on $SERVER_URL (pid $SERVER_PID); load at start $load_start" >&2
python3 "$root/scripts/bench_login_flood.py" --url "$SERVER_URL" --pid "$SERVER_PID" \
  --user "$user" --password "$password" \
  --clients "${FLOOD_CLIENTS:-64}" --seconds "${FLOOD_SECONDS:-30}" | tee "$work/flood.json"
echo "machine: $(nproc) cores; load average (1, 5, 15 min) at start: $load_start, at end: $(cut -d' ' -f1-3 /proc/loadavg)"
