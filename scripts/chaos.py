#!/usr/bin/env python3
"""Fault-injection suite (`make chaos`): black-box tests of the built `threadweave` binary.

    chaos.py [--only a-everysec,b,...] [--keep] [--no-docs] [--seed N]
    chaos.py --self-test      the stream checks against made-up streams (no threadweave needed)

Each scenario runs on loopback against its own redis-server (random free port, own data
directory under one mktemp directory, AOF on), its own `threadweave` processes, and a steady
concurrent load from this script: 8 writer threads posting add-messages over several chat
threads (each command with a unique Idempotency-Key and client-chosen message ids, retried on
503 / 409 conflict / reset / timeout with the same key), 2 query threads (get-thread with
minVersion) and one open watch (server-sent events, resumed with Last-Event-ID). Every 2xx
acknowledgement is recorded and checked against the thread streams afterwards.

    a-everysec / a-always  Redis SIGKILLed and restarted on the same port and dir (appendfsync
                           everysec, then always; a ballast plus key-load-delay keeps Redis
                           LOADING for a few seconds); HTTP side `serve` + `function add-messages`
    b                      Redis frozen (SIGSTOP) for 5 s, then SIGCONT; then again for 8 s,
                           longer than the 5 s command timeout
    c                      100 SIGKILLs of `threadweave worker` processes over ~60 s, each restarted
                           at once; the read model must equal a `threadweave rebuild`
    d                      a `function add-messages` process and `serve` SIGKILLed mid-load and
                           restarted in their place
    e                      SIGTERM to `serve` during load: in-flight requests finish, the watch
                           ends within 2 s, exit status 0

Every scenario also checks: no 5xx but 503, every 503 with Retry-After, no answer later than
the command timeout + 1 s, no hang past the 8 s client timeout, no 4xx refusal, nothing
acknowledged missing from its stream, versions 1..N with each event one whole command.

Every process is started here and stopped by its pid at the end, also on failure or Ctrl-C.
Exit status 1 when any check fails. The table goes to stdout and, between markers, into
docs/RELIABILITY.md (unless --no-docs). Each failed scenario is appended to $CHAOS_FINDINGS
(default /tmp/chaos-findings.md) with its failed checks, a log excerpt and the command.

Environment: THREADWEAVE_BIN (default `swift build -c release --show-bin-path`/threadweave),
CHAOS_FINDINGS.
"""

import argparse
import collections
import datetime
import hashlib
import http.client
import json
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_cluster import runs_program  # noqa: E402  (the same helpers as make local-cluster)
from local_redis import LocalRedis  # noqa: E402
from helpers import free_port  # noqa: E402
from resp import Resp, RespError, consumer_group_backlog, redis_call  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "RELIABILITY.md"
BEGIN_MARK = "<!-- chaos:begin (scripts/chaos.py rewrites this section) -->"
END_MARK = "<!-- chaos:end -->"

COMMAND_TIMEOUT = 5.0  # the service's Redis command timeout (RedisConfiguration.commandTimeout)
CLIENT_TIMEOUT = 8.0  # a request that takes longer counts as a hang
WRITERS = 8
READERS = 2
CHAT_THREADS = 6
WARMUP = 3.0  # load before the fault
HOLD_AFTER = 3.0  # load after recovery
RECOVERY_DEADLINE = 30.0
CATCH_UP_DEADLINE = 60.0
STARTUP_DEADLINE = 60.0
RUN_BUDGET = 8 * 60.0  # the whole suite
NAMESPACE = "tw"
PARTITIONS = 64
WORKER_KILLS = 100
# b: the 5 s freeze, then one longer than the command timeout, during which every request must
# get its 503 before Redis comes back (a 5 s freeze alone cannot tell a 503 from a late 2xx).
FREEZES = (5.0, COMMAND_TIMEOUT + 3.0)
KILL_SPREAD = 60.0
WATCH_END_LIMIT = 2.0
# Redis 7.0 under `appendfsync everysec` may answer writes it has not yet written to the AOF (the
# write waits up to 2 s while a background fsync is slow): a crash can lose that much. 0.5 s of slack
# for the time between Redis's reply and the client's record of it.
EVERYSEC_LOSS_WINDOW = 2.5
WAITING_READS = 4  # scenario e: reads held in flight across SIGTERM
ARRIVAL_GRACE = 0.1  # scenario e: a connection opened this close to SIGTERM may not have reached the server
# A few seconds of LOADING after a restart, as a larger data set would give: 10,000 ballast keys
# plus the commands of the load, 50 us each (key-load-delay); Redis answers LOADING meanwhile
# (events processed every 1 KiB read).
BALLAST_KEYS = 10000
KEY_LOAD_DELAY_US = 50

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid():
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))


def fnv1a32(text):
    h = 0x811C9DC5
    for byte in text.encode():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def hash_tag(partition):
    return f"{{p{partition:02d}}}"


def now():
    return time.monotonic()


def wait_until(predicate, timeout, interval=0.1):
    """Polls predicate until it is truthy or timeout passes; returns its last value."""
    deadline = now() + timeout
    while True:
        value = predicate()
        if value or now() >= deadline:
            return value
        time.sleep(interval)


def log(message):
    print(f"[{datetime.datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


# ---------------------------------------------------------------- processes


class Processes:
    """Every child this suite starts, so that all of them are stopped by pid at the end (Redis last)."""

    def __init__(self):
        self.children = {}  # pid -> (Popen, program, label)
        self.redis_servers = []  # ChaosRedis: each stops its own launcher
        self.lock = threading.Lock()

    def spawn(self, label, argv, log_path, env=None):
        with open(log_path, "ab") as output:
            child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                     start_new_session=True, cwd=ROOT, env=env)
        with self.lock:
            self.children[child.pid] = (child, argv[0], label)
        return child

    def stop_all(self):
        with self.lock:
            children = list(self.children.values())
            self.children.clear()
            redis_servers, self.redis_servers = self.redis_servers, []
        live = [(p, prog, label) for p, prog, label in children if p.poll() is None]
        for child, program, _ in live:
            if runs_program(child.pid, Path(program).name):
                try:
                    os.kill(child.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = now() + 10
        for child, _, label in live:
            try:
                child.wait(timeout=max(0.1, deadline - now()))
            except subprocess.TimeoutExpired:
                log(f"{label} (pid {child.pid}) outlived SIGTERM: SIGKILL")
                child.kill()
                child.wait()
        for server in redis_servers:
            server.stop()  # a frozen Redis is sent SIGCONT before SIGTERM


PROCESSES = Processes()


class ChaosRedis(LocalRedis):
    """A scenario's redis-server (`threadweave redis-server`): AOF on with the given fsync policy,
    data in <workdir>/redis-<fsync>, the launcher's log beside it; tracked by PROCESSES."""

    def __init__(self, binary, workdir, fsync, ballast=False):
        arguments = ["--appendonly", "yes", "--appendfsync", fsync]
        if ballast:
            arguments += ["--key-load-delay", str(KEY_LOAD_DELAY_US), "--loading-process-events-interval-bytes", "1024"]
        Path(workdir).mkdir(parents=True, exist_ok=True)
        super().__init__(binary, Path(workdir) / f"redis-{fsync}", arguments, log=Path(workdir) / "redis-launcher.log")
        with PROCESSES.lock:
            PROCESSES.redis_servers.append(self)

    def answers(self):
        """PONG: serving, not LOADING."""
        try:
            return self.call("PING", timeout=1) == "PONG"
        except (OSError, RespError):
            return False

    def add_ballast(self):
        """Keys outside the namespace, rewritten into the AOF base (RDB preamble), so that
        key-load-delay keeps the restarted server LOADING for a while."""
        self.call("EVAL", "for i=1,tonumber(ARGV[1]) do redis.call('SET','chaos:ballast:'..i,'x') end return 1",
                  0, BALLAST_KEYS, timeout=30)
        self.call("BGREWRITEAOF")

        def rewritten():
            info = self.call("INFO", "persistence")
            return "aof_rewrite_in_progress:0" in info and "aof_rewrite_scheduled:0" in info
        if not wait_until(rewritten, 30, 0.1):
            raise RuntimeError("BGREWRITEAOF did not finish")


class Threadweave:
    """One long-running `threadweave` process (serve, function or worker)."""

    def __init__(self, binary, workdir, label, arguments, http=True, port=None):
        self.binary = binary
        self.label = label
        self.arguments = arguments
        self.http = http
        self.port = port or (free_port() if http else None)
        self.log = Path(workdir) / f"{label}.log"
        self.proc = None

    def argv(self):
        argv = [self.binary] + self.arguments
        if self.http:
            argv += ["--host", "127.0.0.1", "--port", str(self.port)]
        return argv

    def start(self, wait=True):
        env = dict(os.environ, THREADWEAVE_AUTH="none", LOG_LEVEL=os.environ.get("LOG_LEVEL", "warning"))
        self.proc = PROCESSES.spawn(self.label, self.argv(), self.log, env=env)
        if wait and self.http:
            ok = wait_until(lambda: self.proc.poll() is not None or http_status(self.port, "/readyz") == 200,
                            STARTUP_DEADLINE, 0.05)
            if self.proc.poll() is not None or not ok:
                raise RuntimeError(f"{self.label} did not become ready; see {self.log}:\n{tail(self.log)}")
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum):
        os.kill(self.proc.pid, signum)

    def kill(self):
        if self.alive():
            self.signal(signal.SIGKILL)
        self.proc.wait()


