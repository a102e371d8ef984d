"""Login flood against `fraudctl serve` (scripts/bench-login-flood.sh runs it).

CLIENTS tasks send wrong passwords for SECONDS, each request on a new connection from a
random loopback address in 127.1.0.0/16 and for a random user name, so neither failed-login
limit (per address, per user) holds them back: the worst case, a botnet. Meanwhile one valid
user (from 127.0.0.1) asks GET /hello every 20 ms. The server's resident memory is sampled
every 50 ms. Prints one JSON object.
"""

import argparse
import asyncio
import base64
import json
import os
import random
import statistics
import time


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def request(host, port, auth, source=None):
    """One GET /hello on a fresh connection; returns (status, seconds)."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(
        host, port, local_addr=(source, 0) if source else None
    )
    try:
        writer.write(
            f"GET /hello HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        await writer.drain()
        line = await reader.readline()
        await reader.read()
        status = int(line.split()[1]) if line else 0
    finally:
        writer.close()
    return status, time.perf_counter() - started


def basic(user, password):
    return base64.b64encode(f"{user}:{password}".encode()).decode()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--settle", type=float, default=10)
    args = parser.parse_args()
    host, port = args.url.split("//")[1].split(":")
    port = int(port)

    before = rss_mib(args.pid)
    # Warm the valid user's verified-credentials cache, as a returning client would have.
    valid = basic(args.user, args.password)
    status, _ = await request(host, port, valid)
    assert status == 200, status

    stop = time.monotonic() + args.seconds
    statuses = {}
    peak = before
    valid_latencies = []
    valid_statuses = {}

    async def attacker():
        while time.monotonic() < stop:
            source = f"127.1.{random.randrange(256)}.{random.randrange(1, 255)}"
            name = f"eve{random.randrange(1_000_000)}"
            try:
                status, _ = await request(host, port, basic(name, "wrong-password"), source)
            except OSError:
                status = "socket error"
            statuses[status] = statuses.get(status, 0) + 1

    async def valid_user():
        while time.monotonic() < stop:
            status, seconds = await request(host, port, valid)
            valid_statuses[status] = valid_statuses.get(status, 0) + 1
            valid_latencies.append(seconds * 1000)
            await asyncio.sleep(0.02)

    async def sampler():
        nonlocal peak
        while time.monotonic() < stop + 1:
            peak = max(peak, rss_mib(args.pid))
            await asyncio.sleep(0.05)

    await asyncio.gather(*(attacker() for _ in range(args.clients)), valid_user(), sampler())
    during_load = os.getloadavg()[0]
    await asyncio.sleep(args.settle)
    after = rss_mib(args.pid)
    quantiles = statistics.quantiles(valid_latencies, n=100)
    print(
        json.dumps(
            {
                "clients": args.clients,
                "seconds": args.seconds,
                "attack_answers": {str(k): v for k, v in sorted(statuses.items(), key=str)},
                "valid_answers": {str(k): v for k, v in valid_statuses.items()},
                "valid_p50_ms": round(statistics.median(valid_latencies), 1),
                "valid_p99_ms": round(quantiles[98], 1),
                "rss_before_mib": round(before, 1),
                "rss_peak_mib": round(peak, 1),
                "rss_after_mib": round(after, 1),
                "settle_seconds": args.settle,
                "load_average_1min_at_end_of_burst": round(during_load, 2),
            }
        )
    )


asyncio.run(main())
