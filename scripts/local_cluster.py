#!/usr/bin/env python3
"""The Kubernetes topology as local processes (`make local-cluster`).

    local_cluster.py [--background] [--claim-idle-seconds N] [--redis-url URL]   start; print the base URL and port table
    local_cluster.py stop                                       stop exactly the pids the state file lists
    local_cluster.py router --port P --functions-dir D --backend NAME=PORT ...   (started by `start`)

`start` runs a private redis-server (AOF on, through `threadweave redis-server`:
its pid in the table is the launcher's, and SIGTERM to it stops Redis), `threadweave setup`, one
`threadweave function <name>` per functions/*.json, two `threadweave worker`s
(consumers worker-0 and worker-1) and the router: one base URL that forwards
each descriptor's method + route, and `/function/<name>`, to that function's
process, streaming answers (server-sent events included). Every port is free
at run time; `PORT` fixes the router's. Children run in their own sessions, so
a Ctrl-C reaches only this supervisor, which stops them in order (router,
functions, workers, then Redis) by pid. With --redis-url the processes use that Redis instead (one node, or any node of a
Redis Cluster), which is neither started nor stopped here.

Environment: THREADWEAVE_BIN (default: `swift build --show-bin-path`),
THREADWEAVE_CLUSTER_DIR (state, logs and Redis data; default
.threadweave/local-cluster), PORT, LOG_LEVEL.
"""

import argparse
import http.client
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from helpers import free_port  # noqa: E402
from local_redis import LocalRedis  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WORKER_CONSUMERS = ["worker-0", "worker-1"]
STOP_ORDER = ["router", "function", "worker", "redis"]  # Redis last: workers ack before it goes
START_ATTEMPTS = 5  # a port chosen free can be taken before the child binds it
STARTUP_TIMEOUT = 60.0  # generous: 14 processes start at once on a busy machine
# A worker finishes its batch (<= 1 s read), a function its requests; an open watch ends at
# its next write (a ping within 15 s) once its client is gone.
STOP_TIMEOUT = 20.0


class Interrupted(Exception):
    """SIGINT or SIGTERM reached the supervisor."""


def cluster_dir():
    return Path(os.environ.get("THREADWEAVE_CLUSTER_DIR") or ROOT / ".threadweave" / "local-cluster").resolve()


def state_path():
    return cluster_dir() / "state.json"


def is_alive(pid):
    """True while pid runs; a zombie (exited, not yet reaped) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): kill(0) is all we know


def runs_program(pid, program):
    """Guards against a recycled pid: the process must still run what we started."""
    try:
        return program.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists() and is_alive(pid)
    except OSError:
        return False


def http_answer(port, path, timeout=2.0):
    """(status, Server header) of GET path; (None, None) when nothing answers."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        return answer.status, answer.getheader("Server") or ""
    except OSError:
        return None, None
    finally:
        connection.close()


def function_ready(entry):
    # The Server header names the function: another process that took the port does not pass.
    return http_answer(entry["port"], "/healthz", timeout=1) == (200, f"threadweave-{entry['name']}")


def worker_ready(entry):
    return http_answer(entry["port"], "/healthz", timeout=1) == (200, "threadweave-worker")


def router_ready(entry):
    status, server = http_answer(entry["port"], "/readyz")
    return status == 200 and server.startswith(RouterHandler.server_version)


def descriptors(functions_dir):
    """name -> (method, route) for every functions/*.json: a new descriptor appears by itself."""
    found = {}
    for path in sorted(Path(functions_dir).glob("*.json")):
        descriptor = json.loads(path.read_text())
        found[descriptor["name"]] = (descriptor["method"].upper(), descriptor["route"])
    return found


# ---------------------------------------------------------------- supervisor


