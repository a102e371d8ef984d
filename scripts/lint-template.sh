#!/usr/bin/env bash
# Lints template.yaml (SAM) in two passes; exits non-zero on any error or warning.
#   1. cfn-lint on the SAM template itself (the project venv, scripts/python-env.sh). This is the
#      issue's CI check. cfn-lint 1.x validates SAM resources against SAM's schemas only.
#   2. The real SAM transform (aws-sam-translator, in its own small venv), then cfn-lint on the
#      CloudFormation it produces: the IAM roles, EventBridge rules, API stage and permissions
#      that `sam deploy` would create. Skip with LINT_SKIP_TRANSFORM=1.
# Usage: scripts/lint-template.sh [template.yaml]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
template=${1:-$root/template.yaml}
venv=$(bash "$root/scripts/python-env.sh")

echo "lint-template: cfn-lint $("$venv/bin/cfn-lint" --version | awk '{print $2}') on $template"
"$venv/bin/cfn-lint" -- "$template"
echo "lint-template: cfn-lint clean"

if [ "${LINT_SKIP_TRANSFORM:-0}" = 1 ]; then
  exit 0
fi

cache=${FRAUDRISK_CACHE:-$HOME/.cache/fraudrisk}
sam_venv=$cache/venv-sam
sam_requirements="aws-sam-translator==1.* pyyaml==6.*"
stamp=$sam_venv/.requirements
if [ ! -x "$sam_venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$sam_requirements" ]; then
  echo "lint-template: installing $sam_requirements into $sam_venv" >&2
  python3 -m venv "$sam_venv"
  # shellcheck disable=SC2086 # the list is split on purpose
  "$sam_venv/bin/pip" install --quiet $sam_requirements >&2
  echo "$sam_requirements" > "$stamp"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The transform resolves pseudo parameters, so it needs some region; nothing is contacted.
AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-eu-central-1} "$sam_venv/bin/python" - "$template" "$work/transformed.json" <<'PY'
import json
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class ManagedPolicies:
    """The AWS managed policies the template names, so the transform needs no AWS call."""

    def load(self):
        return {
            name: f"arn:aws:iam::aws:policy/service-role/{name}"
            for name in ("AWSLambdaBasicExecutionRole", "AWSLambdaVPCAccessExecutionRole")
        }


source, target = sys.argv[1], sys.argv[2]
with open(source) as f:
    template = yaml_parse(f.read())
# `sam build` replaces the local CodeUri with the built artifact; stand in an S3 location.
placeholder = "s3://placeholder-bucket/function.zip"
globals_function = template.get("Globals", {}).get("Function", {})
if "CodeUri" in globals_function:
    globals_function["CodeUri"] = placeholder
for resource in template["Resources"].values():
    if resource.get("Type") == "AWS::Serverless::Function":
        if "CodeUri" in resource.get("Properties", {}):
            resource["Properties"]["CodeUri"] = placeholder
try:
    output = transform(template, {}, ManagedPolicies())
except Exception as error:  # the translator raises its own exception types, with the details
    print(f"lint-template: the SAM transform failed: {error}", file=sys.stderr)
    for cause in getattr(error, "causes", []):
        print(f"  {cause}", file=sys.stderr)
    sys.exit(1)
with open(target, "w") as f:
    json.dump(output, f, indent=1)
kinds = sorted({r["Type"] for r in output["Resources"].values()})
print(f"lint-template: SAM transform produced {len(output['Resources'])} resources: {', '.join(kinds)}")
PY
"$venv/bin/cfn-lint" -- "$work/transformed.json"
echo "lint-template: transformed template clean"