def tail(path, lines=15, grep=None):
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    if grep:
        text = [line for line in text if any(word in line.lower() for word in grep)] or text
    return "\n".join(text[-lines:])


def http_status(port, path, timeout=2.0):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        answer.read()
        return answer.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def run_cli(binary, *arguments, timeout=120):
    env = dict(os.environ, THREADWEAVE_AUTH="none", LOG_LEVEL="warning")
    done = subprocess.run([binary] + list(arguments), capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"threadweave {' '.join(arguments)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


# ---------------------------------------------------------------- load


class Outcome:
    __slots__ = ("kind", "started", "ended", "status", "error", "retry_after", "body", "port")

    def __init__(self, kind, started, ended, status, error, retry_after=None, body=b"", port=None):
        self.kind, self.started, self.ended = kind, started, ended
        self.status, self.error, self.retry_after, self.body, self.port = status, error, retry_after, body, port

    @property
    def duration(self):
        return self.ended - self.started

    def label(self):
        return str(self.status) if self.status is not None else self.error


def request(kind, port, method, path, body=None, headers=None):
    """One request on a fresh connection (no keep-alive: a reset belongs to this request alone)."""
    started = now()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT)
    try:
        try:
            connection.connect()
        except ConnectionRefusedError:
            return Outcome(kind, started, now(), None, "refused", port=port)
        except socket.timeout:
            return Outcome(kind, started, now(), None, "hang", port=port)
        except OSError as error:
            return Outcome(kind, started, now(), None, f"connect:{type(error).__name__}", port=port)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            answer = connection.getresponse()
            data = answer.read()
            return Outcome(kind, started, now(), answer.status, None, answer.getheader("Retry-After"), data, port)
        except socket.timeout:
            return Outcome(kind, started, now(), None, "hang", port=port)
        except (OSError, http.client.HTTPException):
            return Outcome(kind, started, now(), None, "reset", port=port)
    finally:
        connection.close()


LOADS = []  # every load started, so that the end of a scenario stops it whatever happened


class Load:
    """Writers, readers and one watch against the given ports; records everything."""

    def __init__(self, threads, admin, member, write_ports, read_port, watch_port, writers=WRITERS, readers=READERS):
        self.threads = threads
        self.admin, self.member = admin, member
        self.write_ports = write_ports
        self.read_port, self.watch_port = read_port, watch_port
        self.writers, self.readers = writers, readers
        self.outcomes = []  # list.append is atomic under the GIL
        self.acks = []  # (threadId, version, messageIds, key, ackedAt, port)
        self.sent = {}  # key -> (threadId, messageIds)
        self.rejected = []  # (key, status, body)
        self.last_version = collections.defaultdict(int)
        self.stop_event = threading.Event()
        self.watch_stop = threading.Event()
        self.watch_versions = []  # versions received by the watch, in order, over reconnects
        self.watch_connects = 0
        self.watch_ended_at = None  # monotonic time of the latest end of a watch stream
        self.watch_thread_id = threads[0]
        self.watch_connection = None
        self.watch_worker = None
        self.workers = []
        self.counter = 0
        self.lock = threading.Lock()

    def start(self):
        LOADS.append(self)
        for index in range(self.writers):
            self.workers.append(threading.Thread(target=self.writer, args=(index,), daemon=True))
        for index in range(self.readers):
            self.workers.append(threading.Thread(target=self.reader, args=(index,), daemon=True))
        self.watch_worker = threading.Thread(target=self.watch, daemon=True)
        for worker in self.workers + [self.watch_worker]:
            worker.start()
        return self

    def stop(self):
        """Stops writers and readers (each finishes its request); the watch runs on."""
        self.stop_event.set()
        for worker in self.workers:
            worker.join(timeout=CLIENT_TIMEOUT + 5)

    def stop_watch(self):
        self.watch_stop.set()
        connection = self.watch_connection
        if connection is not None and connection.sock is not None:
            try:
                connection.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self.watch_worker is not None:
            self.watch_worker.join(timeout=25)

    def writer(self, index):
        rng = random.Random(index * 7919 + int(time.time()))
        sequence = 0
        while not self.stop_event.is_set():
            thread_id = rng.choice(self.threads)
            sequence += 1
            key = f"chaos-{os.getpid()}-{index}-{sequence}-{rng.randrange(1 << 30)}"
            message_ids = [ulid() for _ in range(rng.randint(1, 2))]
            self.sent[key] = (thread_id, message_ids)
            actor = self.admin if sequence % 2 else self.member
            body = json.dumps({"accountId": actor,
                               "messages": [{"id": m, "text": f"chaos {index}/{sequence}"} for m in message_ids]})
            headers = {"Content-Type": "application/json", "Idempotency-Key": key}
            while not self.stop_event.is_set():
                port = self.write_ports[index % len(self.write_ports)]
                outcome = request("write", port, "POST", f"/v1/threads/{thread_id}/messages/add", body, headers)
                self.outcomes.append(outcome)
                if outcome.status == 200:
                    answer = json.loads(outcome.body)
                    self.acks.append((thread_id, answer["version"], answer.get("messageIds"), key, outcome.ended, port))
                    with self.lock:
                        self.last_version[thread_id] = max(self.last_version[thread_id], answer["version"])
                    break
                retry = outcome.status is None or outcome.status >= 500 or (
                    outcome.status == 409 and b'"conflict"' in outcome.body)
                if not retry:
                    self.rejected.append((key, outcome.status, outcome.body[:300]))
                    break
                self.stop_event.wait(rng.uniform(0.05, 0.2))  # same key again

    def reader(self, index):
        rng = random.Random(index * 104729 + int(time.time()))
        while not self.stop_event.is_set():
            thread_id = rng.choice(self.threads)
            with self.lock:
                minimum = self.last_version[thread_id]
            account = self.member if rng.random() < 0.5 else self.admin
            outcome = request("read", self.read_port, "GET",
                              f"/v1/threads/{thread_id}?accountId={account}&minVersion={minimum}")
            self.outcomes.append(outcome)
            if outcome.status != 200:
                self.stop_event.wait(0.05)

    def watch(self):
        """One watch, resumed with Last-Event-ID after every end, until told to stop."""
        last = None
        while not self.watch_stop.is_set():
            connection = http.client.HTTPConnection("127.0.0.1", self.watch_port, timeout=20)
            self.watch_connection = connection
            try:
                headers = {"Accept": "text/event-stream"}
                if last is not None:
                    headers["Last-Event-ID"] = str(last)
                connection.request("GET", f"/v1/threads/{self.watch_thread_id}/events?accountId={self.member}",
                                   headers=headers)
                answer = connection.getresponse()
                if answer.status != 200:
                    answer.read()
                    self.outcomes.append(Outcome("watch", now(), now(), answer.status, None,
                                                 answer.getheader("Retry-After"), b"", self.watch_port))
                    self.watch_stop.wait(0.2)
                    continue
                self.watch_connects += 1
                while True:
                    line = answer.readline()  # de-chunked: the terminating chunk reads as the end
                    if not line:
                        break
                    text = line.decode(errors="replace").rstrip("\r\n")
                    if text.startswith("id:"):
                        try:
                            last = int(text[3:].strip())
                            self.watch_versions.append(last)
                        except ValueError:
                            pass
                self.watch_ended_at = now()
            except (OSError, http.client.HTTPException):
                self.watch_ended_at = now()
                self.watch_stop.wait(0.2)
            finally:
                connection.close()

    # ---- summaries

    def window(self, start, end):
        return [o for o in self.outcomes if start <= o.ended <= end]

    def first_ack_after(self, moment):
        times = [ack[4] for ack in self.acks if ack[4] >= moment]
        return min(times) if times else None


