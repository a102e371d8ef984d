#!/usr/bin/env bash
# The scale table (issue 12): `fraudctl load-data`, `initialtrain` and `retrain --mode always` at
# 10,000, 100,000 and 1,000,000 generated reference rows (plus a fifth as many shifted rows for
# the retrain), each in a fresh local state (SQLite, local artifacts and tracking), on ONE core
# (`taskset -c 0`, FRAUDRISK_TRAINING_THREADS=1): wall time and peak resident memory of each
# process (GNU time). Prints a Markdown table with the load average and the command.
#
#   bash scripts/bench-scale.sh [--services] [ROWS ...]   (default: 10000 100000 1000000)
#
# --services: the production adapters instead of the local state, as a deployment runs them:
# records in PostgreSQL (127.0.0.1:5432, a fresh database per size), runs, models and the
# registry in an `mlflow server` (its own PostgreSQL store, artifacts in S3), models and the
# champion pointer in S3 (moto's server). scripts/services.sh starts them on ports of their own
# (MOTO_PORT 5110, MLFLOW_PORT 5510, so a test run beside it is not disturbed) and restarts
# them for each size (a fresh registry); only fraudctl is held to one core, the services run
# on the other. The figures are fraudctl's own: the servers' memory is not in them.
#
# Environment: FRAUDCTL (a fraudctl binary; default: build it in release), BENCH_SCALE_DIR
# (where the states go; default a temporary folder, removed at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
services=false
if [ "${1:-}" = "--services" ]; then services=true; shift; fi
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10000 100000 1000000)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${FRAUDRISK_CACHE:-$HOME/.cache/fraudrisk}/target}
if [ -z "${FRAUDCTL:-}" ]; then
  cargo build --release --quiet -p fraudctl
  FRAUDCTL="$CARGO_TARGET_DIR/release/fraudctl"
fi
command -v /usr/bin/time >/dev/null || { echo "bench-scale.sh: needs GNU time (apt-get install time)" >&2; exit 1; }
work=${BENCH_SCALE_DIR:-$(mktemp -d)}
mkdir -p "$work"
[ -n "${BENCH_SCALE_DIR:-}" ] || trap 'rm -rf "$work"' EXIT
one_core=(taskset -c 0 env FRAUDRISK_TRAINING_THREADS=1)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# measure NAME CMD...: runs CMD, records "seconds peak_kib" in $work/NAME.time
measure() {
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/$name.time" "$@" >"$work/$name.out" 2>"$work/$name.err" || {
    echo "bench-scale.sh: $name failed:" >&2; tail -20 "$work/$name.err" >&2; exit 1; }
}
row() { # NAME -> "12.3 s | 456 MiB"
  read -r seconds kib <"$work/$1.time"
  printf '%.2f s | %d MiB' "$seconds" $((kib / 1024))
}

if $services; then
  export FRAUDRISK_SERVICES_DIR="$work/services" MOTO_PORT=${MOTO_PORT:-5110} MLFLOW_PORT=${MLFLOW_PORT:-5510} \
    FRAUDRISK_PG_DB=fraudrisk_scale FRAUDRISK_MLFLOW_DB=fraudrisk_scale_mlflow
  trap 'bash scripts/services.sh stop >/dev/null 2>&1 || true; [ -n "${BENCH_SCALE_DIR:-}" ] || rm -rf "$work"' EXIT
fi
# fresh_services N: a fresh app database, registry and bucket for size N, their settings exported.
fresh_services() {
  bash scripts/services.sh stop >/dev/null 2>&1 || true
  dropdb --if-exists -h 127.0.0.1 -U postgres "$FRAUDRISK_PG_DB"
  local settings
  settings=$(bash scripts/services.sh start 2>"$work/services-$1.log") ||
    { echo "bench-scale.sh: services did not start:" >&2; tail -20 "$work/services-$1.log" >&2; exit 1; }
  eval "$settings"
  export FRAUDRISK_ARTIFACT_PREFIX="scale-$1"
}

for n in "${sizes[@]}"; do
  state="$work/state-$n"
  echo "== $n rows: load-data, initialtrain, retrain" >&2
  if $services; then fresh_services "$n"; fi
  measure "load-$n" "$FRAUDCTL" load-data --state "$state" --reference-rows "$n" --shifted-rows $((n / 5))
  measure "initialtrain-$n" "${one_core[@]}" "$FRAUDCTL" initialtrain --state "$state"
  measure "retrain-$n" "${one_core[@]}" "$FRAUDCTL" retrain --state "$state" --mode always
done

echo
echo "| reference rows | load-data | initialtrain (1 core) | peak | retrain --mode always (1 core) | peak |"
echo "|---|---|---|---|---|---|"
for n in "${sizes[@]}"; do
  read -r ls _ <"$work/load-$n.time"
  echo "| $(printf "%'d" "$n") | ${ls} s | $(row "initialtrain-$n" | sed 's/ | / | /') | $(row "retrain-$n") |"
done
echo
if $services; then
  echo "state: PostgreSQL (records), mlflow server (runs, registry; artifacts in moto S3), moto S3 (models, champion)"
else
  echo "state: local (SQLite, artifact and tracking folders)"
fi
echo "load average $load_before at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end; $(nproc) cores;"
echo "command: bash scripts/bench-scale.sh $($services && echo '--services ')${sizes[*]}"