class Children:
    """Child processes, each logging to <logs>/<name>.log, listening ones on ports drawn free;
    stopped only by their pids. Used by the local cluster and by scripts/soak.py."""

    def __init__(self, logs, environment=None):
        self.logs = logs
        self.environment = environment  # None: the children inherit ours
        self.children = []  # dicts: role, name, pid, port, log, program; in start order
        self.popens = {}  # pid -> Popen, to reap our own children

    def save(self):
        """Records the children after every change; the local cluster writes its state file."""

    def spawn(self, role, name, port, argv, program):
        log = self.logs / f"{name}.log"
        with open(log, "ab") as output:
            # Own session: a terminal's Ctrl-C reaches only the supervisor, which stops children in order.
            child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                     start_new_session=True, cwd=ROOT, env=self.environment)
        entry = {"role": role, "name": name, "pid": child.pid, "port": port, "log": str(log), "program": program}
        self.children.append(entry)
        self.popens[child.pid] = child
        self.save()  # at once: `stop` can clean up even if this supervisor is killed mid-start
        return entry

    def start_redis(self, binary, directory, arguments, detached=False):
        """Redis through `threadweave redis-server`, ready when this returns. The entry's pid is
        the launcher's (SIGTERM to it stops Redis; it exits when Redis does), `redisPid` Redis's own."""
        server = LocalRedis(binary, directory, arguments, log=self.logs / "redis-launcher.log",
                            detached=detached).start()
        entry = {"role": "redis", "name": "redis", "pid": server.process.pid, "port": server.port,
                 "log": str(server.redis_log), "program": server.binary, "redisPid": server.pid}
        self.children.append(entry)
        self.popens[server.process.pid] = server.process
        self.save()
        return entry

    def forget(self, entry):
        stop_processes([entry], self.popens)
        self.children.remove(entry)
        self.save()

    def start_with_retries(self, role, name, make_argv, program, ready, fixed_port=None):
        """Starts a listening child on a free port, again on another port if it dies before `ready`."""
        for _ in range(START_ATTEMPTS):
            port = fixed_port or free_port(self.ports())
            entry = self.spawn(role, name, port, make_argv(port), program)
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while time.monotonic() < deadline and self.popens[entry["pid"]].poll() is None:
                if ready(entry):
                    return entry
                time.sleep(0.1)
            self.forget(entry)
            if fixed_port:
                break
        raise RuntimeError(f"{name} did not start; see {self.logs / (name + '.log')}")

    def ports(self):
        return {c["port"] for c in self.children}


