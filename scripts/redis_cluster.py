"""A private Redis Cluster for the project's scripts (with_redis_cluster.py, bench_cluster.py):
six `threadweave redis-server` children (three primaries, three replicas; scripts/local_redis.py)
on free loopback ports, each with its own data directory, joined by `redis-cli --cluster create`,
ready once every node reports `cluster_state:ok` and agrees on the slot map; stopped only by the
pids started here."""

import subprocess
from pathlib import Path

from helpers import free_port, wait_until
from local_redis import LocalRedis
from resp import redis_call

READY_TIMEOUT = 30.0
START_ATTEMPTS = 20
# The cluster bus listens on port + 10000, so a node's port must leave room for it.
HIGHEST_PORT = 65535 - 10000


class RedisCluster:
    def __init__(self, directory, primaries=3, replicas_per_primary=1, node_timeout_ms=1000, binary=None, arguments=()):
        """`arguments`: more `redis-server` options, for every node."""
        self.directory = Path(directory)
        self.replicas_per_primary = replicas_per_primary
        # A low node timeout: a killed primary's replica takes over within a few seconds.
        arguments = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                     "--cluster-node-timeout", str(node_timeout_ms), "--appendonly", "yes"] + list(arguments)
        self.servers = [LocalRedis(binary, self.directory / f"node{index}", arguments)
                        for index in range(primaries * (1 + replicas_per_primary))]

    @property
    def ports(self):
        return [server.port for server in self.servers]

    @property
    def url(self):
        return self.servers[0].url

    def start(self):
        for server in self.servers:
            self._start_node(server)
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        subprocess.run(["redis-cli", "--cluster", "create", *nodes, "--cluster-replicas",
                        str(self.replicas_per_primary), "--cluster-yes"],
                       check=True, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        if not wait_until(self.is_ready, READY_TIMEOUT, interval=0.1):
            raise RuntimeError(f"the Redis Cluster did not become ready; see {self.directory}/node*/redis.log")
        return self

    def _start_node(self, server):
        """A free port with room for its bus port; another one if it was taken meanwhile."""
        taken = set(port for port in self.ports if port)
        for _ in range(START_ATTEMPTS):
            port = free_port(taken)
            if port > HIGHEST_PORT:
                continue
            try:
                return server.start(port)
            except RuntimeError:
                taken.add(port)
        raise RuntimeError(f"no redis-server of the cluster started in {server.directory}")

    def is_ready(self):
        """Every node says cluster_state:ok and knows every node, and every replica is attached."""
        try:
            for port in self.ports:
                info = redis_call(port, "CLUSTER", "INFO", timeout=1)
                if "cluster_state:ok" not in info or f"cluster_known_nodes:{len(self.servers)}" not in info:
                    return False
            replicas = sum(1 for port in self.ports if "role:slave" in redis_call(port, "INFO", "replication", timeout=1)
                           and "master_link_status:up" in redis_call(port, "INFO", "replication", timeout=1))
            return replicas == len(self.servers) - len(self.servers) // (1 + self.replicas_per_primary)
        except Exception:  # noqa: BLE001 - a node still starting answers nothing or an error
            return False

    def stop(self):
        for server in self.servers:
            server.stop()