# ---------------------------------------------------------------- checks on Redis


def thread_stream_key(thread_id):
    return f"{NAMESPACE}:{hash_tag(fnv1a32(thread_id) % PARTITIONS)}:thread:{thread_id}"


def read_stream(port, thread_id):
    """[(version, type, cmd, messageIds)] from XRANGE, oldest first."""
    events = []
    with Resp(port, 10) as redis:
        for entry_id, fields in redis.call("XRANGE", thread_stream_key(thread_id), "-", "+"):
            record = dict(zip(fields[::2], fields[1::2]))
            data = {}
            try:
                data = json.loads(record.get("data") or "{}")
            except ValueError:
                pass
            message_ids = [m.get("id") for m in data.get("messages", []) if isinstance(m, dict)]
            major, _, minor = entry_id.partition("-")
            events.append((int(major), minor, record.get("type"), record.get("cmd"), message_ids))
    return events


def check_streams(port, load):
    """Lost acknowledgements, gaps and duplicates, partial or doubled commands. Returns (lost, problems)."""
    problems = []
    lost_details = []
    lost = 0
    by_thread = {thread_id: read_stream(port, thread_id) for thread_id in load.threads}
    for thread_id, events in by_thread.items():
        versions = [e[0] for e in events]
        if versions != list(range(1, len(versions) + 1)) or any(e[1] != "0" for e in events):
            problems.append(f"thread {thread_id}: versions are not 1..{len(versions)}: {versions[:5]}…{versions[-5:]}")
    message_owner = {}
    for key, (_, message_ids) in load.sent.items():
        for message_id in message_ids:
            message_owner[message_id] = key
    seen_messages = collections.Counter()
    seen_commands = collections.Counter()
    event_at = {}
    for thread_id, events in by_thread.items():
        for version, _, kind, _, message_ids in events:
            event_at[(thread_id, version)] = message_ids
            if kind != "MessagesAdded":
                continue
            seen_messages.update(message_ids)
            keys = {message_owner.get(m) for m in message_ids}
            if len(keys) != 1 or None in keys:
                problems.append(f"thread {thread_id} v{version}: messages of no single command we sent: {message_ids}")
                continue
            key = keys.pop()
            seen_commands[key] += 1
            if sorted(load.sent[key][1]) != sorted(message_ids):
                problems.append(f"thread {thread_id} v{version}: partial command {key}: {message_ids} of {load.sent[key][1]}")
    for message_id, count in seen_messages.items():
        if count > 1:
            problems.append(f"message {message_id} appended {count} times")
    for key, count in seen_commands.items():
        if count > 1:
            problems.append(f"command {key} appended {count} times (idempotency)")
    lost_at = []  # when each lost command was acknowledged
    for thread_id, version, message_ids, key, acked_at, _ in load.acks:
        stored = event_at.get((thread_id, version))
        if stored is None or sorted(stored) != sorted(message_ids or []) or sorted(stored) != sorted(load.sent[key][1]):
            lost += 1
            lost_at.append(acked_at)
            if lost <= 5:
                lost_details.append(f"acknowledged {key} ({thread_id} v{version} {message_ids}) is not in the stream "
                                f"(stream has {stored})")
    return lost, lost_details, problems, by_thread, lost_at


def group_state(port):
    """(pending, lag) of group rmu summed over every partition's log."""
    with Resp(port, 10) as redis:
        return consumer_group_backlog(redis, [f"{NAMESPACE}:{hash_tag(partition)}:log" for partition in range(PARTITIONS)], "rmu")


def pending_of(port, consumer):
    """Entries pending with one consumer of group rmu, over every partition."""
    total = 0
    with Resp(port, 10) as redis:
        summaries = redis.pipeline([("XPENDING", f"{NAMESPACE}:{hash_tag(p)}:log", "rmu") for p in range(PARTITIONS)])
    for summary in summaries:
        if isinstance(summary, RespError):
            continue
        for name, count in summary[3] or []:
            if name == consumer:
                total += int(count)
    return total


def client_count(port):
    return len([line for line in redis_call(port, "CLIENT", "LIST").splitlines() if line.strip()])


def dump_read_model(port):
    """The live read-model generation (`readModel` in the config; `rebuild` moves it),
    keys named as generation 0 names them, so two generations compare key by key."""
    dump = {}
    with Resp(port, 10) as redis:
        generation = redis.call("HGET", f"{NAMESPACE}:config", "readModel") or "0"
        segment = "" if generation == "0" else f":g{generation}"
        for pattern in (f"{NAMESPACE}:{{p*}}{segment}:rm:*", f"{NAMESPACE}:{{acct:*}}{segment}:threads*"):
            cursor = "0"
            while True:
                cursor, keys = redis.call("SCAN", cursor, "MATCH", pattern, "COUNT", "1000")
                for key in keys:
                    kind = redis.call("TYPE", key)
                    name = key.replace(f"}}{segment}:", "}:", 1) if segment else key
                    if kind == "hash":
                        flat = redis.call("HGETALL", key)
                        dump[name] = "\n".join(sorted(f"{a}={b}" for a, b in zip(flat[::2], flat[1::2])))
                    elif kind == "zset":
                        dump[name] = " ".join(redis.call("ZRANGE", key, "0", "-1", "WITHSCORES"))
                    else:
                        dump[name] = kind
                if cursor == "0":
                    break
    return dump