class Cluster(Children):
    def __init__(self, binary, directory, background):
        super().__init__(directory / "logs")
        self.binary = binary
        self.directory = directory
        self.background = background  # the children outlive this supervisor
        self.base_url = self.redis_url = None  # known once the router, resp. Redis, runs
        self.supervisor_pid = None  # set while a foreground supervisor owns the children

    def start(self, claim_idle_seconds, router_port, redis_url=None):
        self.logs.mkdir(parents=True, exist_ok=True)
        if redis_url:
            self.redis_url = redis_url
        else:
            redis = self.start_redis(self.binary, self.directory / "redis", ["--appendonly", "yes"], self.background)
            self.redis_url = f"redis://127.0.0.1:{redis['port']}"
        common = ["--redis-url", self.redis_url]  # LOG_LEVEL and LOG_FORMAT reach the children through the environment

        setup = subprocess.run([self.binary, "setup"] + common, capture_output=True, text=True, cwd=ROOT)
        if setup.returncode != 0:
            raise RuntimeError(f"threadweave setup failed:\n{setup.stdout}{setup.stderr}")
        print(setup.stdout.strip(), flush=True)

        for consumer in WORKER_CONSUMERS:
            # Each worker serves /healthz, /readyz and /metrics on a port of its own.
            self.start_with_retries(
                "worker", consumer,
                lambda port, c=consumer: [self.binary, "worker", "--consumer", c, "--host", "127.0.0.1",
                                          "--port", str(port), "--claim-idle-seconds", str(claim_idle_seconds)] + common,
                self.binary, worker_ready)

        functions = descriptors(ROOT / "functions")
        # Start every function at once, then wait: start-up dominates on a busy machine.
        pending = {}
        for name in functions:
            port = free_port(self.ports())
            pending[name] = self.spawn("function", name, port, self.function_argv(name, port, common), self.binary)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while pending and time.monotonic() < deadline:
            for name, entry in list(pending.items()):
                if function_ready(entry):
                    del pending[name]
                elif self.popens[entry["pid"]].poll() is not None:
                    # Most likely its port was taken meanwhile: start it again on another.
                    self.forget(entry)
                    del pending[name]
                    self.start_with_retries("function", name, lambda port, n=name: self.function_argv(n, port, common),
                                            self.binary, function_ready)
            time.sleep(0.1)
        if pending:
            raise RuntimeError(f"functions not healthy after {STARTUP_TIMEOUT:.0f} s: {', '.join(pending)}")
        for worker in (c for c in self.children if c["role"] == "worker"):
            if self.popens[worker["pid"]].poll() is not None:
                raise RuntimeError(f"{worker['name']} exited; see {worker['log']}")

        backends = [f"{c['name']}={c['port']}" for c in self.children if c["role"] == "function"]
        router_program = str(Path(__file__).resolve())
        router = self.start_with_retries(
            "router", "router",
            lambda port: [sys.executable, router_program, "router", "--port", str(port),
                          "--functions-dir", str(ROOT / "functions")] + [f"--backend={b}" for b in backends],
            router_program, router_ready, fixed_port=router_port)
        self.base_url = f"http://127.0.0.1:{router['port']}"
        self.save()

    def function_argv(self, name, port, common):
        # A laptop cluster trusts accountId, like `serve`; deployments run jwt.
        return [self.binary, "function", name, "--host", "127.0.0.1", "--port", str(port), "--auth", "none"] + common

    def save(self):
        state = {"baseURL": self.base_url, "redisURL": self.redis_url, "supervisorPid": self.supervisor_pid,
                 "logs": str(self.logs), "processes": self.children}
        temporary = state_path().with_suffix(".tmp")
        temporary.write_text(json.dumps(state, indent=2) + "\n")
        temporary.replace(state_path())

    def print_table(self):
        print(f"\nThreadWeave local cluster: {self.base_url}\n")
        print(f"  {'component':<30} {'pid':>7}  {'port':>5}  log")
        order = {"router": 0, "function": 1, "worker": 2, "redis": 3}
        for entry in sorted(self.children, key=lambda c: order[c["role"]]):
            label = entry["name"] if entry["role"] in ("router", "redis") else f"{entry['role']} {entry['name']}"
            port = entry["port"] or "-"
            log = os.path.relpath(entry["log"])
            print(f"  {label:<30} {entry['pid']:>7}  {port:>5}  {entry['log'] if log.startswith('..') else log}")
        print(f"\n  try:  BASE_URL={self.base_url} scripts/walkthrough.sh", flush=True)


