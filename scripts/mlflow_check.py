#!/usr/bin/env python3
"""Check from outside, with MLflow's own client and boto3, what the Rust code wrote.

Run with the project's venv against the services of scripts/services.sh:

  venv=$(bash scripts/python-env.sh)
  "$venv/bin/python" scripts/mlflow_check.py champion --model fraud-risk [--alias champion]
      -> {"name", "version", "run_id", "source", "status", "aliases", "tags"}
  "$venv/bin/python" scripts/mlflow_check.py run --run-id ID
      -> {"run_id", "experiment_id", "run_name", "status", "artifact_uri", "params", "metrics",
          "tags", "artifacts"}   (artifacts: every file path under the run's root, recursively, sorted)
  "$venv/bin/python" scripts/mlflow_check.py experiment --name NAME
      -> {"experiment_id", "name", "tags", "runs"}   (runs: {"run_id", "run_name", "status",
          "metrics", "tags"} each, oldest first)
  "$venv/bin/python" scripts/mlflow_check.py logged-models --experiment NAME
      -> {"models"}   (search_logged_models: {"model_id", "name", "status", "source_run_id",
          "model_type", "artifact_location", "params", "tags", "metrics", "artifacts"} each, oldest first)
  "$venv/bin/python" scripts/mlflow_check.py s3-list [--prefix P] [--bucket B]
      -> {"bucket", "prefix", "keys"}   (keys sorted)

Output is one JSON object on stdout. On any error: a one-line message on stderr, exit status 1
(2 for bad usage).

Settings come from the environment (MLFLOW_TRACKING_URI, MLFLOW_TRACKING_USERNAME/PASSWORD,
MLFLOW_S3_ENDPOINT_URL or AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID/SECRET, AWS region,
FRAUDRISK_BUCKET). When MLFLOW_TRACKING_URI is not set, the env file written by
`scripts/services.sh start` is read (--env-file, default
${FRAUDRISK_SERVICES_DIR:-${FRAUDRISK_CACHE:-~/.cache/fraudrisk}/services}/services.env); variables
already in the environment win over the file.
"""

import argparse
import json
import os
import shlex
import sys

# No telemetry calls from a test tool.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
# Fail fast instead of MLflow's default of 7 retries with exponential backoff (minutes).
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")


class CheckError(Exception):
    pass


def default_env_file():
    state = os.environ.get("FRAUDRISK_SERVICES_DIR") or os.path.join(
        os.environ.get("FRAUDRISK_CACHE") or os.path.expanduser("~/.cache/fraudrisk"), "services"
    )
    return os.path.join(state, "services.env")


def load_env_file(path, required):
    """Load `export VAR=value` lines (shell-quoted values) without overriding the environment."""
    if not os.path.exists(path):
        if required:
            raise CheckError(f"env file {path} not found (run 'bash scripts/services.sh start' first)")
        return
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("export "):
                line = line[len("export "):]
            key, sep, value = line.partition("=")
            if not sep:
                continue
            parts = shlex.split(value) if value else [""]
            os.environ.setdefault(key.strip(), parts[0] if parts else "")


def mlflow_client():
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        raise CheckError("MLFLOW_TRACKING_URI is not set (source the services env file)")
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=os.environ["MLFLOW_TRACKING_URI"])


def model_version_json(mv):
    return {
        "name": mv.name,
        "version": str(mv.version),
        "run_id": mv.run_id,
        "source": mv.source,
        "status": mv.status,
        "aliases": list(getattr(mv, "aliases", []) or []),
        "tags": dict(mv.tags or {}),
    }


def cmd_champion(args):
    client = mlflow_client()
    mv = client.get_model_version_by_alias(args.model, args.alias)
    return model_version_json(mv)


def list_artifacts_recursive(client, run_id, path=None):
    out = []
    for info in client.list_artifacts(run_id, path):
        if info.is_dir:
            out.extend(list_artifacts_recursive(client, run_id, info.path))
        else:
            out.append(info.path)
    return out


def cmd_run(args):
    client = mlflow_client()
    run = client.get_run(args.run_id)
    return {
        "run_id": run.info.run_id,
        "experiment_id": run.info.experiment_id,
        "run_name": run.info.run_name,
        "status": run.info.status,
        "artifact_uri": run.info.artifact_uri,
        "params": dict(run.data.params),
        "metrics": dict(run.data.metrics),
        "tags": dict(run.data.tags),
        "artifacts": sorted(list_artifacts_recursive(client, run.info.run_id)),
    }


