#!/usr/bin/env bash
# Volume figures (issue 9, item 7): the PostgreSQL prediction log and the outcomes join at
# VOLUME_ROWS logged predictions (default 10,000,000), and a table of the figures:
#   0. a fresh database VOLUME_DB, `fraudctl migrate`, then `predictions` filled in SQL
#      (generate_series, in chunks with progress): UUID v7-shaped ids built from each row's
#      timestamp, created_at spread over the last 90 days in logging order (with 2 s of
#      jitter), model versions 1 to 3 over time, the corrected seed applicant with
#      credit_amount varied as the features; then ANALYZE;
#   1. EXPLAIN (ANALYZE, BUFFERS) of the lookup by id (`prediction_by_id`) and of the outcome
#      store's state query (STATE_SQL of shared/src/adapters/postgres/outcomes.rs) for 1,000
#      ids; both must reach `predictions` through its unique index (the script fails otherwise);
#      the state query is explained again once the outcomes are stored, with the outcome lookup
#      (`outcome_of`);
#   2. POST /outcomes with VOLUME_BATCH (1,000) items against `fraudctl serve` (release build)
#      on that database, VOLUME_REQUESTS (200) requests one after the other over one keep-alive
#      connection (scripts/bench_volume_outcomes.py), each with ids of logged predictions never
#      reported (every item `recorded`: outcome rows and labelled rows inserted), then the same
#      requests again (every item `unchanged`); p50/p95/p99/max measured client-side;
#   3. VOLUME_WRITERS (64) concurrent writers logging predictions for VOLUME_SECONDS each, one
#      store with one connection per writer (a Lambda container), one prediction per call (a
#      Lambda request) and then 16 per call (fraudctl serve's background writer):
#      shared/examples/bench_log_writers.rs; predictions/s and per-call p50/p99;
# and prints a Markdown table with the load average at start and end, the row count, the table
# size (pg_total_relation_size) and the command. Every figure depends on the machine and on
# what else runs on it (client, server and PostgreSQL share its cores).
#
# Environment:
#   VOLUME_ROWS=10000000   predictions filled in
#   VOLUME_CHUNK=500000    rows per INSERT (one progress line each)
#   VOLUME_REQUESTS=200    POST /outcomes requests per run
#   VOLUME_BATCH=1000      outcomes per request
#   VOLUME_WRITERS=64      concurrent writers
#   VOLUME_SECONDS=20      seconds per writers run
#   VOLUME_PG=postgres://postgres@127.0.0.1:5432   the server (trust or password in the URL)
#   VOLUME_DB=fraudrisk_volume                     the database: DROPPED and re-created
#   VOLUME_REUSE=1         keep a database already filled with VOLUME_ROWS rows (skip step 0)
#   VOLUME_DROP=1          drop the database at the end (about 8 GB at 10M rows); 0 keeps it
#   BENCH_SKIP_BUILD=1     use the binaries already in $CARGO_TARGET_DIR/release
#   FRAUDCTL               use this fraudctl binary
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${FRAUDRISK_CACHE:-$HOME/.cache/fraudrisk}
# shellcheck source=scripts/local-server.sh
source "$root/scripts/local-server.sh"