def stop_processes(entries, popens=None):
    """SIGTERM by pid in STOP_ORDER, a role at a time; SIGKILL what outlives STOP_TIMEOUT. Returns survivors."""
    survivors = []
    for role in STOP_ORDER + [None]:
        group = [e for e in entries if (e["role"] == role) or (role is None and e["role"] not in STOP_ORDER)]
        group = [e for e in group if is_alive(e["pid"]) and runs_program(e["pid"], e["program"])]
        for entry in group:
            os.kill(entry["pid"], signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for entry in group:
            while not reaped(entry["pid"], popens) and time.monotonic() < deadline:
                time.sleep(0.05)
            if not reaped(entry["pid"], popens):
                print(f"{entry['name']} (pid {entry['pid']}) ignored SIGTERM: SIGKILL", file=sys.stderr)
                os.kill(entry["pid"], signal.SIGKILL)
                time.sleep(0.2)
                if not reaped(entry["pid"], popens):
                    survivors.append(entry)
    return survivors


def reaped(pid, popens):
    if popens and pid in popens:
        return popens[pid].poll() is not None
    return not is_alive(pid)


def read_state():
    try:
        return json.loads(state_path().read_text())
    except FileNotFoundError:
        return None


def command_start(arguments):
    previous = read_state()
    if previous and any(is_alive(p["pid"]) and runs_program(p["pid"], p["program"]) for p in previous["processes"]):
        sys.exit(f"a local cluster already runs at {previous['baseURL']} (state in {state_path()}); "
                 f"stop it first: scripts/local-cluster.sh stop")
    binary = os.environ.get("THREADWEAVE_BIN") or str(
        Path(subprocess.run(["swift", "build", "--show-bin-path"], capture_output=True, text=True, check=True,
                            cwd=ROOT).stdout.strip()) / "threadweave")
    if not os.access(binary, os.X_OK):
        sys.exit(f"no threadweave binary at {binary}: run `swift build` or set THREADWEAVE_BIN")
    router_port = int(os.environ["PORT"]) if os.environ.get("PORT") else None

    # A parent may hand us blocked signals (Foundation's Process in a test runner does); children
    # inherit the mask, and a blocked SIGTERM would turn every graceful stop into a SIGKILL.
    signal.pthread_sigmask(signal.SIG_SETMASK, set())

    def interrupt(signum, _frame):
        raise Interrupted(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    cluster_dir().mkdir(parents=True, exist_ok=True)
    cluster = Cluster(binary, cluster_dir(), arguments.background)
    cluster.supervisor_pid = None if arguments.background else os.getpid()
    try:
        cluster.start(arguments.claim_idle_seconds, router_port, arguments.redis_url)
        cluster.print_table()
        if arguments.background:
            print("  stop: scripts/local-cluster.sh stop", flush=True)
            return
        print("  Ctrl-C stops every process above\n", flush=True)
        while True:
            for entry in list(cluster.children):
                status = cluster.popens[entry["pid"]].poll()
                if status is not None:
                    print(f"{entry['role']} {entry['name']} (pid {entry['pid']}) exited with status {status}; "
                          f"see {entry['log']}", file=sys.stderr, flush=True)
                    cluster.children.remove(entry)
                    cluster.save()
            time.sleep(0.5)
    except Interrupted as signal_name:
        print(f"\n{signal_name}: stopping the local cluster", file=sys.stderr, flush=True)
        stop_and_forget(cluster)
    except BaseException as error:
        print(f"local-cluster: {error}", file=sys.stderr, flush=True)
        stop_and_forget(cluster)
        sys.exit(1)


def stop_and_forget(cluster):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the orderly stop short
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    survivors = stop_processes(cluster.children, cluster.popens)
    state_path().unlink(missing_ok=True)
    if survivors:
        sys.exit(f"could not stop pids {[s['pid'] for s in survivors]}")


def command_stop(_arguments):
    state = read_state()
    if state is None:
        print(f"no local cluster state in {state_path()}: nothing to stop")
        return
    supervisor = state.get("supervisorPid")
    if supervisor and is_alive(supervisor) and runs_program(supervisor, str(Path(__file__).resolve())):
        # A foreground supervisor stops its own children; wait for it rather than racing it.
        os.kill(supervisor, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT * len(STOP_ORDER)
        while is_alive(supervisor) and time.monotonic() < deadline:
            time.sleep(0.1)
    survivors = stop_processes(state["processes"])
    if survivors:
        sys.exit(f"could not stop pids {[s['pid'] for s in survivors]}")
    state_path().unlink(missing_ok=True)
    print(f"stopped the local cluster at {state['baseURL'] or cluster_dir()}")


# ---------------------------------------------------------------- router

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
              "te", "trailer", "transfer-encoding", "upgrade"}
VIA = "1.1 threadweave-local-cluster"


def route_pattern(template):
    """`/v1/threads/{threadId}/messages` -> a regex matching one path segment per `{parameter}`."""
    segments = ["[^/]+" if s.startswith("{") and s.endswith("}") else re.escape(s) for s in template.split("/")]
    return re.compile("/".join(segments) + "$")


class RouterHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    routes = []  # (pattern, method, name), literal routes first
    backends = {}  # name -> port
    server_version = "threadweave-local-cluster"

    def do_GET(self):
        self.route()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def route(self):
        path, query = urllib.parse.urlsplit(self.path)[2:4]
        if path == "/healthz":
            return self.answer(200, {"status": "ok"})
        if path == "/readyz":
            waiting = [n for n, port in self.backends.items() if http_answer(port, "/readyz")[0] != 200]
            if waiting:
                return self.error(503, "unavailable", f"not ready: {', '.join(waiting)}")
            return self.answer(200, {"status": "ready"})
        if path.startswith("/function/"):
            # /function/<name> is the single-function process's root (DESIGN §4): POST /,
            # or GET /?threadId=…&accountId=… for watch-thread.
            name = path[len("/function/"):]
            if name not in self.backends:
                return self.error(404, "not_found", f"no function named '{name}'")
            return self.forward(name, "/" + (f"?{query}" if query else ""))
        matches = [(method, name) for pattern, method, name in self.routes if pattern.match(path)]
        for method, name in matches:
            if method == self.command:
                return self.forward(name, self.path)
        if matches:
            return self.error(405, "method_not_allowed", f"{path} does not answer {self.command}")
        return self.error(404, "not_found", f"no route for {self.command} {path}")

    def forward(self, name, target):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self.error(411, "length_required", "send the body with a Content-Length")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"content-length"}}
        # Long enough for a query's minVersion wait; a watch stream pings every 15 s.
        backend = http.client.HTTPConnection("127.0.0.1", self.backends[name], timeout=60)
        try:
            backend.request(self.command, target, body=body, headers=headers)
            answer = backend.getresponse()
        except OSError as error:
            backend.close()
            return self.error(502, "bad_gateway", f"{name} did not answer: {error}")
        self.log_message('"%s" %s from %s', self.requestline, answer.status, name)
        try:
            self.relay(answer)
        except OSError:
            self.close_connection = True  # the client went away; closing the backend ends its stream too
        finally:
            backend.close()

    def relay(self, answer):
        self.send_response_only(answer.status, answer.reason)
        for key, value in answer.getheaders():
            if key.lower() not in HOP_BY_HOP:
                self.send_header(key, value)
        self.send_header("Via", VIA)
        if answer.length is not None:  # Content-Length known: relay as is, keep the connection
            self.end_headers()
            self.wfile.write(answer.read())
            return
        # Streamed (server-sent events): pass each piece on as it arrives.
        if self.request_version == "HTTP/1.1":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while piece := answer.read1(65536):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            while piece := answer.read1(65536):
                self.wfile.write(piece)
                self.wfile.flush()

    def answer(self, status, document):
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, status, code, message):
        """The router's own answers, in the functions' error shape but without `Via`."""
        self.answer(status, {"error": {"code": code, "message": message}})


