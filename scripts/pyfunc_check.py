#!/usr/bin/env python3
"""Load a fraudrisk model with MLflow's Python client, as a data scientist would, and score.

Run with the project's venv (the tests do; see scripts/mlflow_check.py for the settings):

  venv=$(bash scripts/python-env.sh)
  "$venv/bin/python" scripts/pyfunc_check.py predict --model-uri URI --input APPLICANTS.json
      -> {"probabilities", "output_columns", "flavors", "loader_module"}
         mlflow.pyfunc.load_model(URI).predict(DataFrame of the applicants)
  ... predict --model-uri FOLDER --input FILE --direct
      -> the same without MLflow: imports FOLDER/code/fraudrisk_pyfunc.py and calls
         _load_pyfunc(FOLDER/model.json), so MLflow's own schema check cannot refuse first
  ... predict ... --expect-error
      -> {"error_type", "error"} when predict refuses the input; exit status 1 if it scores it
  ... serve --model-uri URI --input APPLICANTS.json [--refused BAD.json] [--timeout 180]
      -> {"predictions", "refused_status", "refused_body", "port"}
         starts `mlflow models serve -m URI --env-manager local` on a free loopback port, waits
         for GET /ping, POSTs the applicants to /invocations (dataframe_split), and the --refused
         ones (expecting a 4xx), then stops the server (its whole process group).

APPLICANTS.json is a JSON list of objects, feature name -> integer. Probabilities are printed
with Python's shortest round-trip float form, so they compare exactly.

Output is one JSON object on stdout. On any error: a one-line message on stderr, exit status 1.
The services env file is read only when --env-file is given (models:/ URIs need the tracking
server and S3 settings; a local folder needs nothing).
"""

import argparse
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

# The same fail-fast and no-telemetry settings as mlflow_check.py.
from mlflow_check import CheckError, load_env_file

MODULE = "fraudrisk_pyfunc"


def read_applicants(path):
    import pandas as pd

    with open(path) as f:
        rows = json.load(f)
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise CheckError(f"{path}: expected a JSON list of objects")
    # Integer columns (int64), as the signature's `long` inputs want.
    return pd.DataFrame.from_records(rows)


def probabilities_of(result):
    import pandas as pd

    if isinstance(result, pd.DataFrame):
        return [float(v) for v in result.iloc[:, 0]], list(result.columns)
    if isinstance(result, pd.Series):
        return [float(v) for v in result], [result.name]
    raise CheckError(f"predict returned a {type(result).__name__}, not a DataFrame")


def load_direct(folder):
    path = os.path.join(folder, "code", f"{MODULE}.py")
    spec = importlib.util.spec_from_file_location(MODULE, path)
    if spec is None or spec.loader is None:
        raise CheckError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._load_pyfunc(os.path.join(folder, "model.json")), None


def load_with_mlflow(uri):
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(uri)
    return model, model.metadata


def cmd_predict(args):
    frame = read_applicants(args.input)
    model, metadata = load_direct(args.model_uri) if args.direct else load_with_mlflow(args.model_uri)
    try:
        result = model.predict(frame)
    except Exception as e:  # ValueError from the loader, MlflowException from MLflow's check
        if args.expect_error:
            return {"error_type": type(e).__name__, "error": str(e)}
        raise
    if args.expect_error:
        raise CheckError("expected predict to refuse the input, but it scored it")
    probabilities, columns = probabilities_of(result)
    out = {"probabilities": probabilities, "output_columns": columns}
    if metadata is not None:
        out["flavors"] = sorted(metadata.flavors)
        out["loader_module"] = metadata.flavors.get("python_function", {}).get("loader_module")
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, timeout=30):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_for_ping(process, base, deadline, log_path):
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CheckError(f"mlflow models serve exited with status {process.returncode}: {tail(log_path)}")
        try:
            if http("GET", f"{base}/ping", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise CheckError(f"mlflow models serve did not answer /ping in time: {tail(log_path)}")


def tail(path, lines=5):
    try:
        with open(path, errors="replace") as f:
            return " | ".join(f.read().strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop(process):
    """SIGTERM to the server's process group (mlflow starts uvicorn workers), then SIGKILL."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=15)


def split(frame):
    return {"dataframe_split": {"columns": list(frame.columns), "data": frame.values.tolist()}}


def cmd_serve(args):
    frame = read_applicants(args.input)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = os.path.join(args.log_dir or os.getcwd(), f"mlflow-serve-{port}.log")
    command = [
        sys.executable, "-m", "mlflow", "models", "serve", "-m", args.model_uri,
        "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1",
    ]
    # mlflow runs `uvicorn` by name: the venv's bin must be on PATH, as if it were activated.
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    deadline = time.monotonic() + args.timeout
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    try:
        wait_for_ping(process, base, deadline, log_path)
        status, body = http("POST", f"{base}/invocations", split(frame), timeout=60)
        if status != 200:
            raise CheckError(f"POST /invocations answered {status}: {body[:500]}")
        answer = json.loads(body)
        predictions = answer.get("predictions")
        if not isinstance(predictions, list):
            raise CheckError(f"POST /invocations answered without predictions: {body[:500]}")
        # A DataFrame answer is a list of records; take the signature's output column.
        values = [p["probability_of_fraud"] if isinstance(p, dict) else p for p in predictions]
        out = {"predictions": values, "port": port}
        if args.refused:
            refused = split(read_applicants(args.refused))
            status, body = http("POST", f"{base}/invocations", refused, timeout=60)
            out["refused_status"], out["refused_body"] = status, body
        return out
    finally:
        stop(process)


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="pyfunc_check.py", description="Score with MLflow's Python client (JSON on stdout)."
    )
    p.add_argument("--env-file", default=None, help="services env file (needed for models:/ URIs)")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("predict", help="mlflow.pyfunc.load_model(URI).predict(applicants)")
    c.add_argument("--model-uri", required=True, help="models:/<name>@champion, or a model folder")
    c.add_argument("--input", required=True, help="JSON list of applicant objects")
    c.add_argument("--direct", action="store_true", help="import the folder's loader without MLflow")
    c.add_argument("--expect-error", action="store_true", help="succeed only if predict refuses the input")
    c.set_defaults(func=cmd_predict)

    s = sub.add_parser("serve", help="mlflow models serve, /ping, POST /invocations, stop")
    s.add_argument("--model-uri", required=True)
    s.add_argument("--input", required=True, help="JSON list of applicant objects")
    s.add_argument("--refused", default=None, help="applicants the server must refuse (status reported)")
    s.add_argument("--timeout", type=float, default=180.0, help="seconds until /ping must answer")
    s.add_argument("--log-dir", default=None, help="where the server's log goes (default: cwd)")
    s.set_defaults(func=cmd_serve)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.env_file:
            load_env_file(args.env_file, required=True)
        result = args.func(args)
    except CheckError as e:
        print(f"pyfunc_check {args.command}: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # MlflowException, ValueError from the loader, connection errors
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        print(f"pyfunc_check {args.command}: error: {type(e).__name__}: {msg}", file=sys.stderr)
        return 1
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
