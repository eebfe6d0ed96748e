#!/usr/bin/env python3
"""Soak test (`make soak`): half of peak load for 10 minutes, resources over time.

    soak.py [--duration 600] [--interval 10] [--load-factor 0.5] [--rate R] [--csv F] [--png F]

Topology (all private, every port free at run time): a redis-server on a
loopback port with its own data directory in a mktemp dir (AOF everysec),
`threadweave setup`, one `threadweave function <name>` process each for
create-thread, add-messages, get-thread and watch-thread, and one
`threadweave worker` (its /healthz on a port of its own). Like the
Kubernetes `reclaim` CronJob, `threadweave reclaim` runs every
--reclaim-every seconds (default 300; 0 = never), so the change logs are
trimmed as in production.

Load (stdlib only): --threads threads, one creator (administrator) each;
~80 % `POST /v1/threads/{id}/messages/add` and ~20 %
`GET /v1/threads/{id}?accountId=`, plus --watchers open
`GET /v1/threads/{id}/events` streams. First a closed-loop burst
(--peak-seconds, --peak-clients) measures peak requests/s; then an open-loop
scheduler issues requests at fixed intervals at --load-factor of that rate,
and each latency is measured from the request's *intended* send time, so a
stall shows up in the tail instead of silently slowing the schedule
(coordinated omission).

Every --interval seconds one CSV row: elapsed_s, requests, errors, p50_ms,
p99_ms, the VmRSS (MiB) of every process, Redis used_memory (MiB), pending
entries of group rmu summed over every <ns>:{pNN}:log, and the summed XLEN
of those logs (then max_ms, lag, watch_events). A PNG plot if matplotlib is
installed (`python3 -m pip install matplotlib`).

Verdict: "flat" when, for every threadweave process's RSS, the mean of the
last third of the run is less than --growth-threshold (10 %) above the mean
of the middle third; for redis-server's RSS and used_memory the same holds
for their bytes per event appended (Redis keeps every message, so its memory
grows with the data by design; its cost per event must not); and pending
shows no upward trend. Otherwise "growing" with the numbers. Exit status 1 on "growing", 2 on more than
--max-error-rate (1 %) errors, 3 when the set-up fails.

Environment: THREADWEAVE_BIN (default: the release build's
`swift build -c release --static-swift-stdlib --show-bin-path`), LOG_LEVEL
(default error for the children).
"""

import argparse
import csv
import http.client
import json
import math
import os
import queue
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers import memory_mib  # noqa: E402
from local_cluster import Children, function_ready, stop_processes, worker_ready  # noqa: E402
from resp import Resp, consumer_group_backlog  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ["create-thread", "add-messages", "get-thread", "watch-thread"]
GROUP = "rmu"


class Interrupted(Exception):
    pass


def info_field(text, field):
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    return None


# ---------------------------------------------------------------- processes


class Topology(Children):
    def __init__(self, binary, directory, log_level):
        super().__init__(directory / "logs", dict(os.environ, LOG_LEVEL=log_level))
        self.binary = binary
        self.directory = directory
        self.redis_port = None

    def start(self, namespace, workers):
        self.logs.mkdir(parents=True, exist_ok=True)
        redis = self.start_redis(self.binary, self.directory / "redis",
                                 ["--appendonly", "yes", "--appendfsync", "everysec"])
        self.redis_port = redis["port"]
        self.common = ["--redis-url", f"redis://127.0.0.1:{self.redis_port}", "--namespace", namespace]
        setup = subprocess.run([self.binary, "setup"] + self.common, capture_output=True, text=True, cwd=ROOT,
                               env=self.environment)
        if setup.returncode != 0:
            raise RuntimeError(f"threadweave setup failed:\n{setup.stdout}{setup.stderr}")
        for index in range(workers):
            self.start_with_retries(
                "worker", f"worker-{index}",
                lambda port, i=index: [self.binary, "worker", "--consumer", f"soak-worker-{i}", "--host", "127.0.0.1",
                                       "--port", str(port)] + self.common,
                self.binary, worker_ready)
        for name in FUNCTIONS:
            self.start_with_retries(
                "function", name,
                lambda port, n=name: [self.binary, "function", n, "--host", "127.0.0.1", "--port", str(port), "--auth", "none"]
                + self.common,
                self.binary, function_ready)

    def port(self, name):
        return next(c["port"] for c in self.children if c["name"] == name)

    def measured(self):
        """(label, pid) of every long-running process, in a stable order: Redis's own, not its launcher's."""
        return [(c["name"], c.get("redisPid", c["pid"])) for c in self.children]

    def dead(self):
        return [c for c in self.children if self.popens[c["pid"]].poll() is not None]

    def reclaim(self):
        run = subprocess.run([self.binary, "reclaim"] + self.common, capture_output=True, text=True, cwd=ROOT,
                             env=self.environment, timeout=120)
        return run.returncode, (run.stdout + run.stderr).strip().splitlines()[-1:] or [""]

    def stop(self):
        return stop_processes(self.children, self.popens)


