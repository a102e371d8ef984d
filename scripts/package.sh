#!/usr/bin/env bash
# Builds the Lambda functions for arm64 (Graviton, provided.al2023) as zip files with
# cargo-lambda (from the project venv: the PyPI package ships the binary, and zig as the
# cross linker), then prints each zip's path and size.
#
#   scripts/package.sh                 hello, initialtrain, retrain, predict, outcomes, ingest, monitor, authorizer
#   scripts/package.sh predict         just these
#
# Environment:
#   LAMBDA_TARGET_DIR   cargo target dir of the arm64 builds (default ~/.cache/fraudrisk/target-lambda,
#                       apart from the host builds' CARGO_TARGET_DIR so neither evicts the other)
#   LAMBDA_DIR          where the zips go (default $LAMBDA_TARGET_DIR/lambda/<function>/bootstrap.zip)
#   PACKAGE_PROFILE     lambda (default): the workspace's `lambda` profile, what ships (fat LTO,
#                       codegen-units = 1, panic = abort: slow to build on 2 cores);
#                       fast: the same profile without LTO and with 16 codegen units, for CI and
#                       a quick local check: it proves every function cross-compiles, links
#                       and zips in minutes (LTO was most of CI's time: the whole graph again
#                       per function); bigger, slower binaries, never for deployment
#   PACKAGE_SKIP_LINT=1 skip the template lint that runs first
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${FRAUDRISK_CACHE:-$HOME/.cache/fraudrisk}
all_functions=(hello initialtrain retrain predict outcomes ingest monitor authorizer)
if [ "$#" -gt 0 ]; then functions=("$@"); else functions=("${all_functions[@]}"); fi
for f in "${functions[@]}"; do
  case " ${all_functions[*]} " in
    *" $f "*) ;;
    *) echo "package: unknown function $f (one of: ${all_functions[*]})" >&2; exit 2 ;;
  esac
done

if [ "${PACKAGE_SKIP_LINT:-0}" != 1 ]; then
  bash "$root/scripts/lint-template.sh" >&2
fi

# cargo-lambda and zig from the project venv (zig is found as `python3 -m ziglang`).
venv=$(bash "$root/scripts/python-env.sh")
export PATH="$venv/bin:$PATH"
cargo_lambda=("$venv/bin/cargo-lambda" lambda)

target=aarch64-unknown-linux-gnu
if ! rustup target list --installed | grep -qx "$target"; then
  echo "package: rustup target add $target" >&2
  rustup target add "$target" >&2
fi

export CARGO_TARGET_DIR=${LAMBDA_TARGET_DIR:-$cache/target-lambda}
lambda_dir=${LAMBDA_DIR:-$CARGO_TARGET_DIR/lambda}
case "${PACKAGE_PROFILE:-lambda}" in
  lambda) ;;
  fast)
    echo "package: PACKAGE_PROFILE=fast: no LTO, 16 codegen units (not for deployment)" >&2
    export CARGO_PROFILE_LAMBDA_LTO=false CARGO_PROFILE_LAMBDA_CODEGEN_UNITS=16
    ;;
  *) echo "package: PACKAGE_PROFILE must be lambda or fast" >&2; exit 2 ;;
esac

packages=()
for f in "${functions[@]}"; do packages+=(--package "$f"); done
echo "package: cargo lambda build --profile lambda --arm64 --output-format zip ${packages[*]} (target dir $CARGO_TARGET_DIR)" >&2
start=$(date +%s)
(cd "$root" && "${cargo_lambda[@]}" build --profile lambda --arm64 --output-format zip \
  --lambda-dir "$lambda_dir" "${packages[@]}" >&2)
elapsed=$(( $(date +%s) - start ))

# The table: function, zip size, unpacked bootstrap size, path.
printf '\n%-13s %10s %12s  %s\n' function "zip" "bootstrap" path
status=0
for f in "${functions[@]}"; do
  zip=$lambda_dir/$f/bootstrap.zip
  if [ ! -f "$zip" ]; then
    printf '%-13s %10s %12s  %s\n' "$f" missing - "$zip"
    status=1
    continue
  fi
  bytes=$(stat -c %s "$zip")
  # The zip must hold exactly an executable `bootstrap` built for Lambda's arm64 (ELF
  # machine 183, AArch64); prints its unpacked size.
  if ! unpacked=$(python3 - "$zip" <<'PY'
import struct, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as archive:
    names = archive.namelist()
    if names != ["bootstrap"]:
        sys.exit(f"expected only bootstrap in the zip, found {names}")
    info = archive.getinfo("bootstrap")
    head = archive.open(info).read(20)
    if head[:4] != b"\x7fELF" or struct.unpack("<H", head[18:20])[0] != 183:
        sys.exit("bootstrap is not an AArch64 ELF executable")
    if not (info.external_attr >> 16) & 0o111:
        sys.exit("bootstrap is not marked executable")
    print(info.file_size)
PY
  ); then
    echo "package: $zip is not a Lambda arm64 package (see above)" >&2
    status=1
    continue
  fi
  awk -v f="$f" -v z="$bytes" -v u="$unpacked" -v p="$zip" \
    'BEGIN { printf "%-13s %6.2f MiB %8.2f MiB  %s\n", f, z / 1048576, u / 1048576, p }'
done
echo "(built in ${elapsed} s, profile ${PACKAGE_PROFILE:-lambda})"
exit "$status"
