#!/usr/bin/env python3
"""Runs a command next to a throwaway Redis Cluster (`make test-cluster`):

    with_redis_cluster.py CMD [ARG...]

Six redis-server children (three primaries, three replicas, `cluster-node-timeout` 1000 ms) on
free loopback ports, each with its own data directory. The command sees one node as
TEST_REDIS_URL, TEST_REDIS_CLUSTER=1 and every node's port in TEST_REDIS_CLUSTER_PORTS
(comma-separated). Afterwards the servers are stopped by their pids and the directory
removed; the exit status is the command's."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from redis_cluster import RedisCluster  # noqa: E402


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda number, _frame: sys.exit(128 + number))
    directory = tempfile.mkdtemp(prefix="threadweave-redis-cluster.")
    cluster = RedisCluster(directory)
    try:
        cluster.start()
        pids = ", ".join(str(server.pid) for server in cluster.servers)
        print(f"with-redis-cluster: redis-server pids {pids} on 127.0.0.1 ports {cluster.ports} (data in {directory})",
              file=sys.stderr, flush=True)
        environment = dict(os.environ, TEST_REDIS_URL=cluster.url, TEST_REDIS_CLUSTER="1",
                           TEST_REDIS_CLUSTER_PORTS=",".join(map(str, cluster.ports)))
        status = subprocess.run(sys.argv[1:], env=environment).returncode
    finally:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    sys.exit(main())
