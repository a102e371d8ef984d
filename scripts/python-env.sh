#!/usr/bin/env bash
# Creates (or reuses) the project's Python virtualenv and prints its path.
# The venv lives outside the clone so fresh clones and CI runs reuse it; it is rebuilt
# whenever its requirements file changes.
#
#   bash scripts/python-env.sh             the project's venv (scripts/requirements.txt)
#   bash scripts/python-env.sh evidently   Evidently's own venv (scripts/requirements-evidently.txt:
#                                          it needs pandas < 3), for the drift benchmark only
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${FRAUDRISK_CACHE:-$HOME/.cache/fraudrisk}
case "${1:-}" in
  "") venv=${FRAUDRISK_VENV:-$cache/venv}
      # Another requirements file (scripts/sam-build.sh: the SAM CLI, kept apart from mlflow's pins).
      requirements=${FRAUDRISK_REQUIREMENTS:-$here/requirements.txt} ;;
  evidently) venv=$cache/venv-evidently
      requirements=$here/requirements-evidently.txt ;;
  *) echo "python-env.sh: unknown environment $1 (none, or evidently)" >&2; exit 2 ;;
esac
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "python-env: installing $requirements into $venv" >&2
  mkdir -p "$cache"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip >&2
  "$venv/bin/pip" install --quiet -r "$requirements" >&2
  echo "$want" > "$stamp"
fi
echo "$venv"
