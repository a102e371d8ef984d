#!/usr/bin/env bash
# `sam build` without traps: the functions built by SAM's rust-cargolambda method from any
# PATH order and any CARGO_TARGET_DIR, with SAM's build cache working.
#
#   bash scripts/sam-build.sh            then: sam deploy --guided (see docs/deployment.md)
#   bash scripts/sam-build.sh --debug    extra arguments go to `sam build`
#
# What it arranges, each a trap a new user hit:
# - the SAM CLI and cargo-lambda come from their own venv (scripts/requirements-sam.txt), first on
#   PATH, so cargo-lambda's `python3 -m ziglang` finds zig whatever python3 was first before;
# - SAM's rust-cargolambda build always passes `--release`, so the staged copy's release profile
#   is given the `lambda` profile's settings (fat LTO, one codegen unit, panic = abort,
#   stripped): the zips equal scripts/package.sh's;
# - SAM hashes everything under CodeUri (the workspace root) to decide whether its cache hits, and
#   target/, .fraudrisk/ and .git/ change all the time: SAM builds from a staging copy of the
#   files git knows (tracked, or new and not ignored), refreshed with rsync --checksum so that
#   unchanged files keep their modification times and cargo rebuilds only what changed; the
#   cargo target dir is outside the checkout.
# Output: .aws-sam/build (git-ignored), as a plain `sam build` makes it, so `sam deploy` works
# from the checkout.
#
# Environment: FRAUDRISK_CACHE (default ~/.cache/fraudrisk) holds the venv (venv-sam), the
# staging copy (sam-src), SAM's cache (sam-cache) and the cargo target dir (target-sam).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${FRAUDRISK_CACHE:-$HOME/.cache/fraudrisk}

venv=$(FRAUDRISK_VENV="$cache/venv-sam" FRAUDRISK_REQUIREMENTS="$root/scripts/requirements-sam.txt" \
  bash "$root/scripts/python-env.sh")
export PATH="$venv/bin:$PATH"

target=aarch64-unknown-linux-gnu
if ! rustup target list --installed | grep -qx "$target"; then
  echo "sam-build: rustup target add $target" >&2
  rustup target add "$target" >&2
fi

export CARGO_TARGET_DIR="$cache/target-sam"

# The staging copy: exactly the files git knows, unchanged files untouched.
stage="$cache/sam-src"
mkdir -p "$stage"
list=$(mktemp)
trap 'rm -f "$list"' EXIT
(cd "$root" && git ls-files --cached --others --exclude-standard -z) > "$list"
rsync -a --checksum --from0 --files-from="$list" "$root/" "$stage/"
# Remove what git no longer knows (deleted or renamed files).
(cd "$stage" && find . -type f -print0 | sed -z 's|^\./||' | sort -z) |
  comm -z -23 - <(sort -z "$list") | (cd "$stage" && xargs -0 -r rm -f)

# SAM's build always passes `--release`; the staged Cargo.toml's release profile gets the
# `lambda` profile's settings (fat LTO, one codegen unit, panic = abort, stripped). Environment
# overrides would not do: cargo-lambda adds its own `--config profile.release.*` (thin LTO) when
# the release profile in Cargo.toml sets none, and those win over CARGO_PROFILE_RELEASE_*.
python3 - "$stage/Cargo.toml" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read()
sections = re.split(r"(?m)^(?=\[)", text)
lambda_body = next(s for s in sections if s.startswith("[profile.lambda]"))
settings = [l for l in lambda_body.splitlines()[1:] if "=" in l and not l.startswith("inherits")]
out = []
for section in sections:
    if section.startswith("[profile.release]"):
        section = "[profile.release]\n# scripts/sam-build.sh: the lambda profile's settings\n" + "\n".join(settings) + "\n\n"
    out.append(section)
new = "".join(out)
if new != text:
    open(path, "w").write(new)
PY

echo "sam-build: sam build --cached from $stage (cargo target dir $CARGO_TARGET_DIR)" >&2
start=$(date +%s)
(cd "$stage" && sam build --cached --cache-dir "$cache/sam-cache" \
  --build-dir "$root/.aws-sam/build" --template-file "$stage/template.yaml" "$@")
echo "sam-build: done in $(( $(date +%s) - start )) s; next: sam deploy --guided" >&2
