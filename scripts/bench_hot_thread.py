#!/usr/bin/env python3
"""Hot thread: the same writers, from two processes, spread over 256 threads
and then all on one thread. Prints each run's throughput, p99, retries and
failed commands, and the hot/spread throughput ratio (target: >= 70%, 0 failed,
p99 <= 50 ms). Uses the Redis of $TEST_REDIS_URL (run it under with_redis.py).

  scripts/with_redis.py scripts/bench_hot_thread.py --binary .build/release/threadweave
"""
import argparse
import json
import os
import subprocess
import sys
import time
import uuid

ADMIN = "01J0000000000000000000ADMN"


def run_processes(binary, url, namespace, extra, processes, writers, commands):
    """Starts `processes` bench processes at once; answers their reports and the wall time."""
    argv = [binary, "bench", "--redis-url", url, "--namespace", namespace, "--writers", str(writers),
            "--commands", str(commands), "--json", "--log-level", "error"] + extra
    started = time.monotonic()
    children = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(processes)]
    reports = []
    for child in children:
        output, _ = child.communicate()
        if child.returncode != 0:
            sys.exit(f"bench exited with {child.returncode}")
        reports.append(json.loads(output.strip().splitlines()[-1]))
    return reports, time.monotonic() - started


def summary(name, reports, wall):
    succeeded = sum(r["succeeded"] for r in reports)
    return {
        "scenario": name,
        "processes": len(reports),
        "writers": sum(r["writers"] for r in reports),
        "succeeded": succeeded,
        "failed": sum(r["failed"] for r in reports),
        "retries": sum(r["retries"] for r in reports),
        "throughputPerSecond": succeeded / wall,
        "p99Ms": max(r["latencyMs"]["p99"] for r in reports),
        "maxMs": max(r["latencyMs"]["max"] for r in reports),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--writers", type=int, default=32, help="writers per process")
    parser.add_argument("--commands", type=int, default=400, help="commands per writer (enough that a writer starved by the other process shows)")
    args = parser.parse_args()
    url = os.environ["TEST_REDIS_URL"]

    spread, spread_wall = run_processes(args.binary, url, f"spread{uuid.uuid4().hex[:6]}", ["--threads", "256"],
                                        args.processes, args.writers, args.commands)
    thread = "01J" + uuid.uuid4().hex[:23].upper()  # hex digits are all Crockford base32: a valid ULID
    hot, hot_wall = run_processes(args.binary, url, f"hot{uuid.uuid4().hex[:6]}", ["--thread", thread, "--admin", ADMIN],
                                  args.processes, args.writers, args.commands)
    rows = [summary("spread over 256 threads", spread, spread_wall), summary("all on one thread", hot, hot_wall)]
    print(f"{'scenario':<26} {'writers':>7} {'ok':>6} {'failed':>6} {'retries':>7} {'cmd/s':>7} {'p99 ms':>7} {'max ms':>7}")
    for row in rows:
        print(f"{row['scenario']:<26} {row['writers']:>7} {row['succeeded']:>6} {row['failed']:>6} {row['retries']:>7} "
              f"{row['throughputPerSecond']:>7.0f} {row['p99Ms']:>7.1f} {row['maxMs']:>7.1f}")
    ratio = rows[1]["throughputPerSecond"] / rows[0]["throughputPerSecond"]
    print(f"hot/spread throughput: {ratio:.0%} (target >= 70%, 0 failed, p99 <= 50 ms)")
    print(json.dumps({"runs": rows, "hotOverSpread": ratio}))


if __name__ == "__main__":
    main()
