#!/usr/bin/env python3
"""Runs a command next to a throwaway redis-server (`make test`, `make bench`):

    with_redis.py [--binary THREADWEAVE] CMD [ARG...]

The server is `threadweave redis-server` (scripts/local_redis.py): a free loopback port and its
own temporary data directory; the command sees it as TEST_REDIS_URL. The binary is --binary,
else $THREADWEAVE_BIN, else the debug build's, so build it first. Afterwards the server is stopped
and the directory removed; the exit status is the command's."""

import os
import signal
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from local_redis import LocalRedis  # noqa: E402


def main():
    arguments = sys.argv[1:]
    binary = None
    if arguments[:1] == ["--binary"] and len(arguments) >= 2:
        binary, arguments = arguments[1], arguments[2:]
    if not arguments:
        sys.exit(__doc__)
    # Interrupted, the command is killed and the server stopped on the way out, as a shell would report it.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda number, _frame: sys.exit(128 + number))
    with LocalRedis(binary) as server:
        print(f"with-redis: redis-server pid {server.pid} at {server.url} (data in {server.data_dir})",
              file=sys.stderr, flush=True)
        status = subprocess.run(arguments, env=dict(os.environ, TEST_REDIS_URL=server.url)).returncode
    # Killed by a signal: report it as a shell would.
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    sys.exit(main())