def experiment_by_name(client, name):
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        raise CheckError(f"no experiment named {name!r}")
    return experiment


def cmd_experiment(args):
    client = mlflow_client()
    experiment = experiment_by_name(client, args.name)
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    return {
        "experiment_id": experiment.experiment_id,
        "name": experiment.name,
        "tags": dict(experiment.tags or {}),
        "runs": [
            {
                "run_id": run.info.run_id,
                "run_name": run.info.run_name,
                "status": run.info.status,
                "metrics": dict(run.data.metrics),
                "tags": dict(run.data.tags),
            }
            for run in runs
        ],
    }


def cmd_logged_models(args):
    client = mlflow_client()
    experiment = experiment_by_name(client, args.experiment)
    models = []
    token = None
    while True:
        page = client.search_logged_models([experiment.experiment_id], page_token=token)
        models.extend(page)
        token = page.token
        if not token:
            break
    models.sort(key=lambda m: m.creation_timestamp)
    return {
        "models": [
            {
                "model_id": m.model_id,
                "name": m.name,
                "status": str(m.status),
                "source_run_id": m.source_run_id,
                "model_type": m.model_type,
                "artifact_location": m.artifact_location,
                "params": dict(m.params or {}),
                "tags": dict(m.tags or {}),
                "metrics": {metric.key: metric.value for metric in (m.metrics or [])},
                "artifacts": sorted(f.path for f in client.list_logged_model_artifacts(m.model_id)),
            }
            for m in models
        ]
    }


def s3_endpoint():
    for var in ("AWS_ENDPOINT_URL_S3", "MLFLOW_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL"):
        if os.environ.get(var):
            return os.environ[var]
    raise CheckError("no S3 endpoint: set AWS_ENDPOINT_URL_S3, MLFLOW_S3_ENDPOINT_URL or AWS_ENDPOINT_URL")


def cmd_s3_list(args):
    import boto3
    from botocore.config import Config

    bucket = args.bucket or os.environ.get("FRAUDRISK_BUCKET")
    if not bucket:
        raise CheckError("no bucket: pass --bucket or set FRAUDRISK_BUCKET")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_endpoint(),
        region_name=region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
    )
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=args.prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return {"bucket": bucket, "prefix": args.prefix, "keys": sorted(keys)}


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="mlflow_check.py", description="Inspect what was written to MLflow and S3 (JSON on stdout)."
    )
    p.add_argument("--env-file", default=None, help="services env file (default: the one services.sh writes)")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("champion", help="the model version an alias points to")
    c.add_argument("--model", required=True, help="registered model name, e.g. fraud-risk")
    c.add_argument("--alias", default="champion", help="alias (default: champion)")
    c.set_defaults(func=cmd_champion)

    r = sub.add_parser("run", help="a run's status, params, metrics, tags and artifact paths")
    r.add_argument("--run-id", required=True)
    r.set_defaults(func=cmd_run)

    e = sub.add_parser("experiment", help="an experiment's tags and its runs' metrics and tags")
    e.add_argument("--name", required=True)
    e.set_defaults(func=cmd_experiment)

    m = sub.add_parser("logged-models", help="the experiment's MLflow 3 logged models")
    m.add_argument("--experiment", required=True, help="experiment name")
    m.set_defaults(func=cmd_logged_models)

    s = sub.add_parser("s3-list", help="object keys in the bucket under a prefix")
    s.add_argument("--prefix", default="", help="key prefix (default: all keys)")
    s.add_argument("--bucket", default=None, help="bucket (default: $FRAUDRISK_BUCKET)")
    s.set_defaults(func=cmd_s3_list)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.env_file or not os.environ.get("MLFLOW_TRACKING_URI"):
            load_env_file(args.env_file or default_env_file(), required=args.env_file is not None)
        result = args.func(args)
    except CheckError as e:
        print(f"mlflow_check {args.command}: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # MlflowException, botocore errors, connection errors
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        print(f"mlflow_check {args.command}: error: {type(e).__name__}: {msg}", file=sys.stderr)
        return 1
    json.dump(result, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
