"""`threadweave redis-server` as a child of a script: the project's one launcher of a private
redis-server (the Swift side's `withLocalRedisServer`, which `serve` and the Swift tests use too):
a free loopback port, its own data directory, ready once PING is answered by the pid it started.

The launcher prints {"url", "pid", "port", "dataDir"} as one JSON line once the server answers and
keeps it up until its stdin closes or it gets SIGTERM; it never outlives this script, even if the
script is killed (its stdin, a pipe this script holds, closes then), unless `detached`. It exits
(status 1) as soon as Redis exits by itself, so its pid names Redis for as long as it runs: a
script may signal Redis directly (SIGSTOP, SIGKILL) and restart it on the same port and data."""

import json
import os
import select
import signal
import subprocess
import time
from pathlib import Path

from resp import redis_call

START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


def threadweave_binary(binary=None):
    """--binary, else $THREADWEAVE_BIN, else the debug build's (`swift build --show-bin-path`)."""
    if binary or os.environ.get("THREADWEAVE_BIN"):
        return str(Path(binary or os.environ["THREADWEAVE_BIN"]).resolve())
    root = Path(__file__).resolve().parent.parent
    bin_path = subprocess.run(["swift", "build", "--show-bin-path"], cwd=root, check=True, capture_output=True,
                              text=True).stdout.strip()
    return str(Path(bin_path) / "threadweave")


class LocalRedis:
    """One `threadweave redis-server` child, in its own session (a terminal's Ctrl-C reaches only this
    script, which stops it); `directory` None lets it use (and remove) a temporary one; `log` takes
    the launcher's stderr (Redis logs to <data dir>/redis.log). `detached`: stdin closing does not
    stop it, only SIGTERM to `process.pid` does (a server that outlives this script)."""

    def __init__(self, binary=None, directory=None, arguments=(), log=None, detached=False):
        self.binary = threadweave_binary(binary)
        self.directory = directory
        self.arguments = list(arguments)
        self.log = log
        self.detached = detached
        self.process = None
        self.url = self.pid = self.port = self.data_dir = None

    @property
    def redis_log(self):
        return Path(self.data_dir) / "redis.log"

    def start(self, port=None, ready_when="answering"):
        """`port` None: a free one. `ready_when` "listening" returns as soon as the server accepts
        connections, while it may still answer -LOADING."""
        command = [self.binary, "redis-server", "--log-level", "warning", "--ready-when", ready_when]
        if self.directory is not None:
            command += ["--data-dir", str(self.directory)]
        if port is not None:
            command += ["--port", str(port)]
        if self.detached:
            command += ["--ignore-stdin"]
        command += ["--"] + self.arguments
        stderr = open(self.log, "ab") if self.log else None
        try:
            self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                                            start_new_session=True)
        finally:
            if stderr:
                stderr.close()
        line = self._first_line()
        if not line:
            self.stop()
            raise RuntimeError(f"{' '.join(command)} printed no server (exit status {self.process.returncode})")
        announcement = json.loads(line)
        self.url, self.pid, self.port = announcement["url"], announcement["pid"], announcement.get("port")
        self.data_dir = announcement["dataDir"]
        return self

    def _first_line(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.2)
            if ready:
                return self.process.stdout.readline().decode()
            if self.process.poll() is not None:
                return ""
        return ""

    def restart(self, ready_when="answering"):
        """The same port and data directory (an AOF is replayed), after the server has exited
        (`kill()`); a running one is stopped first."""
        self.stop()
        return self.start(self.port, ready_when)

    def signal(self, signum):
        """To Redis itself (SIGSTOP, SIGCONT, SIGKILL) while its launcher runs: the launcher exits
        as soon as Redis has, so the pid is Redis's as long as it runs."""
        if self.process.poll() is None:
            os.kill(self.pid, signum)

    def kill(self):
        """SIGKILL to Redis: an outage at once, nothing flushed; returns once the launcher has exited."""
        self.signal(signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT)

    def stop(self):
        """SIGTERM to the launcher (our own child, by its pid; a no-op once reaped): it stops Redis
        (SIGCONT, then SIGTERM: an AOF is flushed) and exits."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()  # Redis follows: its supervisor's lifeline, this launcher, is gone
            self.process.wait()
        self.process.stdin.close()
        self.process.stdout.close()

    def call(self, *args, timeout=5.0):
        return redis_call(self.port, *args, timeout=timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *_):
        self.stop()
