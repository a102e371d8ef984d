#!/usr/bin/env bash
# The monitor at volume (issue 10, item 5): `fraudctl monitor` over MONITOR_ROWS logged
# predictions (default 10,000,000) in PostgreSQL, its wall time and peak resident memory:
#   0. a fresh database MONITOR_DB, `fraudctl migrate`, 10,000 generated reference rows and
#      2,000 new ones (`load-data`), `initialtrain` (the champion and its training rows);
#      then `predictions` filled in SQL (generate_series, in chunks): the seed's example with
#      account balance, duration, credit amount, sex/marital status and age varied per row,
#      P(fraud) = U^3, the decision at 0.5, model versions 1 to 3 over 90 days, and outcomes
#      for 30 % of them; then VACUUM ANALYZE;
#   1. `fraudctl monitor --since <90 days ago> --format json` under /usr/bin/time: the whole
#      window through the aggregate path (per-feature GROUP BY over jsonb_each, then the scores
#      streamed in P(fraud) order through a portal);
# and prints a Markdown table with the load average at start and end and the command. Every
# figure depends on the machine and on what else runs on it (PostgreSQL and fraudctl share
# its cores).
#
# Environment:
#   MONITOR_ROWS=10000000  predictions filled in
#   MONITOR_CHUNK=500000   rows per INSERT (one progress line each)
#   MONITOR_PG=postgres://postgres@127.0.0.1:5432   the server (trust or password in the URL)
#   MONITOR_DB=fraudrisk_monitor                    the database: DROPPED and re-created
#   MONITOR_REUSE=1        keep a database already filled with MONITOR_ROWS rows (skip step 0;
#                          needs MONITOR_STATE, the state folder of the run that filled it)
#   MONITOR_STATE=DIR      the fraudctl state folder (default: a temporary one)
#   MONITOR_DROP=1         drop the database at the end; 0 keeps it
#   BENCH_SKIP_BUILD=1     use the binary already in $CARGO_TARGET_DIR/release
#   FRAUDCTL               use this fraudctl binary
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${FRAUDRISK_CACHE:-$HOME/.cache/fraudrisk}
# shellcheck source=scripts/local-server.sh
source "$root/scripts/local-server.sh"