# ---------------------------------------------------------------- scenarios


class Scenario:
    def __init__(self, suite, name, fault):
        self.suite = suite
        self.name = name
        self.fault = fault
        self.checks = []  # (name, ok, detail)
        self.held = None
        self.acked = 0
        self.lost = None
        self.fivexx = collections.Counter()
        self.recovery = None
        self.load = None
        self.logs = []  # paths worth quoting in a finding
        self.command = ""
        self.notes = []

    def check(self, name, ok, detail=""):
        self.checks.append((name, bool(ok), detail))
        log(f"  {'ok  ' if ok else 'FAIL'} {self.name}: {name}{(' — ' + detail) if detail and not ok else ''}")
        return ok

    @property
    def passed(self):
        return bool(self.checks) and all(ok for _, ok, _ in self.checks)

    def summarize(self, load, start=None, end=None, windows=None):
        """`held`: answers per second over the fault window(s), each at least 1 s long."""
        self.load = load
        windows = windows or [(start, end)]
        answered = sum(len(load.window(a, max(b, a + 1.0))) for a, b in windows)
        self.held = answered / sum(max(b - a, 1.0) for a, b in windows)
        self.acked = len(load.acks)
        for outcome in load.outcomes:
            if outcome.status is not None and outcome.status >= 500:
                self.fivexx[outcome.status] += 1

    def common_checks(self, load, strict_window=None, read_waits_may_run_out=False):
        """No 5xx but 503, every 503 with Retry-After, no hang past the client timeout.

        With `read_waits_may_run_out`, a read's 504 `timeout` (its minVersion wait ran out because
        the fault held the read model back: a frozen Redis, workers killed every 0.6 s) is the
        documented answer, not a failure; it is counted in the notes."""
        outcomes = load.outcomes if strict_window is None else [o for o in load.outcomes if strict_window(o)]

        def run_out(o):
            return read_waits_may_run_out and o.kind == "read" and o.status == 504 and b'"timeout"' in o.body
        ran_out = [o for o in outcomes if run_out(o)]
        if ran_out:
            self.notes.append(f"{len(ran_out)} reads answered 504 timeout: their minVersion wait ran out during the fault")
        failing = [o for o in outcomes if o.status is not None and o.status >= 500 and o.status != 503 and not run_out(o)]
        bad = collections.Counter(o.status for o in failing)
        examples = [f"{o.kind} {o.status} after {o.duration:.2f}s: {o.body[:160]!r}" for o in failing][:3]
        self.check("no 5xx other than 503", not bad, f"{dict(bad)}; e.g. {examples}")
        missing = [o for o in outcomes if o.status == 503 and not o.retry_after]
        self.check("every 503 carries Retry-After", not missing, f"{len(missing)} without it")
        refused = collections.Counter(f"{status} {bytes(body)[:80]!r}" for _, status, body in load.rejected)
        self.check("no command refused with a 4xx (a retry with its key answers its first outcome)", not refused,
                   f"{sum(refused.values())} refused: {dict(list(refused.items())[:3])}")
        hangs = [o for o in outcomes if o.error == "hang"]
        self.check(f"no request hangs past {CLIENT_TIMEOUT:.0f} s", not hangs,
                   f"{len(hangs)} hangs ({dict(collections.Counter(o.kind for o in hangs))})")
        slow = [o for o in outcomes if o.status is not None and o.duration > COMMAND_TIMEOUT + 1.0]
        self.check(f"every answer within the command timeout ({COMMAND_TIMEOUT:.0f} s + 1 s)", not slow,
                   f"{len(slow)} slower, e.g. {[f'{o.kind} {o.status} {o.duration:.1f}s' for o in slow[:3]]}")

    def stream_checks(self, port, load, crashed_at=None):
        """With `crashed_at` (Redis SIGKILLed under `appendfsync everysec`), acknowledgements from the
        last EVERYSEC_LOSS_WINDOW seconds before the crash may be lost: Redis answers a write before
        its AOF write() when a background fsync is slow, and postpones that write up to 2 s. Any older
        acknowledgement lost is a failure. Without it, every acknowledgement must be in its stream."""
        lost, lost_details, problems, by_thread, lost_at = check_streams(port, load)
        self.lost = lost
        if crashed_at is None:
            self.check("every acknowledged command is in its thread stream", lost == 0, f"{lost} lost; {lost_details[:3]}")
        else:
            early = [t for t in lost_at if t < crashed_at - EVERYSEC_LOSS_WINDOW]
            if lost:
                self.notes.append(f"{lost} acknowledged commands lost, acknowledged {crashed_at - max(lost_at):.2f}–"
                                  f"{crashed_at - min(lost_at):.2f} s before the crash (Redis's everysec window)")
            self.check(f"every command acknowledged more than {EVERYSEC_LOSS_WINDOW:.0f} s before the crash is in its "
                       f"thread stream", not early, f"{len(early)} lost; {lost_details[:3]}")
        self.check("versions contiguous 1..N, no partial or doubled command", not problems, "; ".join(problems[:5]))
        return by_thread

    def watch_check(self, load, by_thread, deadline=15.0):
        """The watch, resumed over every interruption, saw each version of its thread exactly once."""
        final = len(by_thread[load.watch_thread_id])

        def complete():
            return load.watch_versions and load.watch_versions[-1] >= final
        wait_until(complete, deadline)
        versions = list(load.watch_versions)
        expected = list(range(versions[0], final + 1)) if versions else []
        self.check("the watch resumes without loss or repeats", versions == expected and versions,
                   f"got {len(versions)} events, last {versions[-1:]} of {final}, "
                   f"{len(versions) - len(set(versions))} repeats, {load.watch_connects} connections")


