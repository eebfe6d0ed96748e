#!/usr/bin/env python3
"""Many watchers: opens --watchers SSE streams (watch-thread) on one `threadweave serve`,
spread over --threads threads (each watcher its own member account), then posts rounds
of one message to every thread and measures, for every stream, the time from the post
being sent to the event arriving on that stream (p50 / p99 / max over all deliveries).
Reports Redis's `connected_clients` before the streams open and while they are open
(target: bounded by a small constant; delivery p99 <= 200 ms at 5,000 streams).

Starts its own redis-server (free loopback port) and serve. serve accepts at most 1,024
HTTP connections at once (RuntimeConfiguration.HTTP.maximumConnections, no flag yet), so
more than about 1,000 streams need that cap raised first. Raises the open-files
limit to its hard limit; where that is too low for the streams asked for, opens as
many as it allows and says so.

  scripts/bench_watchers.py --binary .build/release/threadweave [--watchers 5000 --threads 100 --rounds 5]
"""
import argparse
import json
import resource
import selectors
import socket
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_http import request, start_serve, stop_serve  # noqa: E402
from local_redis import LocalRedis  # noqa: E402
from resp import Resp  # noqa: E402

# Sockets each stream costs this process and serve (one each), and what both keep for themselves.
SPARE_FILES = 256


def account_id():
    return "01J" + uuid.uuid4().hex[:23].upper()  # hex digits are all Crockford base32: a valid ULID


def connected_clients(port):
    with Resp(port) as redis:
        info = redis.call("INFO", "clients")
    return int(next(line for line in info.splitlines() if line.startswith("connected_clients:")).split(":")[1])


def percentile(samples, fraction):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Streams:
    """The SSE client side: every stream on one epoll loop (a thread of its own), which
    stamps each `id:` line with the time it arrived."""

    def __init__(self):
        self.selector = selectors.DefaultSelector()
        self.lock = threading.Lock()
        self.status = {}      # stream index -> HTTP status
        self.arrivals = {}    # (stream index, version) -> monotonic time
        self.ended = set()
        self.buffers = {}
        self.running = True
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def open(self, index, port, path):
        connection = socket.create_connection(("127.0.0.1", port))
        connection.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n".encode())
        connection.setblocking(False)
        self.buffers[index] = b""
        self.selector.register(connection, selectors.EVENT_READ, index)

    def loop(self):
        while self.running:
            for key, _ in self.selector.select(timeout=0.2):
                index = key.data
                try:
                    data = key.fileobj.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                now = time.monotonic()
                if not data:
                    self.selector.unregister(key.fileobj)
                    key.fileobj.close()
                    with self.lock:
                        self.ended.add(index)
                    continue
                buffer = self.buffers[index] + data
                lines = buffer.split(b"\n")
                self.buffers[index] = lines.pop()
                with self.lock:
                    for line in lines:
                        if line.startswith(b"id: "):
                            self.arrivals[(index, int(line[4:]))] = now
                        elif line.startswith(b"HTTP/1.1 "):
                            self.status[index] = int(line.split()[1])

    def close(self):
        self.running = False
        if self.thread.is_alive():
            self.thread.join(5)
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--watchers", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--log-level", default="error")
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # serve inherits it
    watchers = min(args.watchers, hard - SPARE_FILES)
    if watchers < args.watchers:
        print(f"the open-files limit ({hard}) allows {watchers} streams, not {args.watchers}")
    per_thread = -(-watchers // args.threads)

    workdir = Path(tempfile.mkdtemp(prefix="threadweave-bench-watchers."))
    redis = LocalRedis(args.binary, workdir / "redis", ["--maxclients", str(hard - SPARE_FILES)]).start()
    serve = None
    streams = Streams()
    try:
        serve, port = start_serve(args.binary, workdir, redis.url, args.log_level)
        creator = account_id()
        threads = []  # (thread id, [member accounts])
        for index in range(args.threads):
            members = [account_id() for _ in range(per_thread)]
            status, body = request(port, "POST", "/v1/threads/create",
                                   {"accountId": creator, "title": f"watched {index}", "memberIds": members})
            if status != 201:
                sys.exit(f"create-thread answered {status}: {body[:200]!r}")
            threads.append((json.loads(body)["threadId"], members))
        clients_before = connected_clients(redis.port)

        opening = time.monotonic()
        stream_thread = []
        for index in range(watchers):
            thread, members = threads[index % args.threads]
            streams.open(index, port, f"/v1/threads/{thread}/events?accountId={members[index // args.threads]}")
            stream_thread.append(thread)
        streams.thread.start()
        deadline = time.monotonic() + 60
        while len(streams.status) < watchers and time.monotonic() < deadline:
            time.sleep(0.05)
        opened_in = time.monotonic() - opening
        refused = {status: sum(1 for s in streams.status.values() if s == status) for status in set(streams.status.values())}
        if refused.get(200, 0) < watchers:
            sys.exit(f"streams answered {refused} of {watchers} (some did not answer in 60 s)")
        time.sleep(1)  # every subscription settled in its lane
        clients_open = connected_clients(redis.port)

        samples = []
        version = 1
        for _ in range(args.rounds):
            version += 1
            sent = {}
            for thread, _ in threads:
                sent[thread] = time.monotonic()
                status, body = request(port, "POST", f"/v1/threads/{thread}/messages/add",
                                       {"accountId": creator, "messages": [{"text": f"round {version}"}]})
                if status != 200:
                    sys.exit(f"add-messages answered {status}: {body[:200]!r}")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with streams.lock:
                    arrived = sum(1 for index in range(watchers) if (index, version) in streams.arrivals)
                if arrived == watchers:
                    break
                time.sleep(0.02)
            with streams.lock:
                missing = [index for index in range(watchers) if (index, version) not in streams.arrivals]
                samples += [(streams.arrivals[(index, version)] - sent[stream_thread[index]]) * 1000
                            for index in range(watchers) if (index, version) in streams.arrivals]
            if missing:
                sys.exit(f"round {version}: {len(missing)} of {watchers} streams got nothing within 10 s")
            time.sleep(0.5)

        report = {
            "watchers": watchers, "threads": args.threads, "rounds": args.rounds, "deliveries": len(samples),
            "openedInSeconds": round(opened_in, 2),
            "redisConnectedClients": {"beforeStreams": clients_before, "withStreamsOpen": clients_open},
            "deliveryMs": {"p50": round(percentile(samples, 0.50), 1), "p99": round(percentile(samples, 0.99), 1),
                           "max": round(max(samples), 1)},
        }
        print(f"{watchers} streams over {args.threads} threads opened in {opened_in:.1f} s; "
              f"Redis clients {clients_before} before, {clients_open} with the streams open")
        print(f"delivery (post sent -> event on the stream), {len(samples)} deliveries: "
              f"p50 {report['deliveryMs']['p50']} ms, p99 {report['deliveryMs']['p99']} ms, max {report['deliveryMs']['max']} ms "
              f"(target p99 <= 200 ms)")
        print(json.dumps(report))
    finally:
        streams.close()
        stop_serve(serve)
        redis.stop()


if __name__ == "__main__":
    main()