# ---------------------------------------------------------------- load


def account(index, role):
    """A valid ULID (Crockford base32, no I L O U) per (thread, role)."""
    return f"01HZ5AAK{role}{index:017d}"


class Workload:
    def __init__(self, topology, thread_count, message_bytes, seed):
        self.ports = {name: topology.port(name) for name in FUNCTIONS}
        self.random = random.Random(seed)
        self.message_bytes = message_bytes
        self.threads = []  # (threadId, creator)
        self.thread_count = thread_count

    def create_threads(self):
        connection = http.client.HTTPConnection("127.0.0.1", self.ports["create-thread"], timeout=30)
        for index in range(self.thread_count):
            creator = account(index, "A")
            body = json.dumps({"accountId": creator, "title": f"soak thread {index}",
                               "memberIds": [account(index, "B")]})
            connection.request("POST", "/v1/threads/create", body=body, headers={"Content-Type": "application/json"})
            answer = connection.getresponse()
            payload = answer.read()
            if answer.status != 201:
                raise RuntimeError(f"create-thread answered {answer.status}: {payload[:300]!r}")
            self.threads.append((json.loads(payload)["threadId"], creator))
        connection.close()

    def next_request(self, chooser):
        """(function, method, path, body) of one request: 80 % add-messages, 20 % get-thread."""
        thread_id, creator = chooser.choice(self.threads)
        if chooser.random() < 0.8:
            text = "soak " + "".join(chooser.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(self.message_bytes))
            body = json.dumps({"accountId": creator, "messages": [{"text": text.strip() or "soak"}]})
            return "add-messages", "POST", f"/v1/threads/{thread_id}/messages/add", body
        return "get-thread", "GET", f"/v1/threads/{thread_id}?accountId={creator}", None


class Client:
    """One keep-alive connection per function, reopened after any failure."""

    def __init__(self, ports):
        self.ports = ports
        self.connections = {}

    def send(self, function, method, path, body):
        connection = self.connections.get(function)
        if connection is None:
            connection = http.client.HTTPConnection("127.0.0.1", self.ports[function], timeout=30)
            self.connections[function] = connection
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            connection.request(method, path, body=body, headers=headers)
            answer = connection.getresponse()
            payload = answer.read()
            if answer.status >= 300:
                return f"{answer.status} {payload[:200].decode(errors='replace')}"
            return None
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            self.connections.pop(function, None)
            return f"{type(error).__name__}: {error}"

    def close(self):
        for connection in self.connections.values():
            connection.close()


