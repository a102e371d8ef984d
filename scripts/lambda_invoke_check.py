"""Sends every event of events/manifest.json with `cargo lambda invoke` to a running
`cargo lambda watch` and checks each answer against the manifest, with the same rules as
shared/tests/http_events.rs: the status (or, for a scheduled event or an authorizer call, a
successful invocation whose result is checked with `expect_json`),
`expect_json` contained in the JSON body, `expect_text` substrings, WWW-Authenticate on 401,
Allow on 405, and an `error` member in every error body. Used by scripts/lambda-invoke-test.sh.
Exits 1 listing every mismatch, 0 when all match.
"""

import argparse
import json
import socket
import subprocess
import sys
import time
from pathlib import Path


def contains(actual, expected):
    """True when `expected` is contained in `actual`: objects key by key, arrays of the same
    length element by element, None for any value that is present."""
    if expected is None:
        return True
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and contains(actual[key], value) for key, value in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(contains(a, e) for a, e in zip(actual, expected))
        )
    return actual == expected


def wait_for_port(port, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"lambda_invoke_check: cargo lambda watch did not listen on port {port} within {seconds} s")


def invoke(args, function, event_file):
    command = [
        args.cargo_lambda, "lambda", "invoke",
        "--invoke-address", "127.0.0.1", "--invoke-port", str(args.port),
        "--output-format", "json", "--data-file", str(event_file), function,
    ]
    done = subprocess.run(
        command, cwd=args.workdir, capture_output=True, text=True, timeout=args.timeout
    )
    return done.returncode, done.stdout, done.stderr


def check(expect, function, returncode, stdout, stderr):
    if returncode != 0:
        return [f"cargo lambda invoke failed ({returncode}): {stderr.strip()[-500:]}"]
    try:
        output = json.loads(stdout)
    except json.JSONDecodeError:
        return [f"not JSON: {stdout[:300]!r}"]
    problems = []
    if "statusCode" not in output:
        # A scheduled event (the invocation's result is the summary) or an authorizer call
        # (the result is {"isAuthorized": ..., "context": ...}).
        if expect.get("invocation") != "ok":
            problems.append(f"no statusCode, expected status {expect.get('status')}")
        body_text = stdout
        status = None
        headers = {}
    else:
        status = output["statusCode"]
        headers = {name.lower(): value for name, value in (output.get("headers") or {}).items()}
        body_text = output.get("body") or ""
        if output.get("isBase64Encoded"):
            problems.append("base64-encoded body")
        if status != expect.get("status"):
            problems.append(f"status {status}, expected {expect.get('status')}")
    try:
        body = json.loads(body_text)
    except json.JSONDecodeError:
        body = None
    if "expect_json" in expect and not contains(body, expect["expect_json"]):
        problems.append(f"body does not contain {json.dumps(expect['expect_json'])}")
    for text in expect.get("expect_text", []):
        if text not in body_text:
            problems.append(f"body does not contain {text!r}")
    if status == 401 and "www-authenticate" not in headers:
        problems.append("401 without WWW-Authenticate")
    if status == 405 and "allow" not in headers:
        problems.append("405 without Allow")
    if status is not None and status >= 400 and not (isinstance(body, dict) and "error" in body):
        problems.append('an error without {"error": ...}')
    if problems:
        problems.append(f"body: {body_text[:300]}")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cargo-lambda", required=True, help="the cargo-lambda binary")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--events", type=Path, required=True, help="the events/ folder")
    parser.add_argument("--workdir", required=True, help="the workspace root")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per invocation")
    args = parser.parse_args()

    manifest = json.loads((args.events / "manifest.json").read_text())
    files = sorted(p.name for p in args.events.glob("*.json") if p.name != "manifest.json")
    unlisted = sorted(set(files) - set(manifest["events"]))
    if unlisted:
        sys.exit(f"lambda_invoke_check: events missing from manifest.json: {unlisted}")

    wait_for_port(args.port, 120)
    failures = []
    for name in sorted(manifest["events"]):
        expect = manifest["events"][name]
        function = expect["function"]
        started = time.monotonic()
        returncode, stdout, stderr = invoke(args, function, args.events / name)
        elapsed = time.monotonic() - started
        problems = check(expect, function, returncode, stdout, stderr)
        wanted = expect.get("status", "invocation ok")
        verdict = "ok" if not problems else "FAILED"
        print(f"{verdict:6} {function:12} {name:38} expected {wanted}  ({elapsed:.2f} s)")
        if problems:
            failures.append(f"{name}: " + "; ".join(problems))
    if failures:
        print("\n".join(["", "mismatches:"] + failures), file=sys.stderr)
        sys.exit(1)
    print(f"all {len(manifest['events'])} events answered as events/manifest.json expects")


if __name__ == "__main__":
    main()
