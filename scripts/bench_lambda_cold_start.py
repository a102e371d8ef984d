#!/usr/bin/env python3
"""Cold start and memory of a Lambda function binary, on this machine, without AWS.

A minimal Lambda Runtime API (the part a custom runtime uses: `invocation/next`,
`invocation/<id>/response`, `invocation/<id>/error`, `init/error`) on a loopback port. For each
run it starts the function binary as Lambda would (AWS_LAMBDA_RUNTIME_API and the usual
AWS_LAMBDA_* variables, plus whatever the caller exports), hands it the event file, and times:

  init   process start -> the first `invocation/next` (runtime ready: config, store, champion)
  first  process start -> the first invocation's answer (includes checking the password)

then sends `--warm` more invocations of the same event, timing each round trip, and reads the
process's resident memory (VmRSS, and the peak VmHWM) from /proc before stopping it.

`--cgroup DIR` starts each function process inside that cgroup (it writes its own pid to
DIR/cgroup.procs before exec), e.g. one whose CPU quota emulates a Lambda memory size
(scripts/bench-cpu-quota.sh); `--memory-mb` sets AWS_LAMBDA_FUNCTION_MEMORY_SIZE to match.
`--expect-authorized true|false` checks an authorizer's simple response instead of a status
(give `--expect-status 0`).

Prints one JSON object on standard output. Standard library only.
Usage: bench_lambda_cold_start.py BINARY EVENT.json [--runs 5] [--warm 200] [--expect-status 200]
       [--cgroup DIR] [--memory-mb 256] [--expect-authorized true]
"""

import argparse
import http.server
import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

PREFIX = "/2018-06-01/runtime"


class Runtime:
    """The state the handler shares with the benchmark: events to hand out, answers back."""

    def __init__(self):
        self.events = queue.Queue()
        self.answers = queue.Queue()
        self.first_next = None  # time of the first invocation/next of the current process
        self.lock = threading.Lock()


def make_handler(runtime):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def _reply(self, status, body=b"", headers=None):
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path != PREFIX + "/invocation/next":
                self._reply(404)
                return
            now = time.perf_counter()
            with runtime.lock:
                if runtime.first_next is None:
                    runtime.first_next = now
            request_id, body = runtime.events.get()
            if request_id is None:  # shutting down: never answer
                return
            deadline_ms = int(time.time() * 1000) + 30_000
            self._reply(
                200,
                body,
                {
                    "Content-Type": "application/json",
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:eu-central-1:123456789012:function:bench",
                    "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;Sampled=0",
                },
            )

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            now = time.perf_counter()
            parts = self.path[len(PREFIX):].strip("/").split("/")
            if parts[:1] == ["init"] and parts[1:] == ["error"]:
                runtime.answers.put(("init-error", None, body, now))
            elif parts[:1] == ["invocation"] and len(parts) == 3:
                runtime.answers.put((parts[1], parts[2], body, now))
            else:
                self._reply(404)
                return
            self._reply(202, b'{"status":"OK"}', {"Content-Type": "application/json"})

    return Handler


class QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A stopped function process drops its connections: expected, not worth a traceback.
        if not isinstance(sys.exc_info()[1], (ConnectionError, BrokenPipeError)):
            super().handle_error(request, client_address)


def memory_kib(pid):
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values


def one_run(runtime, address, args, event):
    env = dict(os.environ)
    env.update(
        {
            "AWS_LAMBDA_RUNTIME_API": address,
            "AWS_LAMBDA_FUNCTION_NAME": "bench",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(args.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench",
            "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
            "AWS_REGION": env.get("AWS_REGION", "eu-central-1"),
            "_HANDLER": "bootstrap",
        }
    )
    request_id = str(uuid.uuid4())
    runtime.events.put((request_id, event))
    started = time.perf_counter()
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(
        [args.binary], env=env, stdout=log, stderr=subprocess.STDOUT,
        preexec_fn=enter_cgroup(args.cgroup) if args.cgroup else None,
    )
    ok = False
    try:
        try:
            answer_id, kind, body, answered = runtime.answers.get(timeout=args.timeout)
        except queue.Empty:
            raise SystemExit(f"no answer within {args.timeout} s")
        if answer_id == "init-error" or kind != "response":
            raise SystemExit(f"the function failed: {answer_id} {kind} {body[:500]!r}")
        check_answer(body, args)
        result = {
            "init_ms": (runtime.first_next - started) * 1000,
            "first_answer_ms": (answered - started) * 1000,
        }
        warm = []
        for _ in range(args.warm):
            request_id = str(uuid.uuid4())
            sent = time.perf_counter()
            runtime.events.put((request_id, event))
            _, kind, body, answered = runtime.answers.get(timeout=args.timeout)
            if kind != "response":
                raise SystemExit(f"warm invocation failed: {body[:500]!r}")
            warm.append((answered - sent) * 1000)
        if warm:
            check_answer(body, args)
            result["warm_p50_ms"] = statistics.median(warm)
            result["warm_p99_ms"] = sorted(warm)[max(0, int(len(warm) * 0.99) - 1)]
        memory = memory_kib(process.pid)
        result["rss_mib"] = memory.get("VmRSS", 0) / 1024
        result["peak_rss_mib"] = memory.get("VmHWM", 0) / 1024
        ok = True
        return result
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        # Release the poll the process left parked in the handler.
        runtime.events.put((None, None))
        if not ok or args.verbose:
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace")[-4000:])
        log.close()


def enter_cgroup(directory):
    """A preexec_fn: the child moves itself into the cgroup before exec, so the function
    never runs an instruction outside its CPU quota."""
    def enter():
        with open(os.path.join(directory, "cgroup.procs"), "w") as procs:
            procs.write(str(os.getpid()))
    return enter


def check_answer(body, args):
    answer = json.loads(body)
    if args.expect_authorized is not None:
        wanted = args.expect_authorized == "true"
        if answer.get("isAuthorized") is not wanted:
            raise SystemExit(f"expected isAuthorized {wanted}, got {body[:500]!r}")
    status = answer.get("statusCode")
    if args.expect_status and status != args.expect_status:
        raise SystemExit(f"expected status {args.expect_status}, got {status}: {answer.get('body', '')[:500]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary")
    parser.add_argument("event")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warm", type=int, default=200)
    parser.add_argument("--expect-status", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--cgroup", help="start the function inside this cgroup (v1 or v2 folder)")
    parser.add_argument("--memory-mb", type=int, default=256, help="AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    parser.add_argument("--expect-authorized", choices=["true", "false"])
    args = parser.parse_args()
    with open(args.event, "rb") as f:
        event = f.read()

    runs = []
    for _ in range(args.runs):
        # A fresh runtime endpoint per process: a poll left parked by the stopped process
        # cannot take the next process's event.
        runtime = Runtime()
        server = QuietServer(("127.0.0.1", 0), make_handler(runtime))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            runs.append(one_run(runtime, f"127.0.0.1:{server.server_address[1]}", args, event))
        finally:
            server.shutdown()
            server.server_close()
    summary = {"runs": runs}
    for key in runs[0]:
        values = [run[key] for run in runs]
        summary[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    json.dump(summary, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
