"""`threadweave redis-server` as a child of a script: the project's one launcher of a private
redis-server (the Swift side's `withLocalRedisServer`, which `serve` and the Swift tests use too):
a free loopback port, its own data directory, ready once PING is answered by the pid it started.

The launcher prints {"url", "pid", "port", "dataDir"} as one JSON line once the server answers and
keeps it up until its stdin closes or it gets SIGTERM; it never outlives this script, even if the
script is killed (its stdin, a pipe this script holds, closes then)."""

import json
import os
import select
import subprocess
import time
from pathlib import Path

from resp import Resp

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
    """One `threadweave redis-server` child; `directory` None lets it use (and remove) a temporary one."""

    def __init__(self, binary=None, directory=None, arguments=(), log=None):
        self.binary = threadweave_binary(binary)
        self.directory = directory
        self.arguments = list(arguments)
        self.log = log
        self.process = None
        self.url = self.pid = self.port = self.data_dir = None

    def start(self):
        command = [self.binary, "redis-server", "--log-level", "warning"]
        if self.directory is not None:
            command += ["--data-dir", str(self.directory)]
        command += ["--"] + self.arguments
        stderr = open(self.log, "ab") if self.log else None
        try:
            self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr)
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

    def stop(self):
        """Closes the launcher's stdin: it stops Redis (SIGTERM, an AOF is flushed) and exits."""
        if self.process is None:
            return
        try:
            self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.terminate()  # our own child, by its pid
            self.process.wait(timeout=STOP_TIMEOUT)
        self.process.stdout.close()

    def call(self, *args, timeout=5.0):
        with Resp(self.port, timeout) as connection:
            return connection.call(*args)

    def __enter__(self):
        return self.start()

    def __exit__(self, *_):
        self.stop()
