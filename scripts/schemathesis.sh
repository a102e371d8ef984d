#!/usr/bin/env bash
# Schemathesis against `fraudctl serve`, driven by the committed openapi.json: every operation,
# every default check (server errors, status codes, content types, headers and bodies against
# the document, invalid data refused, valid data accepted, missing auth refused, undocumented
# methods refused), at least 200 generated examples per operation, over a fresh local state
# (generated rows, a first model, one user). Exits non-zero on any failure.
#
# Environment:
#   FRAUDCTL=path           use this fraudctl binary instead of building one (dev profile)
#   SCHEMATHESIS_EXAMPLES   examples per operation (default 200)
#   SCHEMATHESIS_SEED       hypothesis seed (default: random; the report names it)
#   REPORT_DIR=dir          where the JUnit report goes (default: $TMPDIR/schemathesis-report)
#   KEEP_STATE=1            keep the temporary state folder (printed)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${FRAUDRISK_CACHE:-$HOME/.cache/fraudrisk}
# shellcheck source=scripts/local-server.sh
source "$root/scripts/local-server.sh"

venv=$(FRAUDRISK_VENV=$cache/venv-schemathesis \
  FRAUDRISK_REQUIREMENTS=$root/scripts/requirements-schemathesis.txt \
  bash "$root/scripts/python-env.sh")

ensure_fraudctl schemathesis
temporary_state schemathesis
state=$STATE

user=schemathesis
password="st-$RANDOM-$RANDOM-pass"
# Small data: every generated POST /initialtrain and /retrain really trains.
echo "schemathesis: preparing the state in $state" >&2
LOAD_DATA_ARGS="--reference-rows 1000 --shifted-rows 300" prepare_state "$state/data" "$user" "$password"
start_server "$state/data"
echo "schemathesis: fraudctl serve on $SERVER_URL (pid $SERVER_PID)" >&2

report_dir=${REPORT_DIR:-${TMPDIR:-/tmp}/schemathesis-report}
mkdir -p "$report_dir"
args=(--config-file "$root/scripts/schemathesis.toml" run "$root/openapi.json" --url "$SERVER_URL" --auth "$user:$password"
  --max-examples "${SCHEMATHESIS_EXAMPLES:-200}" --workers 1
  --report junit --report-dir "$report_dir")
[ -n "${SCHEMATHESIS_SEED:-}" ] && args+=(--seed "$SCHEMATHESIS_SEED")
status=0
(cd "$root" && "$venv/bin/schemathesis" "${args[@]}") || status=$?
if [ "$status" -ne 0 ]; then
  echo "schemathesis: FAILED; the server's log:" >&2
  tail -n 50 "$SERVER_LOG" >&2 || true
fi
exit "$status"
