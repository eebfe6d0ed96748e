#!/usr/bin/env python3
"""One node or a Redis Cluster, side by side: the write path (`threadweave bench`, two processes
of 32 writers over 256 threads) and `redis-benchmark` XADD (64 clients) against the Redis of
$TEST_REDIS_URL, with every node's CPU per command. Run it under with_redis.py and under
with_redis_cluster.py (which also sets TEST_REDIS_CLUSTER_PORTS); `make bench-cluster` runs both
and prints the two reports one after the other.

  scripts/with_redis_cluster.py scripts/bench_cluster.py --binary .build/release/threadweave --label "3 primaries"

AOF (everysec) is switched on for every node, so one node and the cluster write alike."""
import argparse
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from urllib.parse import urlparse

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from bench_hot_thread import run_processes  # noqa: E402
from resp import redis_call  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def node_cpu(pids):
    """User + system seconds of each Redis process so far."""
    total = 0.0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured(pids, run):
    """Runs `run()`; answers its result, the wall time, the children's CPU and Redis's CPU."""
    redis_before, children_before, started = node_cpu(pids), children_cpu(), time.monotonic()
    result = run()
    return result, time.monotonic() - started, children_cpu() - children_before, node_cpu(pids) - redis_before


def redis_benchmark(port, cluster, requests):
    # In cluster mode redis-benchmark puts each node's own hash tag in place of {tag}: one stream per primary.
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", "64", "-n", str(requests), "--csv",
            "XADD", "bench:{tag}", "MAXLEN", "~", "100000", "*", "field", "value"]
    if cluster:
        argv.insert(1, "--cluster")
    output = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    rows = [line for line in output.splitlines() if line and not line.startswith('"test"')]
    if not rows:
        sys.exit(f"redis-benchmark printed no result:\n{output}")
    return float(rows[-1].split(",")[1].strip('"'))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--label", required=True)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--writers", type=int, default=32, help="writers per process")
    parser.add_argument("--commands", type=int, default=200, help="commands per writer")
    parser.add_argument("--xadd-requests", type=int, default=200_000)
    args = parser.parse_args()
    url = os.environ["TEST_REDIS_URL"]
    cluster_ports = [int(port) for port in os.environ.get("TEST_REDIS_CLUSTER_PORTS", "").split(",") if port]
    ports = cluster_ports or [urlparse(url).port]
    pids, primaries = [], 0
    for port in ports:
        pids.append(int(next(line.split(":")[1] for line in redis_call(port, "INFO", "server", timeout=10.0).splitlines()
                             if line.startswith("process_id:"))))
        primaries += "role:master" in redis_call(port, "INFO", "replication", timeout=10.0)
        redis_call(port, "CONFIG", "SET", "appendonly", "yes", timeout=10.0)
        redis_call(port, "CONFIG", "SET", "appendfsync", "everysec", timeout=10.0)

    namespace = f"cluster{uuid.uuid4().hex[:6]}"
    (reports, _), wall, bench_cpu, redis_cpu = measured(
        pids, lambda: run_processes(args.binary, url, namespace, ["--threads", "256"], args.processes, args.writers,
                                    args.commands))
    succeeded = sum(report["succeeded"] for report in reports)
    xadd, xadd_wall, _, xadd_redis_cpu = measured(
        pids, lambda: redis_benchmark(ports[0], bool(cluster_ports), args.xadd_requests))
    result = {
        "label": args.label,
        "nodes": len(ports),
        "primaries": primaries,
        "commands": succeeded,
        "failed": sum(report["failed"] for report in reports),
        "commandsPerSecond": round(succeeded / wall),
        "p50Ms": max(report["latencyMs"]["p50"] for report in reports),
        "p99Ms": max(report["latencyMs"]["p99"] for report in reports),
        "benchCpuMicrosecondsPerCommand": round(bench_cpu / succeeded * 1e6),
        "redisCpuMicrosecondsPerCommand": round(redis_cpu / succeeded * 1e6),
        "xaddPerSecond": round(xadd),
        "xaddRedisCpuMicroseconds": round(xadd_redis_cpu / args.xadd_requests * 1e6, 1),
        "commandsPerXadd": round(succeeded / wall / xadd, 3),
    }
    print(f"{args.label}: {result['commandsPerSecond']:,} commands/s ({result['failed']} failed), "
          f"p50 {result['p50Ms']:.1f} ms, p99 {result['p99Ms']:.1f} ms; CPU per command: bench "
          f"{result['benchCpuMicrosecondsPerCommand']} µs, Redis (all {len(ports)} nodes) "
          f"{result['redisCpuMicrosecondsPerCommand']} µs; redis-benchmark XADD {result['xaddPerSecond']:,}/s "
          f"({result['xaddRedisCpuMicroseconds']} µs Redis CPU each); commands/XADD {result['commandsPerXadd']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