rows=${MONITOR_ROWS:-10000000}
chunk=${MONITOR_CHUNK:-500000}
server=${MONITOR_PG:-postgres://postgres@127.0.0.1:5432}
db=${MONITOR_DB:-fraudrisk_monitor}
database_url=$server/$db
command_line="MONITOR_ROWS=$rows bash scripts/bench-monitor.sh"

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
began=$(date +%s)
say() { echo "bench-monitor [$(($(date +%s) - began)) s]: $*" >&2; }
psql_db() { psql "$database_url" -X -q -v ON_ERROR_STOP=1 "$@"; }
psql_server() { psql "$server/postgres" -X -q -v ON_ERROR_STOP=1 "$@"; }

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  say "cargo build --release -p fraudctl"
  (cd "$root" && cargo build --release --quiet --locked -p fraudctl)
fi
FRAUDCTL=${FRAUDCTL:-$CARGO_TARGET_DIR/release/fraudctl}

work=$(mktemp -d "${TMPDIR:-/tmp}/fraudrisk-monitor.XXXXXX")
state=${MONITOR_STATE:-$work/state}
cleanup() {
  rm -rf "$work"
  if [ "${MONITOR_DROP:-1}" = 1 ]; then
    psql_server -c "DROP DATABASE IF EXISTS \"$db\"" || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# fraudctl with nothing but this database configured (artifacts in the state folder).
fraudctl_db() {
  _local_env
  "${LOCAL_ENV[@]}" FRAUDRISK_DATABASE_URL="$database_url" "$FRAUDCTL" --state "$state" "$@"
}

existing=0
if [ "${MONITOR_REUSE:-0}" = 1 ] &&
  [ "$(psql_server -Atc "SELECT count(*) FROM pg_database WHERE datname = '$db'")" = 1 ]; then
  existing=$(psql_db -Atc "SELECT COALESCE(max(id), 0) FROM predictions" 2>/dev/null || echo 0)
fi
if [ "$existing" -ge "$rows" ]; then
  say "reusing $db ($existing predictions)"
  fill_seconds=
else
  say "creating database $db, loading the reference, training the champion"
  psql_server -c "DROP DATABASE IF EXISTS \"$db\"" -c "CREATE DATABASE \"$db\""
  fraudctl_db migrate >/dev/null
  fraudctl_db load-data >/dev/null
  fraudctl_db initialtrain >/dev/null
  base=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["no_of_dependents"]=1; print(json.dumps(d))' \
    "$root/shared/src/seed_example.json")
  t0=$(psql_db -Atc "SELECT extract(epoch FROM now() - interval '90 days')::bigint")
  say "filling predictions with $rows rows in chunks of $chunk"
  fill_began=$(date +%s)
  lo=1
  while [ "$lo" -le "$rows" ]; do
    hi=$((lo + chunk - 1))
    [ "$hi" -le "$rows" ] || hi=$rows
    # UUID v7: 48 bits of Unix milliseconds, version 7, random bits, variant 10, the row number.
    psql_db -v lo="$lo" -v hi="$hi" -v n="$rows" -v t0="$t0" -v base="$base" <<'SQL'
INSERT INTO predictions (created_at, model_version, probability_of_fraud, fraud, features,
                         username, prediction_id, threshold)
SELECT to_timestamp(x.epoch), 1 + (3 * (g - 1)) / :n, x.p, x.p >= 0.5,
       :'base'::jsonb || jsonb_build_object(
         'account_balance', 1 + (g * 3) % 4,
         'duration_of_credit_month', 4 + (g * 13) % 69,
         'credit_amount', 250 + (g * 7919) % 18000,
         'sex_marital_status', 1 + (g * 7) % 4,
         'age_years', 19 + (g * 31) % 57),
       'bench',
       (lpad(to_hex(floor(x.epoch * 1000)::bigint), 12, '0') || '7'
        || lpad(to_hex(floor(random() * 4096)::int), 3, '0')
        || to_hex(8 + floor(random() * 4)::int)
        || lpad(to_hex(floor(random() * 4096)::int), 3, '0')
        || lpad(to_hex(g), 12, '0'))::uuid,
       0.5
FROM generate_series(:lo::bigint, :hi::bigint) AS g,
     LATERAL (SELECT :t0 + (g - 1) * (7776000.0 / :n) + random() * 2 AS epoch,
                     power(random(), 3) AS p) AS x;
INSERT INTO outcomes (prediction_id, fraud, observed_at, recorded_at, username)
SELECT prediction_id, random() < probability_of_fraud, created_at + interval '30 days', now(),
       'bench'
FROM predictions WHERE id BETWEEN :lo AND :hi AND id % 10 < 3;
SQL
    elapsed=$(($(date +%s) - fill_began))
    say "  $hi / $rows rows ($((hi / (elapsed > 0 ? elapsed : 1))) rows/s)"
    lo=$((hi + 1))
  done
  fill_seconds=$(($(date +%s) - fill_began))
  say "VACUUM ANALYZE"
  psql_db -c "VACUUM (ANALYZE) predictions" -c "VACUUM (ANALYZE) outcomes"
fi
count=$(psql_db -Atc "SELECT count(*) FROM predictions")
labelled=$(psql_db -Atc "SELECT count(*) FROM outcomes")
size=$(psql_db -Atc "SELECT pg_size_pretty(pg_total_relation_size('predictions'))")
since=$(psql_db -Atc "SELECT to_char((min(created_at) - interval '1 second') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM predictions")

say "fraudctl monitor over $count predictions"
/usr/bin/time -f '%e %M' -o "$work/time" \
  bash -c "$(declare -f fraudctl_db _local_env); $(declare -p _FRAUDRISK_SETTINGS 2>/dev/null || true); \
    FRAUDCTL='$FRAUDCTL' state='$state' database_url='$database_url'; \
    fraudctl_db monitor --since '$since' --format json" >"$work/report.json"
read -r wall peak_kib <"$work/time"
served=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["window"]["served"])' "$work/report.json")
summary=$(python3 - "$work/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
p = r["prediction_drift"]
perf = r["performance"]
drifted = [f["feature"] for f in r["input_drift"]["features"] if f["significant"]]
print(f"{len(drifted)} drifted features; score KS D = {p['ks_statistic']:.4f} ({p['ks_method']}); "
      f"{perf['labelled']:,} outcomes, realized ROC AUC {perf['roc_auc']:.4f}; "
      f"{len(perf['by_week'])} weeks, {len(perf['by_version'])} versions")
PY
)
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

cat <<EOF

### The monitor over $count logged predictions (PostgreSQL)

| figure | value |
|---|---|
| predictions in the window (served) | $served |
| predictions with an outcome | $labelled |
| \`predictions\` table size | $size |
| fill (SQL, with outcomes) | ${fill_seconds:-reused} s |
| \`fraudctl monitor\` wall time | $wall s |
| \`fraudctl monitor\` peak resident memory | $((peak_kib / 1024)) MiB |
| what it found | $summary |

Load average at start: $load_start; at end: $load_end. Command: \`$command_line\`.
EOF
