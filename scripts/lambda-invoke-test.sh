#!/usr/bin/env bash
# Every file in events/ through the real Lambda runtime emulator: starts `cargo lambda watch`
# (which builds and runs every function as Lambda would, over the Runtime API) on a fresh
# local state, sends each event with `cargo lambda invoke <function> --data-file events/<file>`,
# and checks the answer against events/manifest.json (scripts/lambda_invoke_check.py).
# This is what the README's "Running the functions locally" shows, done end to end.
# The training functions hand their jobs to themselves through the Lambda Invoke API: here
# AWS_ENDPOINT_URL_LAMBDA points it at `cargo lambda watch`, which emulates that API (it runs
# an Event invocation to its end before answering, so POST /retrain's 202 comes after the job;
# `--concurrency 2` lets a second instance of the function take the job while the first waits:
# with one instance the self-invocation waited for itself until the SDK gave up after 90 s).
#
# Environment:
#   FRAUDCTL=path        use this fraudctl binary (else: cargo build -p fraudctl)
#   LAMBDA_PORT=9000     where `cargo lambda watch` listens (a free port by default)
#   KEEP_STATE=1         keep the state folder and the watch log
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${FRAUDRISK_CACHE:-$HOME/.cache/fraudrisk}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}
# shellcheck source=scripts/local-server.sh
source "$root/scripts/local-server.sh"

venv=$(bash "$root/scripts/python-env.sh")
cargo_lambda=("$venv/bin/cargo-lambda" lambda)

# Build first, so the first invocation of each function does not wait for `watch` to compile
# it (watch runs `cargo run` of the same dev profile, which then finds everything built).
build=(-p hello -p initialtrain -p retrain -p predict -p outcomes -p ingest -p monitor -p authorizer)
[ -n "${FRAUDCTL:-}" ] || build+=(-p fraudctl)
echo "lambda-invoke-test: cargo build ${build[*]}" >&2
(cd "$root" && cargo build --quiet "${build[@]}")
FRAUDCTL=${FRAUDCTL:-$CARGO_TARGET_DIR/debug/fraudctl}
export FRAUDCTL

work=$(mktemp -d "${TMPDIR:-/tmp}/fraudrisk-lambda.XXXXXX")
watch_pid=
cleanup() {
  local rc=$?
  if [ -n "$watch_pid" ] && kill -0 "$watch_pid" 2>/dev/null; then
    # watch runs the functions as its children: stop the whole process group.
    kill -TERM -- "-$watch_pid" 2>/dev/null || kill -TERM "$watch_pid" 2>/dev/null || true
    wait "$watch_pid" 2>/dev/null || true
  fi
  if [ "$rc" != 0 ] && [ -f "$work/watch.log" ]; then
    echo "---- cargo lambda watch (last 40 lines) ----" >&2
    tail -n 40 "$work/watch.log" >&2
  fi
  if [ "${KEEP_STATE:-0}" = 1 ]; then
    echo "lambda-invoke-test: state kept in $work" >&2
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The state the events expect: generated reference and shifted rows and the events' user,
# but no model yet (initialtrain.json trains version 1; the events run in file-name order,
# as in shared/tests/http_events.rs).
user=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["test_user"]["username"])' "$root/events/manifest.json")
password=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["test_user"]["password"])' "$root/events/manifest.json")
fraudctl_local --state "$work/state" --format json load-data >/dev/null
printf '%s\n' "$password" | fraudctl_local --state "$work/state" user add "$user" --password-stdin >/dev/null
# The manifest's seeded predictions (fixed ids the outcomes events report on), logged as the
# predict function logs them.
python3 - "$root/events/manifest.json" "$work/state/fraudrisk.sqlite3" <<'PY'
import datetime, json, sqlite3, sys
seeded = json.load(open(sys.argv[1]))["seed_predictions"]
now = datetime.datetime.now(datetime.timezone.utc).isoformat()
with sqlite3.connect(sys.argv[2]) as db:
    for prediction_id in seeded["prediction_ids"]:
        db.execute(
            "INSERT INTO predictions (prediction_id, created_at, model_version, threshold, "
            "probability_of_fraud, fraud, features, username) VALUES (?, ?, 1, 0.5, 0.25, 0, ?, 'merlin')",
            (prediction_id, now, json.dumps(seeded["features"])),
        )
PY
# The manifest's seeded training jobs, queued (the job events run them).
python3 - "$root/events/manifest.json" "$work/state/fraudrisk.sqlite3" <<'PY'
import datetime, json, sqlite3, sys
now = datetime.datetime.now(datetime.timezone.utc).isoformat()
with sqlite3.connect(sys.argv[2]) as db:
    for job in json.load(open(sys.argv[1]))["seed_jobs"]:
        db.execute(
            "INSERT INTO jobs (job_id, kind, state, parameters, username, created_at) "
            "VALUES (?, ?, 'queued', ?, 'merlin', ?)",
            (job["job_id"], job["kind"], json.dumps(job["parameters"]), now),
        )
PY
# The manifest's seeded objects, where the local artifact store keeps incoming files.
python3 - "$root/events/manifest.json" "$work/state/artifacts" <<'PY'
import json, os, sys
for key, content in json.load(open(sys.argv[1]))["seed_objects"].items():
    path = os.path.join(sys.argv[2], key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(content)
PY

port=${LAMBDA_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
echo "lambda-invoke-test: cargo lambda watch on 127.0.0.1:$port (state $work/state)" >&2
# Same isolation as fraudctl_local: only the embedded adapters, whatever the caller exported.
_local_env
# A simple command, so $! is setsid itself, which (not a group leader here) becomes the leader
# of a new process group: the cleanup stops watch and the functions it started together.
cd "$root"
setsid "${LOCAL_ENV[@]}" "${cargo_lambda[@]}" watch --ignore-changes \
  --invoke-address 127.0.0.1 --invoke-port "$port" --concurrency 2 \
  --env-var "FRAUDRISK_STATE_DIR=$work/state" --env-var "FRAUDRISK_CREDENTIALS_FILE=/dev/null" \
  --env-var "AWS_ENDPOINT_URL_LAMBDA=http://127.0.0.1:$port" --env-var "AWS_REGION=eu-central-1" \
  --env-var "AWS_ACCESS_KEY_ID=local" --env-var "AWS_SECRET_ACCESS_KEY=local" \
  --env-var "RUST_LOG=warn" >"$work/watch.log" 2>&1 &
watch_pid=$!

"$venv/bin/python" "$root/scripts/lambda_invoke_check.py" \
  --cargo-lambda "$venv/bin/cargo-lambda" --port "$port" --events "$root/events" --workdir "$root"
