#!/usr/bin/env python3
"""Runs a command next to a throwaway redis-server (`make test`, `make bench`):

    with_redis.py CMD [ARG...]

The server gets a free loopback port and its own temporary data directory; the command
sees it as TEST_REDIS_URL. Afterwards the server is stopped by its pid and the directory
removed; the exit status is the command's."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from redis_server import RedisServer  # noqa: E402


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    # Interrupted, the command is killed and the server stopped on the way out, as a shell would report it.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda number, _frame: sys.exit(128 + number))
    directory = tempfile.mkdtemp(prefix="threadweave-redis.")
    server = RedisServer(directory)
    try:
        server.start()
        print(f"with-redis: redis-server pid {server.pid} on 127.0.0.1:{server.port} (data in {directory})",
              file=sys.stderr, flush=True)
        status = subprocess.run(sys.argv[1:], env=dict(os.environ, TEST_REDIS_URL=server.url)).returncode
    finally:
        if server.process:
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)
    # Killed by a signal: report it as a shell would.
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    sys.exit(main())
