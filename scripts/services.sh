#!/usr/bin/env bash
# Starts, checks and stops the real services the integration tests run against:
#   - moto's server (S3 + Secrets Manager APIs) on 127.0.0.1:$MOTO_PORT (default 5100)
#   - an MLflow tracking server with HTTP Basic auth on 127.0.0.1:$MLFLOW_PORT (default 5500),
#     backend store in the local PostgreSQL (127.0.0.1:5432, user postgres, trust auth),
#     artifacts in moto's S3 (s3://$FRAUDRISK_BUCKET/mlflow), also served by the mlflow-artifacts proxy
# and the PostgreSQL databases (the app database and MLflow's).
#
# Usage: bash scripts/services.sh start|stop|restart|status|env
#   start    start everything (no-op if already running and healthy), then print the env file
#   stop     stop both servers (idempotent)
#   restart  stop, then start
#   status   exit 0 if both servers are up and healthy
#   env      print the env file (`export VAR=value` lines): eval "$(bash scripts/services.sh env)"
#
# Settings (environment; defaults in brackets):
#   FRAUDRISK_SERVICES_DIR     state dir: pid files, logs, env file [${FRAUDRISK_CACHE:-~/.cache/fraudrisk}/services]
#   MOTO_PORT [5100]  MLFLOW_PORT [5500]  FRAUDRISK_PG_PORT [5432]  FRAUDRISK_PG_USER [postgres]
#   FRAUDRISK_BUCKET [fraudrisk-artifacts]    S3 bucket (artifacts under s3://BUCKET/mlflow)
#   FRAUDRISK_PG_DB [fraudrisk_it]            app database (created if missing, kept)
#   FRAUDRISK_MLFLOW_DB [fraudrisk_mlflow]    MLflow backend store (dropped and recreated on each start)
#   FRAUDRISK_MLFLOW_USERNAME [admin]  FRAUDRISK_MLFLOW_PASSWORD [fraudrisk-test-password] (>= 12 chars)
#   FRAUDRISK_MLFLOW_ARTIFACTS [s3]  s3: runs get s3://BUCKET/mlflow/<exp>/<run>/artifacts;
#                                    proxy: runs get mlflow-artifacts:/<exp>/<run>/artifacts
#   FRAUDRISK_SERVICES_TIMEOUT [120]  seconds to wait for the servers to answer
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${FRAUDRISK_CACHE:-$HOME/.cache/fraudrisk}
STATE=${FRAUDRISK_SERVICES_DIR:-$cache/services}
HOST=127.0.0.1
MOTO_PORT=${MOTO_PORT:-5100}
MLFLOW_PORT=${MLFLOW_PORT:-5500}
PG_PORT=${FRAUDRISK_PG_PORT:-5432}
PG_USER=${FRAUDRISK_PG_USER:-postgres}
BUCKET=${FRAUDRISK_BUCKET:-fraudrisk-artifacts}
APP_DB=${FRAUDRISK_PG_DB:-fraudrisk_it}
MLFLOW_DB=${FRAUDRISK_MLFLOW_DB:-fraudrisk_mlflow}
MLFLOW_USER=${FRAUDRISK_MLFLOW_USERNAME:-admin}
MLFLOW_PW=${FRAUDRISK_MLFLOW_PASSWORD:-fraudrisk-test-password}
ARTIFACT_MODE=${FRAUDRISK_MLFLOW_ARTIFACTS:-s3}
TIMEOUT=${FRAUDRISK_SERVICES_TIMEOUT:-120}
DB_SECRET_ID=fraudrisk/database
MLFLOW_SECRET_ID=fraudrisk/mlflow
ENV_FILE=$STATE/services.env

log() { echo "services: $*" >&2; }
die() { echo "services: error: $*" >&2; exit 1; }