class Suite:
    def __init__(self, binary, workdir, arguments):
        self.binary = binary
        self.workdir = Path(workdir)
        self.arguments = arguments
        self.results = []
        self.started = now()
        self.findings_path = Path(os.environ.get("CHAOS_FINDINGS", "/tmp/chaos-findings.md"))
        self.worker_has_port = "--port" in subprocess.run([binary, "worker", "--help"], capture_output=True,
                                                          text=True).stdout

    def finding(self, scenario):
        """One entry per failed scenario: every failed check, the notes, a log excerpt, the command."""
        failed = [(name, detail) for name, ok, detail in scenario.checks if not ok]
        excerpt = "\n\n".join(f"{Path(p).name}:\n{tail(p, 12, grep=('error', 'warn', 'fatal', 'crash'))}"
                              for p in scenario.logs if Path(p).exists())
        entry = (f"\n## chaos {scenario.name}: {len(failed)} failed check(s) "
                 f"({datetime.datetime.now().isoformat(timespec='seconds')}, automatic)\n\n"
                 f"- fault: {scenario.fault}\n" + "".join(f"- FAIL {name}: {detail}\n" for name, detail in failed)
                 + "".join(f"- note: {note}\n" for note in scenario.notes)
                 + f"- reproduce: `THREADWEAVE_BIN={self.binary} python3 scripts/chaos.py --only {scenario.name} --keep`"
                 f" (logs and data under {self.workdir}/{scenario.name})\n\n```text\n{excerpt[-3000:]}\n```\n")
        with open(self.findings_path, "a") as findings:
            findings.write(entry)

    def remaining(self):
        return RUN_BUDGET - (now() - self.started)

    # ---- building blocks

    def redis(self, name, fsync="everysec", ballast=False):
        server = ChaosRedis(self.binary, self.workdir / name, fsync, ballast)
        server.start()
        run_cli(self.binary, "setup", "--redis-url", server.url, "--namespace", NAMESPACE,
                "--partitions", str(PARTITIONS))
        return server

    def serve(self, name, redis, port=None):
        return Threadweave(self.binary, self.workdir / name, "serve",
                           ["serve", "--redis-url", redis.url, "--namespace", NAMESPACE], port=port).start()

    def function(self, name, function, redis, port=None):
        return Threadweave(self.binary, self.workdir / name, f"function-{function}",
                           ["function", function, "--redis-url", redis.url, "--namespace", NAMESPACE, "--auth", "none"],
                           port=port).start()

    def worker(self, name, redis, index):
        arguments = ["worker", "--redis-url", redis.url, "--namespace", NAMESPACE, "--claim-idle-seconds", "1",
                     "--block-milliseconds", "200", "--batch-size", "10"]
        worker = Threadweave(self.binary, self.workdir / name, f"worker-{index}", arguments, http=self.worker_has_port)
        return worker.start(wait=False)

    def make_threads(self, port):
        admin, member = ulid(), ulid()
        threads = []
        for index in range(CHAT_THREADS):
            body = json.dumps({"accountId": admin, "title": f"chaos {index}", "memberIds": [member]})
            outcome = None
            for _ in range(50):
                outcome = request("setup", port, "POST", "/v1/threads/create", body,
                                  {"Content-Type": "application/json", "Idempotency-Key": f"create-{admin}-{index}"})
                if outcome.status == 201:
                    break
                time.sleep(0.2)
            if outcome is None or outcome.status != 201:
                raise RuntimeError(f"create-thread answered {outcome.label()}: {outcome.body[:200]!r}")
            threads.append(json.loads(outcome.body)["threadId"])
        return threads, admin, member

    def make_quiet_thread(self, port, admin):
        """A thread the load never writes to."""
        body = json.dumps({"accountId": admin, "title": "chaos quiet"})
        outcome = request("setup", port, "POST", "/v1/threads/create", body, {"Content-Type": "application/json"})
        if outcome.status != 201:
            raise RuntimeError(f"create-thread answered {outcome.label()}: {outcome.body[:200]!r}")
        return json.loads(outcome.body)["threadId"]

    def wait_acks_after(self, load, moment, deadline=RECOVERY_DEADLINE):
        return wait_until(lambda: load.first_ack_after(moment), deadline, 0.05)

    # ---- a: Redis SIGKILL + restart

    def scenario_redis_kill(self, fsync):
        scenario = Scenario(self, f"a-{fsync}", f"Redis SIGKILL + restart, appendfsync {fsync}")
        redis = self.redis(scenario.name, fsync, ballast=True)
        serve = self.serve(scenario.name, redis)
        adds = self.function(scenario.name, "add-messages", redis)
        scenario.logs = [serve.log, adds.log, redis.redis_log]
        redis.add_ballast()
        threads, admin, member = self.make_threads(serve.port)
        load = Load(threads, admin, member, [serve.port, adds.port], serve.port, serve.port).start()
        http_processes = (serve, adds)
        try:
            wait_until(lambda: len(load.acks) >= 20, WARMUP * 3)
            time.sleep(WARMUP)  # steady load before the fault (not a correctness wait)
            injected = now()
            redis.kill()
            log(f"  {scenario.name}: redis-server SIGKILLed with {len(load.acks)} commands acknowledged")
            # The outage itself (1 s): clients meet a dead Redis; readiness must say so meanwhile.
            readiness = collections.Counter()
            while now() < injected + 1.0:
                readiness.update(f"{p.label} {http_status(p.port, '/readyz', timeout=1)}" for p in http_processes)
                time.sleep(0.1)
            redis.restart(ready_when="listening")
            lifted = now()
            loading = []
            while not (loading and loading[-1]) and now() < lifted + RECOVERY_DEADLINE:
                loading.append(redis.answers())
                for process in http_processes if not loading[-1] else ():
                    status = http_status(process.port, "/readyz", timeout=1)
                    if not redis.answers():  # still LOADING after the answer: it counts
                        readiness[f"{process.label} {status} (LOADING)"] += 1
                time.sleep(0.05)
            scenario.notes.append(f"LOADING for {now() - lifted:.1f} s after the restart")
            scenario.notes.append(f"GET /readyz while Redis was down or loading: {dict(readiness)}")
            ready_while_down = {k: v for k, v in readiness.items() if " 200" in k}
            scenario.check("GET /readyz is not 200 while Redis is down or loading", not ready_while_down,
                           f"{ready_while_down}")
            for process in http_processes:
                ready = wait_until(lambda: http_status(process.port, "/readyz") == 200, RECOVERY_DEADLINE, 0.1)
                scenario.check(f"{process.label} comes back to ready (GET /readyz 200) by itself", ready,
                               f"not ready {RECOVERY_DEADLINE:.0f} s after the restart")
            recovered = self.wait_acks_after(load, lifted)
            scenario.recovery = (recovered - lifted) if recovered else None
            scenario.check("writes succeed again after the restart", recovered, f"no 2xx within {RECOVERY_DEADLINE:.0f} s")
            time.sleep(HOLD_AFTER)
        finally:
            load.stop()
        scenario.summarize(load, injected, recovered or now())
        for process in http_processes:
            scenario.check(f"{process.label} still runs", process.alive(), f"exit status {process.proc.poll()}")
        scenario.common_checks(load)
        by_thread = scenario.stream_checks(redis.port, load, crashed_at=injected if fsync == "everysec" else None)
        scenario.watch_check(load, by_thread)
        return scenario

    # ---- b: Redis frozen

    def scenario_redis_freeze(self):
        scenario = Scenario(self, "b", f"Redis SIGSTOP {FREEZES[0]:.0f} s, then SIGCONT (and again for {FREEZES[1]:.0f} s)")
        redis = self.redis(scenario.name)
        serve = self.serve(scenario.name, redis)
        scenario.logs = [serve.log, redis.redis_log]
        threads, admin, member = self.make_threads(serve.port)
        load = Load(threads, admin, member, [serve.port], serve.port, serve.port).start()
        windows = []
        recoveries = []
        try:
            wait_until(lambda: len(load.acks) >= 20, WARMUP * 3)
            time.sleep(WARMUP)
            clients_before = client_count(redis.port)
            for seconds in FREEZES:
                injected = now()
                redis.signal(signal.SIGSTOP)
                log(f"  b: redis-server frozen for {seconds:.0f} s; {clients_before} clients before")
                time.sleep(seconds)  # the fault itself
                redis.signal(signal.SIGCONT)
                lifted = now()
                windows.append((injected, lifted))
                recovered = self.wait_acks_after(load, lifted)
                scenario.check(f"writes succeed again after a {seconds:.0f} s freeze", recovered,
                               f"no 2xx within {RECOVERY_DEADLINE:.0f} s of SIGCONT")
                recoveries.append((recovered - lifted) if recovered else None)
                time.sleep(HOLD_AFTER)
        finally:
            load.stop()
        stopped = now()
        scenario.recovery = None if None in recoveries or not recoveries else max(recoveries)
        scenario.summarize(load, windows=windows)
        scenario.common_checks(load, read_waits_may_run_out=True)
        for (injected, lifted), seconds in zip(windows, FREEZES):
            # Sent after SIGSTOP and done before SIGCONT: nothing but a 503 is possible. (A request sent just
            # before may still get a 200 whose reply Redis wrote before it stopped.)
            during = [o for o in load.outcomes if injected <= o.started and o.ended <= lifted and o.kind in ("write", "read")]
            not503 = collections.Counter(o.label() for o in during if o.status != 503)
            scenario.check(f"answers to requests sent during the {seconds:.0f} s freeze are 503", not not503,
                           f"{len(during)} sent and done during the freeze; not 503: {dict(not503)}")
            if seconds > COMMAND_TIMEOUT + 1:
                # Longer than the command timeout: every request in flight at the freeze, or sent
                # early in it, must have had its 503 before SIGCONT.
                owed = [o for o in load.outcomes if o.kind in ("write", "read")
                        and o.ended > injected + 0.2 and o.started <= lifted - COMMAND_TIMEOUT - 1.0]
                late = collections.Counter(f"{o.kind} sent at {o.started - injected:+.1f}s: {o.label()} after "
                                           f"{o.duration:.1f}s" for o in owed
                                           if not (o.status == 503 and o.ended <= lifted))
                scenario.check(f"requests in flight during the {seconds:.0f} s freeze get their 503 within "
                               f"the command timeout", owed and not late,
                               f"{len(owed)} owed an answer before SIGCONT; not 503 in time: {dict(late)}")
        scenario.check("serve still runs", serve.alive(), f"exit status {serve.proc.poll()}")

        def settled():
            pending, lag = group_state(redis.port)
            return pending == 0 and lag == 0
        caught_up = wait_until(settled, CATCH_UP_DEADLINE, 0.25)
        pending, lag = group_state(redis.port)
        scenario.notes.append(f"XPENDING rmu reached 0 {now() - stopped:.1f} s after the load stopped")
        scenario.check("no leaked pending entries (XPENDING rmu = 0, lag 0) once workers catch up", caught_up,
                       f"pending {pending}, lag {lag} {CATCH_UP_DEADLINE:.0f} s after the load stopped")
        counts = []
        small = wait_until(lambda: counts.append(client_count(redis.port)) or counts[-1] <= clients_before + 2, 20, 0.5)
        scenario.check("Redis client connections return to the pre-fault number (CLIENT LIST)", small,
                       f"{counts[-1]} clients after recovery vs {clients_before} before the freeze")
        by_thread = scenario.stream_checks(redis.port, load)
        scenario.watch_check(load, by_thread)
        return scenario

    # ---- c: worker SIGKILLs

    def scenario_worker_kills(self):
        scenario = Scenario(self, "c", f"{WORKER_KILLS} SIGKILLs of `worker` processes, restarted at once")
        redis = self.redis(scenario.name)
        adds = self.function(scenario.name, "add-messages", redis)
        gets = self.function(scenario.name, "get-thread", redis)
        watches = self.function(scenario.name, "watch-thread", redis)
        creates = self.function(scenario.name, "create-thread", redis)
        scenario.logs = [adds.log, gets.log, watches.log, redis.redis_log]
        workers = [self.worker(scenario.name, redis, index) for index in range(2)]
        threads, admin, member = self.make_threads(creates.port)
        creates.signal(signal.SIGTERM)
        load = Load(threads, admin, member, [adds.port], gets.port, watches.port).start()
        kills = kills_with_pending = 0
        rng = random.Random(self.arguments.seed)
        worker_logs = set()
        try:
            wait_until(lambda: len(load.acks) >= 20, WARMUP * 3)
            injected = now()
            spread = min(KILL_SPREAD, max(20.0, self.remaining() - 150))
            # Random points in the load, fixed in advance so that the kills span `spread` seconds.
            schedule = sorted(injected + rng.uniform(0, spread) for _ in range(WORKER_KILLS))
            while kills < WORKER_KILLS:
                time.sleep(max(0.0, schedule[kills] - now()))
                slot = rng.randrange(len(workers))
                workers[slot].kill()
                worker_logs.add(workers[slot].log)
                kills += 1
                dead_consumer = f"{socket.gethostname()}-{workers[slot].proc.pid}"  # the default consumer name
                workers[slot] = self.worker(scenario.name, redis, f"{slot}")
                if pending_of(redis.port, dead_consumer) > 0:
                    kills_with_pending += 1
            lifted = now()
            log(f"  c: {kills} workers SIGKILLed over {lifted - injected:.0f} s, {kills_with_pending} holding pending entries")
        finally:
            load.stop()
        stopped = now()
        scenario.check("some kills hit a worker holding pending entries (the fault has teeth)", kills_with_pending > 0,
                       f"{kills_with_pending} of {kills}")
        scenario.notes.append(f"{kills_with_pending} of {kills} kills left pending entries behind")
        scenario.summarize(load, injected, lifted)
        scenario.common_checks(load, read_waits_may_run_out=True)
        by_thread = scenario.stream_checks(redis.port, load)
        caught = []

        def settled():
            pending, lag = group_state(redis.port)
            caught.append((pending, lag))
            views = [redis.call("HGET", f"{NAMESPACE}:{hash_tag(fnv1a32(t) % PARTITIONS)}:rm:thread:{t}", "version")
                     for t in threads]
            return pending == 0 and lag == 0 and all(int(v or 0) == len(by_thread[t]) for v, t in zip(views, threads))
        started = now()
        caught_up = wait_until(settled, CATCH_UP_DEADLINE, 0.25)
        scenario.recovery = (now() - stopped) if caught_up else None
        scenario.check("workers catch up (pending 0, lag 0, every thread view at its stream version)", caught_up,
                       f"pending/lag {caught[-1]} after {now() - started:.0f} s")
        for worker in workers:
            worker.signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
        projected = dump_read_model(redis.port)
        output = run_cli(self.binary, "rebuild", "--redis-url", redis.url, "--namespace", NAMESPACE)
        rebuilt = dump_read_model(redis.port)
        differing = sorted(k for k in set(projected) | set(rebuilt) if projected.get(k) != rebuilt.get(k))
        detail = "; ".join(f"{k}: workers {projected.get(k, 'missing')[:120]!r} vs rebuild {rebuilt.get(k, 'missing')[:120]!r}"
                           for k in differing[:3])
        scenario.check("the read model equals a rebuild", not differing and projected,
                       f"{len(differing)} of {len(rebuilt)} keys differ ({output.strip()}); {detail}")
        scenario.logs += sorted(worker_logs)[:2]
        scenario.watch_check(load, by_thread)
        return scenario

    # ---- d: function and serve SIGKILLed

    def scenario_process_kills(self):
        scenario = Scenario(self, "d", "SIGKILL of `function add-messages`, then of `serve`, each restarted")
        redis = self.redis(scenario.name)
        serve = self.serve(scenario.name, redis)
        adds = self.function(scenario.name, "add-messages", redis)
        scenario.logs = [serve.log, adds.log, redis.redis_log]
        threads, admin, member = self.make_threads(serve.port)
        load = Load(threads, admin, member, [serve.port, adds.port], serve.port, serve.port).start()
        recoveries = []
        try:
            wait_until(lambda: len(load.acks) >= 20, WARMUP * 3)
            time.sleep(WARMUP)
            injected = now()
            for process in (adds, serve):
                process.kill()
                log(f"  d: {process.label} SIGKILLed with {len(load.acks)} commands acknowledged")
                process.start()  # the same port: clients carry on
                lifted = now()
                recovered = wait_until(lambda: [a for a in load.acks if a[4] >= lifted and a[5] == process.port],
                                       RECOVERY_DEADLINE, 0.05)
                scenario.check(f"a new {process.label} carries on (writes through it succeed)", recovered,
                               f"no 2xx through port {process.port} within {RECOVERY_DEADLINE:.0f} s")
                if recovered:
                    recoveries.append(min(a[4] for a in recovered) - lifted)
                time.sleep(WARMUP)
            end = now()
            time.sleep(HOLD_AFTER)
        finally:
            load.stop()
        scenario.recovery = max(recoveries) if len(recoveries) == 2 else None
        scenario.summarize(load, injected, end)
        scenario.common_checks(load)
        resets = collections.Counter(o.label() for o in load.outcomes if o.status is None)
        scenario.notes.append(f"connection errors while processes were down: {dict(resets)}")
        by_thread = scenario.stream_checks(redis.port, load)
        scenario.watch_check(load, by_thread)
        return scenario

    # ---- e: SIGTERM

    def scenario_sigterm(self):
        scenario = Scenario(self, "e", "SIGTERM to `serve` during load")
        redis = self.redis(scenario.name)
        serve = self.serve(scenario.name, redis)
        # A second process on the same Redis, to write while serve drains.
        adds = self.function(scenario.name, "add-messages", redis)
        scenario.logs = [serve.log, adds.log]
        threads, admin, member = self.make_threads(serve.port)
        quiet = self.make_quiet_thread(serve.port, admin)
        load = Load(threads, admin, member, [serve.port], serve.port, serve.port).start()
        # Reads certainly in flight at the signal: each waits for version 2 of a thread nobody
        # writes to. Version 2 is put in the thread's stream only, not announced in the change
        # log, so the read model stays at 1 while the write side says version 2 exists (a
        # minVersion above the stream's version would be refused at once). The write below,
        # made through the other process after SIGTERM, is announced; the projector closes the
        # gap from the stream. The reads get their 200 only if serve keeps serving them and
        # keeps projecting while it drains.
        redis.call("XADD", thread_stream_key(quiet), "2-0", "type", "MessagesAdded", "at", str(int(time.time() * 1000)),
                   "actor", admin, "cmd", "chaos-unannounced", "data", json.dumps(
                       {"messages": [{"id": "01J0000000000000000000QT02", "senderId": admin, "text": "unannounced",
                                      "mentions": []}]}, separators=(",", ":")))
        waiting = []
        waiters = [threading.Thread(target=lambda: waiting.append(request(
            "read", serve.port, "GET", f"/v1/threads/{quiet}?accountId={admin}&minVersion=2")), daemon=True)
            for _ in range(WAITING_READS)]
        try:
            wait_until(lambda: len(load.acks) >= 20 and load.watch_connects, WARMUP * 3)
            time.sleep(WARMUP)
            for waiter in waiters:
                waiter.start()
            time.sleep(0.5)
            ended_before = load.watch_ended_at
            injected = now()
            serve.signal(signal.SIGTERM)
            load.watch_stop.set()  # no reconnect: we measure the end of the open stream
            time.sleep(0.3)
            late_write = request("write", adds.port, "POST", f"/v1/threads/{quiet}/messages/add",
                                 json.dumps({"accountId": admin, "messages": [{"text": "while serve drains"}]}),
                                 {"Content-Type": "application/json"})
            exited = wait_until(lambda: serve.proc.poll() is not None, 15, 0.05)
            exit_time = now()
            watch_end = wait_until(lambda: load.watch_ended_at != ended_before and load.watch_ended_at, 5, 0.02)
            for waiter in waiters:
                waiter.join(timeout=CLIENT_TIMEOUT + 2)
        finally:
            load.stop()
            if serve.alive():
                serve.kill()
            adds.kill()
        scenario.summarize(load, injected, exit_time)
        scenario.notes.append(f"serve exited {exit_time - injected:.2f} s after SIGTERM")
        status = serve.proc.poll()
        scenario.check("serve exits with status 0 after SIGTERM", exited and status == 0,
                       f"{'exit status ' + str(status) if exited else 'still running 15 s after SIGTERM'}")
        took = (watch_end - injected) if watch_end else None
        scenario.check(f"the open watch stream ends within {WATCH_END_LIMIT:.0f} s of the signal",
                       took is not None and took <= WATCH_END_LIMIT,
                       f"ended after {took:.2f} s" if took is not None else "did not end within 5 s")
        scenario.recovery = None
        # A request whose connection opened in the last moments before the signal may not have
        # reached the server yet: the closing listener (or the close of a connection the server
        # saw no request on) resets it, as with any server; clients retry those. Requests older
        # than ARRIVAL_GRACE were certainly being served, and must finish.
        in_flight = [o for o in load.outcomes
                     if o.started < injected - ARRIVAL_GRACE and injected <= o.ended and o.kind in ("write", "read")]
        racing = [o for o in load.outcomes
                  if injected - ARRIVAL_GRACE <= o.started < injected <= o.ended and o.kind in ("write", "read")]
        failed = collections.Counter(o.label() for o in in_flight if o.status is None or o.status >= 500)
        scenario.check("in-flight requests finish (none 5xx, none reset)", not failed,
                       f"{len(in_flight)} in flight at the signal; failed: {dict(failed)}")
        scenario.check("the write through the other process during the drain is acknowledged",
                       late_write.status == 200, f"answered {late_write.label()}")
        answered = collections.Counter(o.label() for o in waiting)
        scenario.check(f"{WAITING_READS} reads waiting for minVersion at the signal are answered 200",
                       answered.get("200", 0) == WAITING_READS, f"answers: {dict(answered)}")
        late = collections.Counter(o.label() for o in load.outcomes if o.started >= injected)
        raced = collections.Counter(o.label() for o in racing)
        scenario.notes.append(f"{len(in_flight)} in flight at SIGTERM; sent within {ARRIVAL_GRACE * 1000:.0f} ms "
                              f"before it: {dict(raced)}; sent after it: {dict(late)}")
        scenario.common_checks(load)
        scenario.stream_checks(redis.port, load)
        return scenario

    # ---- run

    def run(self, names):
        table = {
            "a-everysec": lambda: self.scenario_redis_kill("everysec"),
            "a-always": lambda: self.scenario_redis_kill("always"),
            "b": self.scenario_redis_freeze,
            "c": self.scenario_worker_kills,
            "d": self.scenario_process_kills,
            "e": self.scenario_sigterm,
        }
        for name in names:
            if self.remaining() < 30:
                failed = Scenario(self, name, "not run")
                failed.check(f"runs within the {RUN_BUDGET / 60:.0f} min budget", False, "budget spent")
                self.results.append(failed)
                continue
            log(f"scenario {name}")
            began = now()
            try:
                scenario = table[name]()
            except Exception as error:  # a scenario that cannot run is a failed scenario
                scenario = Scenario(self, name, "error")
                scenario.check("the scenario runs to its end", False, f"{type(error).__name__}: {error}")
            finally:
                # Clients told to stop first, then the processes (a frozen Redis gets SIGCONT), so no
                # client thread waits on a request that nobody will answer.
                loads = LOADS[:]
                LOADS.clear()
                for load in loads:
                    load.stop_event.set()
                    load.watch_stop.set()
                PROCESSES.stop_all()
                for load in loads:
                    load.stop()
                    load.stop_watch()
            scenario.seconds = now() - began
            log(f"scenario {name}: {'PASS' if scenario.passed else 'FAIL'} in {scenario.seconds:.0f} s"
                + "".join(f"\n    note: {n}" for n in scenario.notes))
            self.results.append(scenario)
            if not scenario.passed:
                self.finding(scenario)


