#!/usr/bin/env bash
# The HTML page of GET /predict in headless Chromium (Debian's package) against `fraudctl serve`:
# a fresh state (generated data, initial training, a user), the server on a free loopback
# port, then tests/browser/predict.test.cjs (node's test runner + playwright-core) fills the
# form's 20 fields, submits and checks the decision and its explanation. Then the HTML
# reports: `fraudctl drift --html` of the seed's files (../shared/data beside the checkout) and
# `fraudctl monitor --html` after 300 of the seed's shifted rows were served and 200 of their
# outcomes loaded; tests/browser/report.test.cjs opens both from file:// URLs. Exits non-zero
# on any failure. Installs what it needs (chromium, the npm packages) when missing.
#
# Environment:
#   FRAUDCTL=path        use this fraudctl binary instead of building one (cargo build, dev profile)
#   SCREENSHOT_DIR=dir   where the screenshots (and copies of the report pages) go (default:
#                        $TMPDIR or /tmp)
#   KEEP_STATE=1         keep the temporary state folder (printed) for a look afterwards
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${FRAUDRISK_CACHE:-$HOME/.cache/fraudrisk}
# shellcheck source=scripts/local-server.sh
source "$root/scripts/local-server.sh"

# --- the browser ------------------------------------------------------------------------------
if ! command -v chromium >/dev/null 2>&1; then
  echo "browser-test: installing Debian's chromium" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq chromium >/dev/null 2>&1 || {
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  }
fi
CHROMIUM=$(command -v chromium)
export CHROMIUM

# --- node and the driver (installed outside the work tree, keyed by the lock file) -------------
command -v node >/dev/null 2>&1 || { echo "browser-test: node (>= 20) and npm are needed" >&2; exit 1; }
node_dir=$cache/browser-node
want=$(cat "$root/tests/browser/package.json" "$root/tests/browser/package-lock.json" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$node_dir/.stamp" 2>/dev/null)" != "$want" ] || [ ! -d "$node_dir/node_modules/playwright-core" ]; then
  echo "browser-test: npm ci in $node_dir" >&2
  rm -rf "$node_dir"
  mkdir -p "$node_dir"
  cp "$root/tests/browser/package.json" "$root/tests/browser/package-lock.json" "$node_dir/"
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
  echo "$want" >"$node_dir/.stamp"
fi

# --- fraudctl -----------------------------------------------------------------------------------
ensure_fraudctl browser-test
temporary_state browser-test
state=$STATE

user=tester
password="browser-$RANDOM-$RANDOM-pass"
echo "browser-test: preparing the state in $state (load-data, initialtrain, user $user)" >&2
prepare_state "$state/data" "$user" "$password"

# --- the report pages (before the server starts: the CLI writes the same state) ----------------
seed_data=$(cd "$root/.." && pwd)/shared/data
reference_csv=$seed_data/german_credit_resampled.csv
shifted_csv=$seed_data/shifted_data.csv
for file in "$reference_csv" "$shifted_csv"; do
  [ -f "$file" ] || { echo "browser-test: the seed's $file is missing" >&2; exit 1; }
done
reports=$state/reports
mkdir -p "$reports"
echo "browser-test: drift --html of the seed's files; monitor --html over 300 served rows" >&2
fraudctl_local --state "$state/data" --format json drift --reference "$reference_csv" \
  --current "$shifted_csv" --html "$reports/drift_report.html" >"$reports/drift.json"
node "$root/tests/browser/report-data.cjs" requests "$shifted_csv" 300 >"$reports/requests.json"
fraudctl_local --state "$state/data" --format json predict --input "$reports/requests.json" \
  >"$reports/predictions.json"
node "$root/tests/browser/report-data.cjs" outcomes "$shifted_csv" "$reports/predictions.json" \
  >"$reports/outcomes.csv"
fraudctl_local --state "$state/data" --format json outcomes load "$reports/outcomes.csv" \
  >"$reports/outcomes.json"
fraudctl_local --state "$state/data" --format json monitor --html "$reports/monitor_report.html" \
  >"$reports/monitor.json"
screenshots=${SCREENSHOT_DIR:-${TMPDIR:-/tmp}}
mkdir -p "$screenshots"
cp "$reports/drift_report.html" "$reports/monitor_report.html" "$screenshots/"

start_server "$state/data"
echo "browser-test: fraudctl serve on $SERVER_URL (pid $SERVER_PID)" >&2

# --- the tests ----------------------------------------------------------------------------------
status=0
FRAUDRISK_URL=$SERVER_URL FRAUDRISK_USER=$user FRAUDRISK_PASSWORD=$password \
  FRAUDRISK_REPORTS=$reports SCREENSHOT_DIR=$screenshots NODE_PATH=$node_dir/node_modules \
  node --test --test-reporter=spec "$root/tests/browser/predict.test.cjs" \
  "$root/tests/browser/report.test.cjs" || status=$?
if [ "$status" -ne 0 ]; then
  echo "browser-test: FAILED; the server's log:" >&2
  tail -n 50 "$SERVER_LOG" >&2 || true
fi
exit "$status"