validate() {
  local p
  for p in "$MOTO_PORT" "$MLFLOW_PORT" "$PG_PORT" "$TIMEOUT"; do
    [[ $p =~ ^[0-9]+$ ]] || die "not a number: '$p' (MOTO_PORT, MLFLOW_PORT, FRAUDRISK_PG_PORT, FRAUDRISK_SERVICES_TIMEOUT)"
  done
  [ "$MOTO_PORT" != "$MLFLOW_PORT" ] || die "MOTO_PORT and MLFLOW_PORT must differ"
  [[ $APP_DB =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "bad database name FRAUDRISK_PG_DB='$APP_DB'"
  [[ $MLFLOW_DB =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "bad database name FRAUDRISK_MLFLOW_DB='$MLFLOW_DB'"
  [ "$APP_DB" != "$MLFLOW_DB" ] || die "FRAUDRISK_PG_DB and FRAUDRISK_MLFLOW_DB must differ"
  [[ $BUCKET =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] || die "bad S3 bucket name FRAUDRISK_BUCKET='$BUCKET'"
  [ ${#MLFLOW_PW} -ge 12 ] || die "FRAUDRISK_MLFLOW_PASSWORD must be at least 12 characters (MLflow's rule)"
  [[ $MLFLOW_USER != *:* && -n $MLFLOW_USER ]] || die "bad FRAUDRISK_MLFLOW_USERNAME='$MLFLOW_USER'"
  case "$ARTIFACT_MODE" in s3|proxy) ;; *) die "FRAUDRISK_MLFLOW_ARTIFACTS must be s3 or proxy" ;; esac
}

# ---- process bookkeeping -------------------------------------------------------------------

# pid of a service if its pid file names a live process that is really that service, else empty.
svc_pid() {
  local name=$1 pat pid
  case "$name" in moto) pat=moto_server ;; mlflow) pat="mlflow server" ;; esac
  [ -f "$STATE/$name.pid" ] || return 0
  pid=$(cat "$STATE/$name.pid" 2>/dev/null || true)
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  alive "$pid" || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pat" || return 0
  echo "$pid"
}

# True if the process exists and is not a zombie (an exited server may linger as one until its
# new parent reaps it, and kill -0 would still succeed on it).
alive() {
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# Start a command in its own session (so stop can signal the whole process group), logging to
# $STATE/NAME.log, and record its pid.
launch() {
  local name=$1; shift
  local cmdline="$*"
  cmdline=${cmdline//"$MLFLOW_PW"/<password>}
  cmdline=$(sed -E 's/(SECRET_KEY=)[^ ]*/\1<secret>/' <<<"$cmdline")
  echo "==== $(date -u +%FT%TZ) starting $name: $cmdline" >>"$STATE/$name.log"
  # 9>&-: the server must not inherit (and so hold) the start/stop lock.
  setsid "$@" >>"$STATE/$name.log" 2>&1 </dev/null 9>&- &
  echo $! >"$STATE/$name.pid"
}

stop_one() {
  local name=$1 pid pgid i
  pid=$(svc_pid "$name")
  if [ -z "$pid" ]; then
    rm -f "$STATE/$name.pid"
    return 0
  fi
  pgid=$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ' || true)
  log "stopping $name (pid $pid)"
  # The servers run in their own session (launch uses setsid): signal the whole group so the
  # uvicorn worker under `mlflow server` goes too. Fall back to the pid alone otherwise.
  if [ "$pgid" = "$pid" ]; then kill -TERM -- "-$pid" 2>/dev/null || true; else kill -TERM "$pid" 2>/dev/null || true; fi
  for i in $(seq 1 60); do
    alive "$pid" || break
    sleep 0.25
  done
  if alive "$pid"; then
    log "$name did not exit within 15 s: killing it"
    if [ "$pgid" = "$pid" ]; then kill -KILL -- "-$pid" 2>/dev/null || true; else kill -KILL "$pid" 2>/dev/null || true; fi
    sleep 0.5
  fi
  # Leftover group members (if any) after the leader exited.
  if [ "$pgid" = "$pid" ] && pgrep -g "$pid" >/dev/null 2>&1; then
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$STATE/$name.pid"
}

port_busy() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# ---- health checks ---------------------------------------------------------------------------

http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" 2>/dev/null || true; }

moto_up() { [ "$(http_code "http://$HOST:$MOTO_PORT/")" = 200 ]; }
# Healthy = answers and holds our bucket (moto keeps state in memory only).
moto_healthy() { [ "$(http_code -I "http://$HOST:$MOTO_PORT/$BUCKET")" = 200 ]; }
# Healthy = the REST API answers an authenticated call (so the backend store works too).
mlflow_healthy() {
  [ "$(http_code -u "$MLFLOW_USER:$MLFLOW_PW" \
    "http://$HOST:$MLFLOW_PORT/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default")" = 200 ]
}

healthy() {
  [ -n "$(svc_pid moto)" ] && [ -n "$(svc_pid mlflow)" ] && moto_healthy && mlflow_healthy
}

show_logs() {
  local name
  for name in moto mlflow; do
    if [ -f "$STATE/$name.log" ]; then
      echo "----- last 40 lines of $STATE/$name.log -----" >&2
      tail -n 40 "$STATE/$name.log" >&2
    fi
  done
}

# wait_for NAME CHECK PID: poll CHECK until it succeeds, the deadline passes or the process dies.
wait_for() {
  local name=$1 check=$2 pid=$3
  while ! "$check"; do
    if ! alive "$pid"; then
      show_logs
      die "$name exited during startup (log: $STATE/$name.log)"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      show_logs
      die "$name did not become healthy within ${TIMEOUT}s (log: $STATE/$name.log)"
    fi
    sleep 0.5
  done
}

# ---- env file ---------------------------------------------------------------------------------

write_env() {
  local tmp=$ENV_FILE.tmp
  {
    echo "# Written by scripts/services.sh start: the services the integration tests use."
    local kv
    for kv in \
      "FRAUDRISK_SERVICES_DIR=$STATE" \
      "MLFLOW_TRACKING_URI=http://$HOST:$MLFLOW_PORT" \
      "MLFLOW_TRACKING_USERNAME=$MLFLOW_USER" \
      "MLFLOW_TRACKING_PASSWORD=$MLFLOW_PW" \
      "MLFLOW_S3_ENDPOINT_URL=http://$HOST:$MOTO_PORT" \
      "AWS_ENDPOINT_URL=http://$HOST:$MOTO_PORT" \
      "AWS_ENDPOINT_URL_S3=http://$HOST:$MOTO_PORT" \
      "AWS_ENDPOINT_URL_SECRETS_MANAGER=http://$HOST:$MOTO_PORT" \
      "AWS_ACCESS_KEY_ID=test" \
      "AWS_SECRET_ACCESS_KEY=test" \
      "AWS_REGION=us-east-1" \
      "AWS_DEFAULT_REGION=us-east-1" \
      "FRAUDRISK_BUCKET=$BUCKET" \
      "FRAUDRISK_DATABASE_URL=postgres://$PG_USER@$HOST:$PG_PORT/$APP_DB" \
      "FRAUDRISK_DB_SECRET_ID=$DB_SECRET_ID" \
      "FRAUDRISK_MLFLOW_SECRET_ID=$MLFLOW_SECRET_ID"; do
      printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}"
    done
  } >"$tmp"
  chmod 600 "$tmp"
  mv -f "$tmp" "$ENV_FILE"
}

print_env() {
  [ -f "$ENV_FILE" ] || die "no env file at $ENV_FILE: run 'bash $here/services.sh start' first"
  cat "$ENV_FILE"
}

# ---- commands ----------------------------------------------------------------------------------

python_env() {
  venv=$(bash "$here/python-env.sh")
  py=$venv/bin/python
  [ -x "$venv/bin/mlflow" ] && [ -x "$venv/bin/moto_server" ] || die "mlflow or moto_server missing from $venv"
  # `mlflow server --app-name basic-auth` needs MLflow's `auth` extra (Flask-WTF).
  "$py" -c 'import flask_wtf' 2>/dev/null ||
    die "Flask-WTF is missing from $venv: MLflow's basic-auth app needs it; scripts/requirements.txt must say mlflow[auth]==3.* (then rerun)"
}

# Environment for the child processes: dummy AWS credentials, moto as the S3 endpoint, and none
# of the caller's AWS profile/session settings (those would leak real-account config into moto).
child_env=(env -u AWS_PROFILE -u AWS_SESSION_TOKEN -u AWS_SECURITY_TOKEN -u AWS_CONFIG_FILE
  -u AWS_SHARED_CREDENTIALS_FILE -u MLFLOW_TRACKING_URI -u MLFLOW_TRACKING_USERNAME
  -u MLFLOW_TRACKING_PASSWORD -u MLFLOW_TRACKING_TOKEN)

cmd_start() {
  local t0=$SECONDS
  deadline=$((SECONDS + TIMEOUT))
  if healthy; then
    log "already running and healthy (moto pid $(svc_pid moto), mlflow pid $(svc_pid mlflow))"
    write_env
    print_env
    return 0
  fi
  # Anything half-up from an earlier start is stopped first, so the databases can be reset.
  rm -f "$ENV_FILE"
  stop_one mlflow
  stop_one moto
  # On any failure from here on, stop what this start launched (logs stay in $STATE).
  trap 'rc=$?; if [ "$rc" != 0 ]; then log "start failed: stopping what was started"; stop_one mlflow; stop_one moto; fi' EXIT
  port_busy "$MOTO_PORT" && die "port $HOST:$MOTO_PORT is in use by another process (set MOTO_PORT)"
  port_busy "$MLFLOW_PORT" && die "port $HOST:$MLFLOW_PORT is in use by another process (set MLFLOW_PORT)"
  python_env
  # Fresh logs for this start; the previous start's are kept as *.log.1.
  local f
  for f in moto mlflow setup; do
    if [ -f "$STATE/$f.log" ]; then mv -f "$STATE/$f.log" "$STATE/$f.log.1"; fi
  done

  export FRAUDRISK_PG_PORT=$PG_PORT FRAUDRISK_PG_USER=$PG_USER FRAUDRISK_PG_DB=$APP_DB \
    FRAUDRISK_MLFLOW_DB=$MLFLOW_DB MOTO_PORT FRAUDRISK_BUCKET=$BUCKET \
    FRAUDRISK_DB_SECRET_ID=$DB_SECRET_ID FRAUDRISK_MLFLOW_SECRET_ID=$MLFLOW_SECRET_ID \
    FRAUDRISK_MLFLOW_USERNAME=$MLFLOW_USER FRAUDRISK_MLFLOW_PASSWORD=$MLFLOW_PW

  # 1. moto
  log "starting moto on $HOST:$MOTO_PORT"
  launch moto "${child_env[@]}" "$venv/bin/moto_server" -H "$HOST" -p "$MOTO_PORT"
  local moto_pid; moto_pid=$(cat "$STATE/moto.pid")

  # 2. databases (in parallel with moto's startup)
  if ! "${child_env[@]}" "$py" "$here/services_setup.py" databases >>"$STATE/setup.log" 2>&1; then
    tail -n 20 "$STATE/setup.log" >&2
    die "PostgreSQL setup failed (is PostgreSQL running on $HOST:$PG_PORT with trust auth for $PG_USER?)"
  fi

  wait_for moto moto_up "$moto_pid"
  if ! "${child_env[@]}" "$py" "$here/services_setup.py" moto >>"$STATE/setup.log" 2>&1; then
    tail -n 20 "$STATE/setup.log" >&2
    die "creating the S3 bucket / secrets in moto failed (log: $STATE/setup.log)"
  fi
  log "moto ready: bucket $BUCKET, secrets $DB_SECRET_ID and $MLFLOW_SECRET_ID"

  # 3. mlflow server with basic auth. The store URI names the psycopg2 driver: SQLAlchemy 2.1
  # maps a bare postgresql:// to psycopg (v3), which is not installed.
  # Its user database is a fresh sqlite file each start. its user database is a fresh sqlite file each start.
  rm -f "$STATE/mlflow-auth.db"
  local ini=$STATE/mlflow-auth.ini
  (
    umask 077
    cat >"$ini" <<EOF
# Written by scripts/services.sh: MLflow basic-auth config for the test services.
[mlflow]
default_permission = READ
database_uri = sqlite:///$STATE/mlflow-auth.db
admin_username = $MLFLOW_USER
admin_password = ${MLFLOW_PW//%/%%}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
EOF
  )
  local artifact_args=(--serve-artifacts --artifacts-destination "s3://$BUCKET/mlflow")
  if [ "$ARTIFACT_MODE" = s3 ]; then
    artifact_args+=(--default-artifact-root "s3://$BUCKET/mlflow")
  fi
  log "starting mlflow server on $HOST:$MLFLOW_PORT (backend postgresql://$PG_USER@$HOST:$PG_PORT/$MLFLOW_DB, artifacts s3://$BUCKET/mlflow)"
  launch mlflow "${child_env[@]}" \
    MLFLOW_AUTH_CONFIG_PATH="$ini" \
    MLFLOW_AUTH_ADMIN_USERNAME="$MLFLOW_USER" \
    MLFLOW_AUTH_ADMIN_PASSWORD="$MLFLOW_PW" \
    MLFLOW_FLASK_SERVER_SECRET_KEY="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" \
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
    MLFLOW_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=true \
    MLFLOW_S3_ENDPOINT_URL="http://$HOST:$MOTO_PORT" \
    AWS_ENDPOINT_URL_S3="http://$HOST:$MOTO_PORT" \
    AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
    AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 \
    "$venv/bin/mlflow" server \
    --host "$HOST" --port "$MLFLOW_PORT" --workers 1 \
    --backend-store-uri "postgresql+psycopg2://$PG_USER@$HOST:$PG_PORT/$MLFLOW_DB" \
    "${artifact_args[@]}" \
    --app-name basic-auth
  local mlflow_pid; mlflow_pid=$(cat "$STATE/mlflow.pid")

  # 4. wait
  wait_for mlflow mlflow_healthy "$mlflow_pid"
  moto_healthy || { show_logs; die "moto stopped answering"; }
  log "mlflow ready (user $MLFLOW_USER); all services up in $((SECONDS - t0)) s"

  # 5. env file
  write_env
  trap - EXIT
  print_env
}

cmd_stop() {
  # No env file while the services are down: sourcing a stale one would point tests at nothing.
  rm -f "$ENV_FILE"
  stop_one mlflow
  stop_one moto
  log "stopped"
}

cmd_status() {
  local rc=0 pid
  pid=$(svc_pid moto)
  if [ -n "$pid" ] && moto_healthy; then
    echo "moto:   running (pid $pid) at http://$HOST:$MOTO_PORT, bucket $BUCKET present"
  else
    echo "moto:   not healthy${pid:+ (pid $pid running)}"; rc=1
  fi
  pid=$(svc_pid mlflow)
  if [ -n "$pid" ] && mlflow_healthy; then
    echo "mlflow: running (pid $pid) at http://$HOST:$MLFLOW_PORT, authenticated REST call OK"
  else
    echo "mlflow: not healthy${pid:+ (pid $pid running)}"; rc=1
  fi
  return "$rc"
}

main() {
  local cmd=${1:-}
  case "$cmd" in
    start|stop|restart|status|env) ;;
    -h|--help|help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; return 0 ;;
    *) echo "usage: bash $here/services.sh start|stop|restart|status|env" >&2; return 2 ;;
  esac
  validate
  if [ "$cmd" = env ]; then print_env; return; fi
  if [ "$cmd" = status ]; then cmd_status; return; fi
  mkdir -p "$STATE"
  # One start/stop at a time (parallel test jobs may all call start).
  exec 9>"$STATE/lock"
  flock -w "$((TIMEOUT + 60))" 9 || die "another services.sh start/stop holds $STATE/lock"
  case "$cmd" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_stop; cmd_start ;;
  esac
}

main "$@"
