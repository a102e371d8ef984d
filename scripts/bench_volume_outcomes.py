#!/usr/bin/env python3
"""POST /outcomes latency, measured client-side (scripts/bench-volume.sh runs it).

Reads prediction ids (one a line) from --ids, shuffles them (seed 7), cuts them into
--requests batches of --batch, and sends the batches one after the other over one keep-alive
connection (http.client) with Basic auth; times each request from send to the whole answer
read. --expect says what every item must be (`recorded` for ids never reported, `unchanged`
for ids already reported with the same outcome); anything else fails the run. Prints one JSON
object: requests, p50/p95/p99/max/mean in ms (nearest rank).
"""

import argparse
import base64
import http.client
import json
import math
import random
import sys
import time
import urllib.parse


def percentile(sorted_values, p):
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--ids", required=True)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--expect", choices=["recorded", "unchanged"], required=True)
    args = parser.parse_args()

    with open(args.ids) as f:
        ids = [line.strip() for line in f if line.strip()]
    need = args.requests * args.batch
    if len(ids) < need:
        sys.exit(f"bench_volume_outcomes: {len(ids)} ids, {need} needed")
    rng = random.Random(7)
    rng.shuffle(ids)
    # The same batches in both modes: the second run re-reports what the first recorded.
    batches = [ids[i * args.batch:(i + 1) * args.batch] for i in range(args.requests)]

    url = urllib.parse.urlsplit(args.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    token = base64.b64encode(f"{args.user}:{args.password}".encode()).decode()
    headers = {"authorization": f"Basic {token}", "content-type": "application/json"}

    # Warm-up: the one argon2 check, then the verified-credentials cache answers.
    connection.request("GET", "/hello", headers=headers)
    answer = connection.getresponse()
    answer.read()
    if answer.status != 200:
        sys.exit(f"bench_volume_outcomes: GET /hello answered {answer.status}")

    times_ms = []
    for n, batch in enumerate(batches):
        body = json.dumps({
            "outcomes": [
                # About 1 in 20 reported as fraud; the flag follows from the id, so a second
                # report of the same id is the same outcome.
                {"prediction_id": pid, "fraud": int(pid[-4:], 16) % 20 == 0}
                for pid in batch
            ]
        }).encode()
        began = time.perf_counter()
        connection.request("POST", "/outcomes", body=body, headers=headers)
        answer = connection.getresponse()
        payload = answer.read()
        times_ms.append((time.perf_counter() - began) * 1000)
        if answer.status != 200:
            sys.exit(f"bench_volume_outcomes: request {n} answered {answer.status}: {payload[:500]!r}")
        counts = json.loads(payload)["counts"]
        if counts.get(args.expect) != len(batch):
            sys.exit(f"bench_volume_outcomes: request {n}: expected {len(batch)} {args.expect}, got {counts}")
        if (n + 1) % 50 == 0:
            print(f"bench_volume_outcomes: {args.expect}: {n + 1}/{len(batches)} requests", file=sys.stderr)
    connection.close()

    times_ms.sort()
    print(json.dumps({
        "expect": args.expect,
        "requests": len(times_ms),
        "batch": args.batch,
        "p50_ms": round(percentile(times_ms, 50), 1),
        "p95_ms": round(percentile(times_ms, 95), 1),
        "p99_ms": round(percentile(times_ms, 99), 1),
        "max_ms": round(times_ms[-1], 1),
        "mean_ms": round(sum(times_ms) / len(times_ms), 1),
    }))


if __name__ == "__main__":
    main()