def command_router(arguments):
    routes = descriptors(arguments.functions_dir)
    backends = dict(b.split("=", 1) for b in arguments.backend)
    RouterHandler.backends = {name: int(port) for name, port in backends.items()}
    missing = set(routes) - set(backends)
    if missing:
        sys.exit(f"router: no backend for {', '.join(sorted(missing))}")
    # Literal segments win over parameters: fewer `{…}` first.
    RouterHandler.routes = [(route_pattern(route), method, name)
                            for name, (method, route) in sorted(routes.items(), key=lambda r: r[1][1].count("{"))]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", arguments.port), RouterHandler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"router on http://127.0.0.1:{arguments.port} for {len(routes)} functions", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--background", action="store_true", help="return once everything is ready (tests, CI)")
    parser.add_argument("--claim-idle-seconds", type=int, default=30,
                        help="workers claim entries pending this long with a dead consumer (default 30)")
    parser.add_argument("--redis-url", help="use this Redis (a node of a Redis Cluster too) instead of starting one")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("stop", help="stop the pids the state file lists")
    router = commands.add_parser("router", help="the reverse proxy (started by start)")
    router.add_argument("--port", type=int, required=True)
    router.add_argument("--functions-dir", required=True)
    router.add_argument("--backend", action="append", default=[], help="NAME=PORT, once per function")
    arguments = parser.parse_args()
    {"stop": command_stop, "router": command_router}.get(arguments.command, command_start)(arguments)


if __name__ == "__main__":
    main()