def table_text(results):
    header = ["fault", "load held (req/s)", "acknowledged", "lost", "5xx (by status)", "recovery (s)", "result"]
    rows = []
    for s in results:
        fivexx = ", ".join(f"{status}: {count}" for status, count in sorted(s.fivexx.items())) or "none"
        rows.append([f"{s.name}: {s.fault}", f"{s.held:.0f}" if s.held is not None else "-", str(s.acked),
                     str(s.lost) if s.lost is not None else "-", fivexx,
                     f"{s.recovery:.2f}" if s.recovery is not None else "-", "PASS" if s.passed else "FAIL"])
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def failures_text(results):
    lines = []
    for s in results:
        for name, ok, detail in s.checks:
            if not ok:
                lines.append(f"- **{s.name}** {name}: {detail}")
    return "\n".join(lines) or "- none"


def machine():
    version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.strip()
    return f"nproc {os.cpu_count()}, {version}"


def describe_binary(binary):
    """A temporary copy's path says nothing: its size, time and digest identify the build."""
    data = Path(binary).read_bytes()
    stamp = datetime.datetime.fromtimestamp(Path(binary).stat().st_mtime).strftime("%Y-%m-%d %H:%M")
    return f"threadweave {len(data) / 1e6:.0f} MB, built {stamp}, sha256 {hashlib.sha256(data).hexdigest()[:12]}"


