"""Small helpers the scripts share: a free loopback port, polling until something holds, and a
process's memory."""

import socket
import time


def free_port(taken=()):
    """A port the kernel hands out now; it may be taken again before the child binds it,
    so readiness checks also check *who* answers."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port not in taken:
            return port


def wait_until(predicate, timeout, interval=0.02):
    """Polls predicate until it is truthy or timeout passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def memory_mib(pid):
    """A process's memory fields of /proc/<pid>/status (VmRSS, RssAnon, RssFile, ...) in MiB;
    empty once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return {key: int(value.split()[0]) / 1024.0 for key, value in
                    (line.split(":", 1) for line in status if line.rstrip().endswith(" kB"))}
    except OSError:
        return {}
