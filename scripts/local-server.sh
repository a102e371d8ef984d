# shellcheck shell=bash
# Helpers for scripts that run `fraudctl serve` on loopback over a fresh local state
# (scripts/browser-test.sh, scripts/bench-http.sh). Source it; it defines functions only.
#
#   fraudctl_local ARGS...        fraudctl on the embedded adapters only (SQLite and folders):
#                                 every production setting is removed from the environment and
#                                 no credentials.env is read, so a developer's settings never
#                                 leak into a test run
#   ensure_fraudctl NAME          build fraudctl (dev profile) unless FRAUDCTL names a binary;
#                                 exports FRAUDCTL (NAME prefixes the messages)
#   temporary_state NAME          a fresh state folder in $STATE, removed on exit unless
#                                 KEEP_STATE=1 (the server is stopped first)
#   prepare_state DIR USER PASS   load-data (generated; extra options in LOAD_DATA_ARGS),
#                                 initialtrain, add a user
#   start_server DIR              serve on 127.0.0.1:<free port>; sets SERVER_PID, SERVER_URL
#   stop_server                   SIGTERM, wait for the graceful stop (kill after 15 s)
#
# The caller sets FRAUDCTL (the binary) and traps stop_server.
# shellcheck disable=SC2034 # SERVER_URL, SERVER_LOG, STATE and LOCAL_ENV are for the caller

# Every setting of credentials.env.example that selects or configures a production adapter.
_FRAUDRISK_SETTINGS=(
  FRAUDRISK_DATABASE_URL FRAUDRISK_DB_SECRET_ID FRAUDRISK_DB_NAME FRAUDRISK_DB_SSLMODE
  FRAUDRISK_DB_CA_FILE FRAUDRISK_DB_POOL_SIZE FRAUDRISK_DB_CONNECT_TIMEOUT_SECS
  FRAUDRISK_BUCKET FRAUDRISK_ARTIFACT_PREFIX FRAUDRISK_S3_FORCE_PATH_STYLE
  MLFLOW_TRACKING_URI MLFLOW_TRACKING_USERNAME MLFLOW_TRACKING_PASSWORD
  FRAUDRISK_MLFLOW_SECRET_ID FRAUDRISK_MLFLOW_TIMEOUT_SECS FRAUDRISK_MLFLOW_MAX_TRIES
  AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 AWS_ENDPOINT_URL_SECRETS_MANAGER
  FRAUDRISK_STATE_DIR FRAUDRISK_ADDR FRAUDRISK_CREDENTIALS_FILE
)

# `env` with every such setting removed and an empty credentials file (so ./credentials.env,
# wherever the caller stands, is not read either).
_local_env() {
  local name
  LOCAL_ENV=(env)
  for name in "${_FRAUDRISK_SETTINGS[@]}"; do LOCAL_ENV+=(-u "$name"); done
  LOCAL_ENV+=(FRAUDRISK_CREDENTIALS_FILE=/dev/null "RUST_LOG=${RUST_LOG:-warn}")
}

fraudctl_local() {
  _local_env
  "${LOCAL_ENV[@]}" "$FRAUDCTL" "$@"
}

ensure_fraudctl() {
  local name=$1 root
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  if [ -z "${FRAUDCTL:-}" ]; then
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${FRAUDRISK_CACHE:-$HOME/.cache/fraudrisk}/target}
    echo "$name: cargo build -p fraudctl (target dir $CARGO_TARGET_DIR)" >&2
    (cd "$root" && cargo build --quiet --locked -p fraudctl)
    FRAUDCTL=$CARGO_TARGET_DIR/debug/fraudctl
  fi
  export FRAUDCTL
}

temporary_state() {
  _TEMPORARY_STATE_NAME=$1
  STATE=$(mktemp -d "${TMPDIR:-/tmp}/fraudrisk-$1.XXXXXX")
  trap _remove_temporary_state EXIT
  trap 'exit 130' INT TERM
}

# shellcheck disable=SC2317 # called by the trap
_remove_temporary_state() {
  stop_server
  if [ "${KEEP_STATE:-0}" = 1 ]; then
    echo "$_TEMPORARY_STATE_NAME: state kept in $STATE" >&2
  else
    rm -rf "$STATE"
  fi
}

prepare_state() {
  local dir=$1 user=$2 password=$3
  mkdir -p "$dir"
  # shellcheck disable=SC2086 # LOAD_DATA_ARGS is a list of options
  fraudctl_local --state "$dir" --format json load-data ${LOAD_DATA_ARGS:-} >"$dir/load-data.json"
  fraudctl_local --state "$dir" --format json initialtrain >"$dir/initialtrain.json"
  printf '%s\n' "$password" | fraudctl_local --state "$dir" user add "$user" --password-stdin >/dev/null
}

start_server() {
  local dir=$1 waited=0
  SERVER_LOG=$dir/serve.log
  SERVER_OUT=$dir/serve.out
  _local_env
  # A simple command, so $! is the server itself (env execs it), not a subshell around it.
  "${LOCAL_ENV[@]}" "$FRAUDCTL" --state "$dir" serve --addr 127.0.0.1:0 >"$SERVER_OUT" 2>"$SERVER_LOG" &
  SERVER_PID=$!
  # `fraudctl serve` prints exactly one line on standard output: "listening on http://ADDR".
  until grep -q '^listening on http://' "$SERVER_OUT" 2>/dev/null; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "fraudctl serve exited before listening:" >&2
      cat "$SERVER_LOG" >&2
      SERVER_PID=
      return 1
    fi
    if [ "$waited" -ge 300 ]; then
      echo "fraudctl serve did not listen within 30 s" >&2
      return 1
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  SERVER_URL=$(sed -n 's/^listening on //p' "$SERVER_OUT" | head -n1)
}

stop_server() {
  [ -n "${SERVER_PID:-}" ] || return 0
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true

    for _ in $(seq 150); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}