rows=${VOLUME_ROWS:-10000000}
chunk=${VOLUME_CHUNK:-500000}
requests=${VOLUME_REQUESTS:-200}
batch=${VOLUME_BATCH:-1000}
writers=${VOLUME_WRITERS:-64}
seconds=${VOLUME_SECONDS:-20}
server=${VOLUME_PG:-postgres://postgres@127.0.0.1:5432}
db=${VOLUME_DB:-fraudrisk_volume}
database_url=$server/$db
command_line="VOLUME_ROWS=$rows bash scripts/bench-volume.sh"

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
began=$(date +%s)
say() { echo "bench-volume [$(($(date +%s) - began)) s]: $*" >&2; }
psql_db() { psql "$database_url" -X -q -v ON_ERROR_STOP=1 "$@"; }
psql_server() { psql "$server/postgres" -X -q -v ON_ERROR_STOP=1 "$@"; }

# --- builds ---------------------------------------------------------------------------------------
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  say "cargo build --release -p fraudctl, example bench_log_writers"
  (cd "$root" && cargo build --release --quiet --locked -p fraudctl &&
    cargo build --release --quiet --locked -p fraudrisk --example bench_log_writers)
fi
FRAUDCTL=${FRAUDCTL:-$CARGO_TARGET_DIR/release/fraudctl}
writers_bin=$CARGO_TARGET_DIR/release/examples/bench_log_writers
export FRAUDCTL

work=$(mktemp -d "${TMPDIR:-/tmp}/fraudrisk-volume.XXXXXX")
cleanup() {
  stop_server
  rm -rf "$work"
  if [ "${VOLUME_DROP:-1}" = 1 ]; then
    psql_server -c "DROP DATABASE IF EXISTS \"$db\"" || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# fraudctl with nothing but this database configured (artifacts in a throw-away state folder).
fraudctl_db() {
  _local_env
  "${LOCAL_ENV[@]}" FRAUDRISK_DATABASE_URL="$database_url" "$FRAUDCTL" --state "$work/state" "$@"
}

# --- 0. the database and its 10 million predictions -----------------------------------------------
existing=0
if [ "${VOLUME_REUSE:-0}" = 1 ] &&
  [ "$(psql_server -Atc "SELECT count(*) FROM pg_database WHERE datname = '$db'")" = 1 ]; then
  existing=$(psql_db -Atc "SELECT COALESCE(max(id), 0) FROM predictions" 2>/dev/null || echo 0)
fi
if [ "$existing" -ge "$rows" ]; then
  say "reusing $db ($existing predictions)"
  fill_seconds=
else
  say "creating database $db"
  psql_server -c "DROP DATABASE IF EXISTS \"$db\"" -c "CREATE DATABASE \"$db\""
  fraudctl_db migrate >/dev/null
  # The features: the seed's example with no_of_dependents corrected to 1.
  base=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["no_of_dependents"]=1; print(json.dumps(d))' \
    "$root/shared/src/seed_example.json")
  t0=$(psql_db -Atc "SELECT extract(epoch FROM now() - interval '90 days')::bigint")
  say "filling predictions with $rows rows in chunks of $chunk"
  fill_began=$(date +%s)
  lo=1
  while [ "$lo" -le "$rows" ]; do
    hi=$((lo + chunk - 1))
    [ "$hi" -le "$rows" ] || hi=$rows
    # UUID v7: 48 bits of Unix milliseconds, version 7, 12 random bits, variant 10, then
    # 14 random bits and the row number (48 bits) so that ids are unique.
    psql_db -v lo="$lo" -v hi="$hi" -v n="$rows" -v t0="$t0" -v base="$base" <<'SQL'
INSERT INTO predictions (created_at, model_version, probability_of_fraud, fraud, features,
                         username, prediction_id, threshold)
SELECT to_timestamp(x.epoch), 1 + (3 * (g - 1)) / :n, x.p, x.p >= 0.5,
       :'base'::jsonb || jsonb_build_object('credit_amount', 250 + (g * 7919) % 18000),
       CASE WHEN g % 10 = 0 THEN 'bench' ELSE 'merlin' END,
       (lpad(to_hex(floor(x.epoch * 1000)::bigint), 12, '0') || '7'
        || lpad(to_hex(floor(random() * 4096)::int), 3, '0')
        || to_hex(8 + floor(random() * 4)::int)
        || lpad(to_hex(floor(random() * 4096)::int), 3, '0')
        || lpad(to_hex(g), 12, '0'))::uuid,
       0.5
FROM generate_series(:lo::bigint, :hi::bigint) AS g,
     LATERAL (SELECT :t0 + (g - 1) * (7776000.0 / :n) + random() * 2 AS epoch,
                     power(random(), 3) AS p) AS x;
SQL
    elapsed=$(($(date +%s) - fill_began))
    say "  $hi / $rows rows ($((hi / (elapsed > 0 ? elapsed : 1))) rows/s)"
    lo=$((hi + 1))
  done
  fill_seconds=$(($(date +%s) - fill_began))
  say "ANALYZE"
  psql_db -c "VACUUM (ANALYZE) predictions"
fi
count=$(psql_db -Atc "SELECT count(*) FROM predictions")
size=$(psql_db -Atc "SELECT pg_size_pretty(pg_total_relation_size('predictions'))")
say "$count predictions, $size with indexes"

# --- the ids: uniform over the table, never reported --------------------------------------------
need=$((requests * batch + batch))
say "sampling $need prediction ids never reported"
psql_db -At -v need="$need" >"$work/ids" <<'SQL'
SELECT p.prediction_id
FROM (SELECT DISTINCT 1 + floor(random() * (SELECT max(id) FROM predictions))::bigint AS id
      FROM generate_series(1, :need * 12 / 10)) AS r
JOIN predictions p USING (id)
WHERE p.prediction_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM outcomes o WHERE o.prediction_id = p.prediction_id)
LIMIT :need;
SQL
[ "$(wc -l <"$work/ids")" -ge "$need" ] || { say "too few ids sampled"; exit 1; }
# The first batch is for the plans; the rest for POST /outcomes.
head -n "$batch" "$work/ids" >"$work/explain_ids"
tail -n +"$((batch + 1))" "$work/ids" >"$work/post_ids"

# --- 1. plans --------------------------------------------------------------------------------------
state_sql="SELECT p.features, o.fraud, o.observed_at, o.record_id, a.version \
FROM unnest(\$1::UUID[]) WITH ORDINALITY AS ids(id, ord) \
LEFT JOIN LATERAL (SELECT features FROM predictions WHERE prediction_id = ids.id LIMIT 1) p ON true \
LEFT JOIN LATERAL (SELECT fraud, observed_at, record_id FROM outcomes WHERE prediction_id = ids.id LIMIT 1) o ON true \
LEFT JOIN LATERAL (SELECT version FROM absorptions WHERE record_id = o.record_id LIMIT 1) a ON true \
ORDER BY ids.ord"
lookup_sql="SELECT prediction_id, created_at, model_version, threshold, probability_of_fraud, \
fraud, features, username FROM predictions WHERE prediction_id = \$1"
outcome_sql="SELECT fraud, observed_at, history::TEXT FROM outcomes WHERE prediction_id = \$1"
id_array="{$(paste -sd, "$work/explain_ids")}"
one_id=$(head -n1 "$work/explain_ids")

# explain NAME SQL TYPE ARGUMENT: prints and saves the plan of the prepared statement
# (a custom plan for the argument, as tokio-postgres's unnamed statements get), with the time
# spent reading pages PostgreSQL did not have in shared_buffers (track_io_timing: a superuser
# setting; without it the plan just lacks the I/O Timings lines).
explain() {
  local name=$1 sql=$2 type=$3 argument=$4
  {
    echo "SELECT CASE WHEN rolsuper THEN set_config('track_io_timing', 'on', false) END AS io"
    echo "  FROM pg_roles WHERE rolname = current_user \\gset"
    echo "PREPARE q($type) AS $sql;"
    echo "EXPLAIN (ANALYZE, BUFFERS) EXECUTE q('$argument');"
  } | psql_db -At >"$work/plan-$name.txt"
  echo "--- plan: $name" >&2
  cat "$work/plan-$name.txt" >&2
}
must_use_index() {
  local name=$1
  if grep -q 'Seq Scan on predictions' "$work/plan-$name.txt" ||
    ! grep -Eq 'Index (Only )?Scan using predictions_prediction_id on predictions' "$work/plan-$name.txt"; then
    say "FAIL: the $name plan does not reach predictions through predictions_prediction_id"
    exit 1
  fi
}
explain lookup "$lookup_sql" uuid "$one_id"
explain state "$state_sql" 'uuid[]' "$id_array"
must_use_index lookup
must_use_index state
plan_ms() { sed -n 's/^Execution Time: \([0-9.]*\) ms$/\1/p' "$work/plan-$1.txt"; }

# --- 2. POST /outcomes -----------------------------------------------------------------------------
mkdir -p "$work/state"
fraudctl_db user remove bench >/dev/null 2>&1 || true # a reused database has it
printf '%s\n' volume-bench-pass | fraudctl_db user add bench --password-stdin >/dev/null
_local_env
SERVER_LOG=$work/serve.log
SERVER_OUT=$work/serve.out
"${LOCAL_ENV[@]}" FRAUDRISK_DATABASE_URL="$database_url" "$FRAUDCTL" --state "$work/state" \
  serve --addr 127.0.0.1:0 >"$SERVER_OUT" 2>"$SERVER_LOG" &
SERVER_PID=$!
for _ in $(seq 300); do
  grep -q '^listening on http://' "$SERVER_OUT" 2>/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$SERVER_LOG" >&2; exit 1; }
  sleep 0.1
done
SERVER_URL=$(sed -n 's/^listening on //p' "$SERVER_OUT" | head -n1)
[ -n "$SERVER_URL" ] || { say "fraudctl serve did not listen"; exit 1; }
say "fraudctl serve on $SERVER_URL; $requests x POST /outcomes with $batch new ids"
post() {
  python3 "$root/scripts/bench_volume_outcomes.py" --url "$SERVER_URL" --user bench \
    --password volume-bench-pass --ids "$work/post_ids" --requests "$requests" --batch "$batch" \
    --expect "$1"
}
post recorded | tee "$work/post-recorded.json" >&2
say "the same requests again (every item unchanged)"
post unchanged | tee "$work/post-unchanged.json" >&2
stop_server
outcome_count=$(psql_db -Atc "SELECT count(*) FROM outcomes")

# The state query again, now that outcomes and their rows exist (ids reported above: the
# outcome and record joins find rows), and the outcome lookup.
psql_db -c "ANALYZE outcomes" -c "ANALYZE records"
reported_array="{$(head -n "$batch" "$work/post_ids" | paste -sd,)}"
explain state-reported "$state_sql" 'uuid[]' "$reported_array"
explain outcome "$outcome_sql" uuid "$(head -n1 "$work/post_ids")"
must_use_index state-reported
if grep -q 'Seq Scan on outcomes' "$work/plan-state-reported.txt"; then
  say "note: the state query reads outcomes with a sequential scan at $outcome_count outcomes"
fi

# --- 3. concurrent writers -------------------------------------------------------------------------
connections=$(psql_server -Atc "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")
say "$writers writers x $seconds s, batch 1 ($connections client connections open before)"
"$writers_bin" --writers "$writers" --seconds "$seconds" --batch 1 --database-url "$database_url" \
  | tee "$work/writers-1.json" >&2
say "$writers writers x $seconds s, batch 16"
"$writers_bin" --writers "$writers" --seconds "$seconds" --batch 16 --database-url "$database_url" \
  | tee "$work/writers-16.json" >&2

# --- the table --------------------------------------------------------------------------------------
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
count_end=$(psql_db -Atc "SELECT count(*) FROM predictions")
size_end=$(psql_db -Atc "SELECT pg_size_pretty(pg_total_relation_size('predictions'))")
j() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$work/$1.json" "$2"; }
thousands() { python3 -c 'import sys; print(format(round(float(sys.argv[1])), ","))' "$1"; }
writers_cells() {
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1]))
print(format(round(d["predictions_per_second"]), ",") + "; " + format(d["p50_ms"], ".1f") + " / " + format(d["p99_ms"], ".1f") + " ms")' "$work/$1.json"
}
fill_text=${fill_seconds:+ (filled in $fill_seconds s)}
cat <<EOF

