"""A private redis-server child for the scripts that need raw control of the process (SIGSTOP,
SIGKILL and restarts mid-run: local_cluster.py, soak.py, chaos.py, bench_http.py): a free loopback
port, its own data directory, extra configuration arguments, ready once PING is answered by the
pid we started, stopped only by that pid. Everything else (with_redis.py, api_fuzz.py) uses
`threadweave redis-server` through local_redis.py, the launcher serve and the Swift tests share."""

import signal
import socket
import subprocess
import time
from pathlib import Path

from resp import Resp, RespError

START_ATTEMPTS = 20  # a port chosen free can be taken before Redis binds it
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def free_port(taken=()):
    """A port the kernel hands out now; it may be taken again before the child binds it,
    so readiness checks also check *who* answers."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port not in taken:
            return port


def command(port, directory, arguments=()):
    """The redis-server command line: loopback only, data in `directory`, no RDB snapshots,
    in the foreground; `arguments` come last, so they may override these."""
    return ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
            "--save", "", "--daemonize", "no"] + list(arguments)


def redis_call(port, *args, timeout=5.0):
    with Resp(port, timeout) as connection:
        return connection.call(*args)


def answers_as(port, pid):
    """PING answers, and INFO names `pid` (not another redis-server on a port just taken)."""
    try:
        with Resp(port, timeout=1) as connection:
            pong, info = connection.pipeline([("PING",), ("INFO", "server")])
    except OSError:
        return False
    return pong == "PONG" and isinstance(info, str) and f"process_id:{pid}" in info.splitlines()


def listening(port):
    """Something answers on the port, LOADING included."""
    try:
        redis_call(port, "PING", timeout=1)
        return True
    except RespError:
        return True
    except OSError:
        return False


def spawn_child(argv, log_path):
    """The default way to run the server: its output to log_path, in its own session, so a
    terminal's Ctrl-C reaches only the script, which stops it."""
    with open(log_path, "ab") as output:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                start_new_session=True)


def wait_until(predicate, timeout, interval=0.02):
    """Polls predicate until it is truthy or timeout passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


class RedisServer:
    """One redis-server child on a free loopback port, logging to <directory>/redis.log.
    `spawn(argv, log_path) -> Popen` lets a caller track the child with its own processes."""

    def __init__(self, directory, arguments=(), spawn=spawn_child):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.log = self.directory / "redis.log"
        self.arguments = list(arguments)
        self.spawn = spawn
        self.port = None
        self.process = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    @property
    def pid(self):
        return self.process.pid

    def start(self):
        """On a free port, again on another if Redis exits or stays silent."""
        for _ in range(START_ATTEMPTS):
            self.port = free_port()
            if self._launch(self.answers):
                return self
        raise RuntimeError(f"redis-server did not start; see {self.log}")

    def restart(self, until_loaded=True, attempts=50):
        """The same port and data directory (an AOF is replayed). `until_loaded=False` returns
        once it listens, LOADING included; a port not yet free again is retried."""
        for _ in range(attempts):
            if self._launch(self.answers if until_loaded else lambda: listening(self.port)):
                return self
            time.sleep(0.1)
        raise RuntimeError(f"redis-server did not restart on port {self.port}; see {self.log}")

    def _launch(self, ready):
        self.process = self.spawn(command(self.port, self.directory, self.arguments), self.log)
        if wait_until(lambda: self.process.poll() is not None or ready(), START_TIMEOUT) and self.process.poll() is None:
            return True
        self.kill()
        return False

    def answers(self):
        """Serving (not LOADING), as the pid we started."""
        return answers_as(self.port, self.pid)

    def signal(self, signum):
        self.process.send_signal(signum)  # a no-op once the child is reaped: never another process

    def stop(self):
        """SIGTERM (after SIGCONT: a frozen Redis cannot act on it); SIGKILL after STOP_TIMEOUT."""
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self):
        self.signal(signal.SIGKILL)
        self.process.wait()

    def call(self, *args, timeout=5.0):
        return redis_call(self.port, *args, timeout=timeout)
