#!/usr/bin/env bash
# The project's test command: starts the real services the integration tests need
# (scripts/services.sh: moto's S3 + Secrets Manager, mlflow server, the machine's PostgreSQL),
# tells the integration tests where their settings are, runs every test of the workspace, and
# stops the services again on exit, whether the tests passed or not.
#
# Settings (environment):
#   FRAUDRISK_KEEP_SERVICES=1   leave the services running afterwards (faster reruns)
#   FRAUDRISK_SKIP_SERVICES=1   do not start them, and do not run the integration tests that
#                               need them (`#[ignore = "needs services"]`; reported as ignored).
#                               Not in CI (CI=true): services are never skipped there, so those
#                               tests run anyway and fail, saying the services are not up.
# Services that were already running before this script started are left running.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${FRAUDRISK_CACHE:-$HOME/.cache/fraudrisk}/target}"

started_services=0
stop_services() {
  local rc=$?
  if [ "$started_services" = 1 ] && [ "${FRAUDRISK_KEEP_SERVICES:-0}" != 1 ]; then
    echo "== stopping the services" >&2
    bash scripts/services.sh stop || echo "test.sh: warning: stopping the services failed" >&2
  fi
  exit "$rc"
}

if [ "${FRAUDRISK_SKIP_SERVICES:-0}" != 1 ]; then
  if bash scripts/services.sh status >/dev/null 2>&1; then
    echo "== services already running: using them (and leaving them running)" >&2
  else
    started_services=1
  fi
  trap stop_services EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  echo "== starting the services (bash scripts/services.sh start)" >&2
  # `start` prints the env file (export lines) on stdout once everything answers.
  services_env=$(bash scripts/services.sh start) || {
    echo "test.sh: error: the services did not start (see the messages above)" >&2
    exit 1
  }
  # Only this one reaches the tests: the integration tests read the services' settings from the
  # env file in FRAUDRISK_SERVICES_DIR. Exporting FRAUDRISK_DATABASE_URL, MLFLOW_TRACKING_URI,
  # ... here would switch every other test (fraudctl, the HTTP layer) to the shared services.
  FRAUDRISK_SERVICES_DIR=$(eval "$services_env" && printf '%s' "$FRAUDRISK_SERVICES_DIR")
  export FRAUDRISK_SERVICES_DIR
  unset services_env
fi

# The integration tests are `#[ignore = "needs services"]`, so a plain `cargo test` reports them
# as ignored instead of passing them without their services; here they run with the rest.
run_ignored=1
if [ "${FRAUDRISK_SKIP_SERVICES:-0}" = 1 ] && [ "${CI:-}" != true ]; then
  run_ignored=0
  echo "== FRAUDRISK_SKIP_SERVICES=1: the integration tests that need services are not run" >&2
fi

status=0
if cargo nextest --version >/dev/null 2>&1; then
  if [ "$run_ignored" = 1 ]; then
    cargo nextest run --workspace --locked --no-fail-fast --run-ignored all || status=$?
  else
    cargo nextest run --workspace --locked --no-fail-fast || status=$?
  fi
else
  if [ "$run_ignored" = 1 ]; then
    cargo test --workspace --locked --no-fail-fast --lib --bins --tests -- --include-ignored ||
      status=$?
  else
    cargo test --workspace --locked --no-fail-fast --lib --bins --tests || status=$?
  fi
fi
# nextest does not run doctests.
cargo test --workspace --locked --doc || status=$?
exit "$status"
