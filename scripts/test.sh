#!/usr/bin/env bash
# The project's test command: starts the real services the integration tests need,
# runs every test of the workspace, and stops the services again.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${FRAUDRISK_CACHE:-$HOME/.cache/fraudrisk}/target}"

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast --lib --bins --tests
fi
# nextest does not run doctests.
cargo test --workspace --locked --doc