def write_doc(results, command, binary, seconds):
    section = (f"{BEGIN_MARK}\n\nLatest run: `{command}` on {datetime.date.today().isoformat()}, "
               f"{seconds:.0f} s; machine: {machine()}; binary: {describe_binary(binary)}.\n\n{table_text(results)}\n\n"
               f"Failed checks:\n\n{failures_text(results)}\n\n{END_MARK}")
    text = DOC.read_text() if DOC.exists() else f"# Reliability\n\n{BEGIN_MARK}\n{END_MARK}\n"
    if BEGIN_MARK in text and END_MARK in text:
        head, rest = text.split(BEGIN_MARK, 1)
        text = head + section + rest.split(END_MARK, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    DOC.write_text(text)


def self_test():
    """The stream checks catch what they claim to (no threadweave needed): a lost acknowledgement,
    a gap, a command appended twice, a partial command, a message of no command; and pass a good stream."""
    workdir = tempfile.mkdtemp(prefix="threadweave-chaos-selftest.")
    failures = []
    try:
        redis = ChaosRedis(resolve_binary(), workdir, "everysec")
        redis.start()

        class Recorded:
            pass

        def run_case(name, events, acks, sent, expect_lost, expect_problem):
            redis.call("FLUSHALL")
            load = Recorded()
            load.threads, load.acks, load.sent = ["T1"], acks, sent
            for version, message_ids, key in events:
                redis.call("XADD", thread_stream_key("T1"), f"{version}-0", "type", "MessagesAdded", "cmd", key,
                           "data", json.dumps({"messages": [{"id": m} for m in message_ids]}))
            lost, _, problems, _, _ = check_streams(redis.port, load)
            if (lost > 0) != expect_lost or bool(problems) != expect_problem:
                failures.append(f"{name}: lost {lost}, problems {problems}")
            log(f"self-test {name}: lost {lost}, {len(problems)} problems")

        sent = {"k1": ("T1", ["m1"]), "k2": ("T1", ["m2", "m3"]), "k3": ("T1", ["m4"])}
        good = [(1, ["m1"], "k1"), (2, ["m2", "m3"], "k2")]
        acks = [("T1", 1, ["m1"], "k1", 0, 0), ("T1", 2, ["m2", "m3"], "k2", 0, 0)]
        run_case("good stream", good, acks, sent, False, False)
        run_case("lost acknowledgement", good[:1], acks, sent, True, False)
        run_case("gap", [good[0], (3, ["m2", "m3"], "k2")], acks[:1], sent, False, True)
        run_case("command twice", good + [(3, ["m1"], "k1")], acks, sent, False, True)
        run_case("partial command", [good[0], (2, ["m2"], "k2")], acks[:1], sent, False, True)
        run_case("message of no command", good + [(3, ["zz"], "k9")], acks, sent, False, True)
        run_case("acknowledged at another version", good, [("T1", 2, ["m1"], "k1", 0, 0)], sent, True, False)
    finally:
        PROCESSES.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    for failure in failures:
        log(f"self-test FAILED: {failure}")
    sys.exit(1 if failures else 0)


def resolve_binary():
    binary = os.environ.get("THREADWEAVE_BIN")
    if not binary:
        path = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], capture_output=True, text=True,
                              check=True, cwd=ROOT).stdout.strip()
        binary = str(Path(path) / "threadweave")
    if not os.access(binary, os.X_OK):
        sys.exit(f"chaos: no threadweave binary at {binary}: build it (swift build -c release) or set THREADWEAVE_BIN")
    return binary


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="a-everysec,a-always,b,c,d,e", help="comma-separated scenarios")
    parser.add_argument("--keep", action="store_true", help="keep logs and data directories even when all pass")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/RELIABILITY.md")
    parser.add_argument("--seed", type=int, default=int(time.time()), help="seed for the worker-kill schedule")
    parser.add_argument("--self-test", action="store_true", help="check the stream checks against made-up streams, then exit")
    arguments = parser.parse_args()
    if arguments.self_test:
        self_test()
    names = [n.strip() for n in arguments.only.split(",") if n.strip()]
    binary = resolve_binary()
    if shutil.which("redis-server") is None:
        sys.exit("chaos: redis-server not found (make deps installs it)")

    def interrupted(signum, _frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)  # also when started with SIGINT ignored (a background job)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())

    workdir = tempfile.mkdtemp(prefix="threadweave-chaos.")
    command = "make chaos" if os.environ.get("MAKELEVEL") else "scripts/chaos.py " + " ".join(
        shlex.quote(a) for a in sys.argv[1:])
    log(f"chaos: {binary}; work directory {workdir}; seed {arguments.seed}; {machine()}")
    suite = Suite(binary, workdir, arguments)
    interrupted = None
    try:
        suite.run(names)
    except KeyboardInterrupt as reason:
        interrupted = str(reason) or "SIGINT"
        log(f"chaos: interrupted ({interrupted}); every process stopped")
    finally:
        PROCESSES.stop_all()
    seconds = now() - suite.started
    print(f"\nThreadWeave chaos, {seconds:.0f} s ({machine()}):\n\n{table_text(suite.results)}\n")
    print(f"Failed checks:\n{failures_text(suite.results)}\n")
    passed = suite.results and all(s.passed for s in suite.results) and len(suite.results) == len(names)
    if interrupted:
        print(f"INTERRUPTED ({interrupted}) after {len(suite.results)} of {len(names)} scenarios: not a result")
    if not arguments.no_docs and suite.results and not interrupted:
        write_doc(suite.results, command, binary, seconds)
    if passed and not arguments.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        failed_any = any(not r.passed for r in suite.results)
        print(f"logs and data: {workdir}" + (f"; findings appended to {suite.findings_path}" if failed_any else ""))
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