class Recorder:
    """Latencies and errors of the current interval (thread-safe)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latencies = []
        self.errors = 0
        self.error_samples = {}
        self.total = 0
        self.total_errors = 0
        self.writes = 0  # successful add-messages: one event each

    def record(self, latency, error, function=None):
        with self.lock:
            self.latencies.append(latency)
            self.total += 1
            if function == "add-messages" and not error:
                self.writes += 1
            if error:
                self.errors += 1
                self.total_errors += 1
                key = error[:60]
                self.error_samples[key] = self.error_samples.get(key, 0) + 1

    def drain(self):
        with self.lock:
            latencies, errors, writes = self.latencies, self.errors, self.writes
            self.latencies, self.errors = [], 0
        return latencies, errors, writes


def percentile(sorted_values, fraction):
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, math.ceil(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def closed_loop(workload, clients, seconds, recorder):
    """Each client sends its next request as soon as the previous one answered."""
    stop_at = time.monotonic() + seconds

    def run(seed):
        chooser = random.Random(seed)
        client = Client(workload.ports)
        while time.monotonic() < stop_at:
            request = workload.next_request(chooser)
            started = time.monotonic()
            error = client.send(*request)
            recorder.record(time.monotonic() - started, error)
        client.close()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started


class OpenLoop:
    """A scheduler issues request k at start + k / rate; a pool of senders takes them in order.
    Latency runs from the intended send time, so queueing behind a stall counts."""

    def __init__(self, workload, rate, senders, recorder):
        self.workload = workload
        self.rate = rate
        self.recorder = recorder
        self.queue = queue.Queue()
        self.stopping = threading.Event()
        self.scheduled = 0
        self.senders = [threading.Thread(target=self.send_loop, args=(i,), daemon=True) for i in range(senders)]
        self.scheduler = threading.Thread(target=self.schedule, daemon=True)

    def start(self):
        for sender in self.senders:
            sender.start()
        self.scheduler.start()

    def schedule(self):
        chooser = random.Random(1)
        start = time.monotonic()
        while not self.stopping.is_set():
            intended = start + self.scheduled / self.rate
            delay = intended - time.monotonic()
            if delay > 0:
                time.sleep(min(delay, 0.05))
                continue
            self.queue.put((intended, self.workload.next_request(chooser)))
            self.scheduled += 1

    def send_loop(self, index):
        client = Client(self.workload.ports)
        while True:
            item = self.queue.get()
            if item is None:
                break
            intended, request = item
            error = client.send(*request)
            self.recorder.record(time.monotonic() - intended, error, request[0])
        client.close()

    def stop(self):
        self.stopping.set()
        self.scheduler.join()
        backlog = self.queue.qsize()
        for _ in self.senders:
            self.queue.put(None)
        for sender in self.senders:
            sender.join(timeout=60)
        return backlog


class Watchers:
    """Open server-sent-event streams; counts events, reconnects with Last-Event-ID."""

    def __init__(self, workload, count):
        self.workload = workload
        self.count = count
        self.events = 0
        self.reconnects = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.connections = []
        self.threads = [threading.Thread(target=self.watch, args=(i,), daemon=True) for i in range(count)]

    def start(self):
        for thread in self.threads:
            thread.start()

    def watch(self, index):
        thread_id, creator = self.workload.threads[index % len(self.workload.threads)]
        last_event_id = None
        while not self.stopping.is_set():
            connection = http.client.HTTPConnection("127.0.0.1", self.workload.ports["watch-thread"], timeout=60)
            with self.lock:
                self.connections.append(connection)
            try:
                headers = {"Accept": "text/event-stream"}
                if last_event_id:
                    headers["Last-Event-ID"] = last_event_id
                connection.request("GET", f"/v1/threads/{thread_id}/events?accountId={creator}", headers=headers)
                answer = connection.getresponse()
                if answer.status != 200:
                    answer.read()
                    raise OSError(f"watch answered {answer.status}")
                while not self.stopping.is_set():
                    line = answer.fp.readline()
                    if not line:
                        break
                    if line.startswith(b"id:"):
                        last_event_id = line[3:].strip().decode()
                        with self.lock:
                            self.events += 1
            except (OSError, http.client.HTTPException, ValueError, AttributeError):
                pass
            finally:
                connection.close()
            if not self.stopping.is_set():
                with self.lock:
                    self.reconnects += 1
                time.sleep(1)

    def take_events(self):
        with self.lock:
            events, self.events = self.events, 0
        return events

    def stop(self):
        self.stopping.set()
        with self.lock:
            for connection in self.connections:
                try:
                    connection.sock and connection.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for thread in self.threads:
            thread.join(timeout=5)


# ---------------------------------------------------------------- sampling


class Sampler:
    def __init__(self, topology, namespace):
        self.topology = topology
        self.redis = Resp(topology.redis_port, timeout=10)
        partitions = int(self.redis.call("HGET", f"{namespace}:config", "partitions"))
        self.logs = [f"{namespace}:{{p{p:02d}}}:log" for p in range(partitions)]

    def aof_rewrites(self):
        """(background AOF rewrites started so far, 1 if one runs now)."""
        text = self.redis.call("INFO", "persistence")
        return int(info_field(text, "aof_rewrites") or 0), int(info_field(text, "aof_rewrite_in_progress") or 0)

    def redis_figures(self):
        """Redis's used memory (MiB), group rmu's pending entries, the change logs' length, and the
        entries not yet delivered to the group (its lag)."""
        used = int(info_field(self.redis.call("INFO", "memory"), "used_memory")) / 1048576.0
        length = sum(reply for reply in self.redis.pipeline([("XLEN", log) for log in self.logs]) if isinstance(reply, int))
        pending, lag = consumer_group_backlog(self.redis, self.logs, GROUP)
        return used, pending, length, lag


def key_classes(redis):
    """Redis memory by key class (ids and partition tags folded): [(class, keys, bytes)], biggest first."""
    import re
    fold = [(re.compile(r"\{p\d+\}"), "{pNN}"), (re.compile(r"\{acct:[^}]*\}"), "{acct:<id>}"),
            (re.compile(r"[0-9A-HJKMNP-TV-Z]{26}"), "<id>")]
    classes, cursor = {}, "0"
    while True:
        cursor, keys = redis.call("SCAN", cursor, "COUNT", 1000)
        sizes = redis.pipeline([("MEMORY", "USAGE", key) for key in keys])
        for key, size in zip(keys, sizes):
            for pattern, replacement in fold:
                key = pattern.sub(replacement, key)
            count, total = classes.get(key, (0, 0))
            classes[key] = (count + 1, total + (size if isinstance(size, int) else 0))
        if cursor == "0":
            break
    return sorted(((k, c, b) for k, (c, b) in classes.items()), key=lambda item: -item[2])


# ---------------------------------------------------------------- verdict and output


def thirds(rows, key):
    values = [row[key] for row in rows if not math.isnan(row[key])]
    third = len(values) // 3
    if third == 0:
        return None, None
    return statistics.fmean(values[third:2 * third]), statistics.fmean(values[2 * third:])


# Redis keeps every message a user writes (chat history is kept for good), so its memory grows
# with the data by design; what must stay flat is what it costs per event written.
DATA_KEYS = ("rss_redis_mib", "redis_used_memory_mib")


def add_bytes_per_event(rows):
    """Adds `<key>_per_event` (bytes per event appended so far) for the Redis memory columns."""
    appended = 0
    for row in rows:
        appended += row.get("events_appended", 0) or 0
        for key in DATA_KEYS:
            if key in row:
                row[key.replace("_mib", "_bytes_per_event")] = row[key] * 1048576 / appended if appended else float("nan")


def verdict(rows, memory_keys, threshold):
    """(flat?, findings, table): growth of the last third over the middle third; for Redis's
    memory, growth of its bytes per event appended."""
    findings, table = [], []
    add_bytes_per_event(rows)
    judged = [key.replace("_mib", "_bytes_per_event") if key in DATA_KEYS else key for key in memory_keys]
    for key in list(dict.fromkeys(memory_keys + judged)) + ["pending", "log_length"]:
        if key not in rows[0]:
            continue
        middle, last = thirds(rows, key)
        if middle is None:
            continue
        growth = (last - middle) / middle if middle else (0.0 if last == 0 else float("inf"))
        table.append((key, rows[0][key], middle, last, rows[-1][key], growth))
        if key in judged and growth >= threshold:
            unit = "B/event" if key.endswith("_per_event") else "MiB"
            findings.append(f"{key}: {middle:.1f} -> {last:.1f} {unit} (+{growth * 100:.1f} %, threshold "
                            f"{threshold * 100:.0f} %)")
        if key == "pending":
            # Bounded: the last third may not climb well past the middle third (small absolute slack:
            # a handful of in-flight entries per read is normal).
            slack = 200
            values = [row["pending"] for row in rows]
            third = len(values) // 3
            late = values[2 * third:]
            rising = len(late) > 2 and all(b >= a for a, b in zip(late, late[1:])) and late[-1] > late[0] + slack
            if last > middle * 1.5 + slack or rising:
                findings.append(f"pending: mean {middle:.0f} -> {last:.0f} (last third {late[0]} -> {late[-1]}): "
                                f"the workers fall behind")
    return not findings, findings, table


def write_csv(path, rows, columns):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as output:
        writer = csv.DictWriter(output, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.2f}" if isinstance(v, float) else v) for k, v in row.items()})


def write_png(path, rows, rss_keys, title):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("no plot: matplotlib is missing (python3 -m pip install matplotlib); the CSV has every figure",
              file=sys.stderr)
        return False
    x = [row["elapsed_s"] for row in rows]
    figure, axes = plt.subplots(4, 1, figsize=(10, 12), sharex=True)
    axes[0].plot(x, [r["p50_ms"] for r in rows], label="p50")
    axes[0].plot(x, [r["p99_ms"] for r in rows], label="p99")
    axes[0].set_ylabel("latency (ms, from intended send)")
    axes[0].set_yscale("log")
    axis = axes[0].twinx()
    axis.plot(x, [r["requests"] / r["interval_s"] for r in rows], color="grey", alpha=0.4, label="req/s")
    axis.set_ylabel("req/s", color="grey")
    axis.set_ylim(bottom=0)
    axes[0].legend(loc="upper left")
    for key in rss_keys:
        axes[1].plot(x, [r[key] for r in rows], label=key.replace("rss_", "").replace("_mib", ""))
    axes[1].set_ylabel("RSS (MiB)")
    axes[1].legend(loc="upper left", fontsize="small", ncol=3)
    axes[2].plot(x, [r["redis_used_memory_mib"] for r in rows], color="tab:red")
    axes[2].set_ylabel("Redis used_memory (MiB)")
    axes[3].plot(x, [r["pending"] for r in rows], label="pending (XPENDING, summed)")
    axes[3].plot(x, [r["lag"] for r in rows], label="group lag (summed)")
    axes[3].set_ylabel("entries")
    axis = axes[3].twinx()
    axis.plot(x, [r["log_length"] for r in rows], color="tab:green", alpha=0.6, label="change-log length (XLEN)")
    axis.set_ylabel("change-log length", color="tab:green")
    axes[3].legend(loc="upper left")
    axes[3].set_xlabel("elapsed (s)")
    figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    return True


def default_binary():
    if os.environ.get("THREADWEAVE_BIN"):
        return os.environ["THREADWEAVE_BIN"]
    path = subprocess.run(["swift", "build", "-c", "release", "--static-swift-stdlib", "--show-bin-path"],
                          capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()
    return str(Path(path) / "threadweave")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600, help="seconds of open-loop load (default 600)")
    parser.add_argument("--interval", type=float, default=10, help="seconds per CSV row (default 10)")
    parser.add_argument("--peak-seconds", type=float, default=15, help="closed-loop burst length (default 15)")
    parser.add_argument("--peak-clients", type=int, default=16, help="closed-loop clients (default 16)")
    parser.add_argument("--load-factor", type=float, default=0.5, help="fraction of peak to drive (default 0.5)")
    parser.add_argument("--rate", type=float, help="requests/s to drive (skips the peak burst)")
    parser.add_argument("--senders", type=int, default=32, help="open-loop sender threads (default 32)")
    parser.add_argument("--threads", type=int, default=64, help="chat threads (default 64)")
    parser.add_argument("--watchers", type=int, default=4, help="open watch streams (default 4)")
    parser.add_argument("--workers", type=int, default=1, help="read-model worker processes (default 1)")
    parser.add_argument("--message-bytes", type=int, default=120, help="message text length (default 120)")
    parser.add_argument("--reclaim-every", type=float, default=300,
                        help="seconds between `threadweave reclaim` runs, as the CronJob (default 300; 0 = never)")
    parser.add_argument("--namespace", default="tw")
    parser.add_argument("--growth-threshold", type=float, default=0.10, help="default 0.10 (10 %%)")
    parser.add_argument("--max-error-rate", type=float, default=0.01, help="default 0.01 (1 %%)")
    parser.add_argument("--csv", type=Path, default=ROOT / "docs" / "soak.csv")
    parser.add_argument("--png", type=Path, default=ROOT / "docs" / "soak.png")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, Redis data)")
    arguments = parser.parse_args()

    binary = default_binary()
    if not os.access(binary, os.X_OK):
        sys.exit(f"no threadweave binary at {binary}: `make release` or set THREADWEAVE_BIN")

    def interrupt(signum, _frame):
        raise Interrupted(signal.Signals(signum).name)

    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)

    directory = Path(tempfile.mkdtemp(prefix="threadweave-soak."))
    topology = Topology(binary, directory, os.environ.get("LOG_LEVEL", "error"))
    status, keep = 0, arguments.keep
    try:
        status = run(arguments, binary, topology)
    except Interrupted as name:
        print(f"\n{name}: stopping", file=sys.stderr)
        status, keep = 130, True
    except Exception as error:  # the processes are stopped below either way
        print(f"soak: {type(error).__name__}: {error}", file=sys.stderr)
        status, keep = 3, True
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        survivors = topology.stop()
        if survivors:
            print(f"soak: could not stop pids {[s['pid'] for s in survivors]}", file=sys.stderr)
        if keep:
            print(f"soak: logs and Redis data kept in {directory}", file=sys.stderr)
        else:
            shutil.rmtree(directory, ignore_errors=True)
    sys.exit(status)


def run(arguments, binary, topology):
    topology.start(arguments.namespace, arguments.workers)
    print(f"soak: {binary}", flush=True)
    for entry in topology.children:
        print(f"  {entry['role']:<9} {entry['name']:<14} pid {entry['pid']:>7}  port {entry['port']}", flush=True)
    workload = Workload(topology, arguments.threads, arguments.message_bytes, seed=7)
    workload.create_threads()
    sampler = Sampler(topology, arguments.namespace)

    if arguments.rate:
        peak, rate = None, arguments.rate
    else:
        recorder = Recorder()
        seconds = closed_loop(workload, arguments.peak_clients, arguments.peak_seconds, recorder)
        latencies, errors, _ = recorder.drain()
        peak = len(latencies) / seconds
        latencies.sort()
        rate = peak * arguments.load_factor
        print(f"peak: {len(latencies)} requests in {seconds:.1f} s with {arguments.peak_clients} clients = "
              f"{peak:.0f} req/s (p50 {percentile(latencies, .5) * 1000:.1f} ms, p99 "
              f"{percentile(latencies, .99) * 1000:.1f} ms, {errors} errors)", flush=True)
        if errors:
            print(f"  errors: {recorder.error_samples}", flush=True)
    print(f"target: {rate:.0f} req/s open loop for {arguments.duration:.0f} s "
          f"({arguments.watchers} watch streams, reclaim every {arguments.reclaim_every:.0f} s)", flush=True)

    processes = topology.measured()
    rss_keys = [f"rss_{name.replace('-', '_')}_mib" for name, _ in processes]
    columns = (["elapsed_s", "requests", "errors", "p50_ms", "p99_ms"] + rss_keys
               + ["redis_used_memory_mib", "pending", "log_length", "max_ms", "lag", "watch_events", "events_appended", "loadavg_1m", "aof_rewrites", "aof_rewriting", "unix_time"])
    print("  " + " ".join(f"{c.replace('_mib', '').replace('rss_', ''):>13}" for c in columns), flush=True)

    recorder = Recorder()
    watchers = Watchers(workload, arguments.watchers)
    watchers.start()
    load = OpenLoop(workload, rate, arguments.senders, recorder)
    rows = []
    start = time.monotonic()
    load.start()
    next_sample = start + arguments.interval
    next_reclaim = start + arguments.reclaim_every if arguments.reclaim_every > 0 else float("inf")
    previous = start
    previous_writes = 0
    reclaims = []
    reclaimer = None
    try:
        while True:
            now = time.monotonic()
            if now >= next_reclaim:
                # In the background, like the CronJob: the rows keep their pace while it runs.
                def reclaim(at=round(now - start)):
                    began = time.monotonic()
                    code, last_line = topology.reclaim()
                    reclaims.append((at, time.monotonic() - began, code, last_line))
                if reclaimer is None or not reclaimer.is_alive():
                    reclaimer = threading.Thread(target=reclaim, daemon=True)
                    reclaimer.start()
                next_reclaim += arguments.reclaim_every
                continue
            if now < next_sample:
                time.sleep(min(next_sample, next_reclaim) - now)
                continue
            latencies, errors, writes = recorder.drain()
            latencies.sort()
            used, pending, length, lag = sampler.redis_figures()
            rewrites, rewriting = sampler.aof_rewrites()
            row = {"elapsed_s": round(now - start, 1), "interval_s": now - previous, "requests": len(latencies),
                   "errors": errors, "p50_ms": percentile(latencies, .5) * 1000,
                   "p99_ms": percentile(latencies, .99) * 1000, "max_ms": (latencies[-1] * 1000) if latencies else 0.0,
                   "redis_used_memory_mib": used, "pending": pending, "log_length": length, "lag": lag,
                   "watch_events": watchers.take_events(), "events_appended": writes - previous_writes,
                   "aof_rewrites": rewrites, "aof_rewriting": rewriting, "unix_time": round(time.time(), 1),
                   "loadavg_1m": float(Path("/proc/loadavg").read_text().split()[0])}
            for key, (_, pid) in zip(rss_keys, processes):
                row[key] = memory_mib(pid).get("VmRSS", float("nan"))
            rows.append(row)
            if len(rows) == 1:
                writes_at_first_row = recorder.writes
            previous, previous_writes = now, writes
            print("  " + " ".join(f"{row[c]:>13.1f}" if isinstance(row[c], float) else f"{row[c]:>13}"
                                  for c in columns), flush=True)
            dead = topology.dead()
            if dead:
                raise RuntimeError(f"{', '.join(d['name'] for d in dead)} exited; see {dead[0]['log']}")
            if now - start >= arguments.duration:
                break
            next_sample += arguments.interval
    finally:
        backlog = load.stop()
        watchers.stop()
        if reclaimer is not None:
            reclaimer.join(timeout=120)

    # After the load: how long until the read model has caught up (pending and lag back to 0)?
    drained_at = None
    drain_start = time.monotonic()
    while time.monotonic() - drain_start < 60:
        _, pending, _, lag = sampler.redis_figures()
        if pending == 0 and lag == 0:
            drained_at = time.monotonic() - drain_start
            break
        time.sleep(0.5)
    try:
        breakdown = key_classes(sampler.redis)
    except Exception as error:  # informative only
        breakdown = []
        print(f"no key breakdown: {error}", file=sys.stderr)
    sampler.redis.close()

    write_csv(arguments.csv, rows, columns)
    memory_keys = rss_keys + ["redis_used_memory_mib"]
    flat, findings, table = verdict(rows, memory_keys, arguments.growth_threshold)
    total, failed = recorder.total, recorder.total_errors
    error_rate = failed / total if total else 1.0
    every = sorted(l for row in rows for l in [row["p99_ms"]] if not math.isnan(l))
    title = (f"ThreadWeave soak: {rate:.0f} req/s open loop"
             + (f" (peak {peak:.0f} req/s x {arguments.load_factor:g})" if peak else "")
             + f", {arguments.duration:.0f} s, nproc {os.cpu_count()}")
    plotted = write_png(arguments.png, rows, rss_keys, title)

    print(f"\nwrote {arguments.csv}" + (f" and {arguments.png}" if plotted else ""))
    print(f"requests: {total} ({total / (rows[-1]['elapsed_s'] if rows else 1):.0f}/s achieved, target {rate:.0f}/s), "
          f"errors {failed} ({error_rate * 100:.2f} %), open-loop backlog at stop {backlog}")
    if recorder.error_samples:
        print(f"errors by kind: {json.dumps(recorder.error_samples)}")
    if every:
        print(f"interval p99: best {every[0]:.1f} ms, median {every[len(every) // 2]:.1f} ms, worst {every[-1]:.1f} ms")
    print(f"watch streams: {arguments.watchers}, reconnects {watchers.reconnects}")
    appended = recorder.writes - writes_at_first_row if rows else 0
    if appended > 0:
        grown = (rows[-1]["redis_used_memory_mib"] - rows[0]["redis_used_memory_mib"]) * 1048576
        print(f"Redis used_memory grew {grown / 1048576:.1f} MiB over the {appended} events appended after the "
              f"first row: {grown / appended:.0f} bytes per event (thread streams, snapshots, read model "
              f"and change log keep every event until reclaim trims the log)")
        for label, part in (("middle", slice(len(rows) // 3, 2 * len(rows) // 3)),
                            ("last", slice(2 * len(rows) // 3, len(rows)))):
            window = rows[part]
            events = sum(r["events_appended"] for r in window[1:])
            if len(window) > 1 and events:
                delta = (window[-1]["redis_used_memory_mib"] - window[0]["redis_used_memory_mib"]) * 1048576
                print(f"  {label} third: {delta / events:.0f} bytes of used_memory per appended event")
    for at, took, code, last_line in reclaims:
        print(f"reclaim at {at} s ({took:.1f} s): exit {code}: {last_line[0]}")
    if rows:
        print(f"AOF rewrites during the run: {rows[-1]['aof_rewrites'] - rows[0]['aof_rewrites']}")
    print("read model caught up " + (f"{drained_at:.1f} s after the load stopped" if drained_at is not None
                                     else "NOT within 60 s of the load stopping"))
    if breakdown:
        print("Redis memory by key class at the end (MEMORY USAGE, sampled):")
        for name, count, size in breakdown[:10]:
            print(f"  {name:<44} {count:>8} keys {size / 1048576:>9.1f} MiB")
    print(f"\n  {'figure':<34} {'start':>10} {'mid-third':>10} {'last-third':>10} {'end':>10} {'growth':>8}")
    for key, first, middle, last, end, growth in table:
        print(f"  {key:<34} {first:>10.1f} {middle:>10.1f} {last:>10.1f} {end:>10.1f} {growth * 100:>7.1f}%")
    if flat:
        print("\nverdict: flat")
    else:
        print("\nverdict: growing\n  " + "\n  ".join(findings))
    if drained_at is None:
        print("(the read model had not caught up 60 s after the load stopped)")
    if error_rate > arguments.max_error_rate:
        print(f"errors above {arguments.max_error_rate * 100:g} %: {error_rate * 100:.2f} %")
        return 2
    return 0 if flat else 1


if __name__ == "__main__":
    main()