| measure | value |
|---|---|
| predictions in the log | $(thousands "$count") before, $(thousands "$count_end") after the writers$fill_text |
| \`predictions\` with its indexes (pg_total_relation_size) | $size before, $size_end after |
| lookup by id (\`prediction_by_id\`), EXPLAIN ANALYZE | $(plan_ms lookup) ms, index scan |
| state query for 1,000 new ids, EXPLAIN ANALYZE | $(plan_ms state) ms, index scans |
| state query for 1,000 reported ids ($(thousands "$outcome_count") outcomes stored) | $(plan_ms state-reported) ms |
| outcome lookup by id (\`outcome_of\`) | $(plan_ms outcome) ms |
| POST /outcomes, $(thousands "$batch") new ids (all \`recorded\`), $requests requests: p50 / p95 / p99 / max | $(j post-recorded p50_ms) / $(j post-recorded p95_ms) / $(j post-recorded p99_ms) / $(j post-recorded max_ms) ms |
| POST /outcomes, the same again (all \`unchanged\`): p50 / p95 / p99 / max | $(j post-unchanged p50_ms) / $(j post-unchanged p95_ms) / $(j post-unchanged p99_ms) / $(j post-unchanged max_ms) ms |
| $writers writers, 1 prediction a call: predictions/s; per call p50 / p99 | $(writers_cells writers-1) |
| $writers writers, 16 predictions a call: predictions/s; per call p50 / p99 | $(writers_cells writers-16) |
| load average (1, 5, 15 min) at start / end | $load_start / $load_end |
| machine | $(nproc) cores; PostgreSQL $(psql_db -Atc "SHOW server_version" | cut -d' ' -f1), shared_buffers $(psql_db -Atc "SHOW shared_buffers") |

Command: \`$command_line\` ($(($(date +%s) - began)) s in all)
EOF
