"""A minimal RESP2 client for the project's scripts (chaos.py, soak.py): one
connection, pipelined commands, replies as str / int / list / None."""

import socket


class RespError(Exception):
    pass


class Resp:
    """One connection to Redis; enough RESP2 for SCAN, XRANGE, XPENDING, INFO and friends."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.reader = self.sock.makefile("rb")

    def close(self):
        try:
            self.reader.close()
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()

    def call(self, *args):
        return self.pipeline([args])[0]

    def pipeline(self, commands):
        """Sends every command, then reads every reply; an error reply raises at its place."""
        parts = []
        for args in commands:
            parts.append(b"*%d\r\n" % len(args))
            for arg in args:
                data = arg if isinstance(arg, bytes) else str(arg).encode()
                parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.sock.sendall(b"".join(parts))
        replies = []
        error = None
        for _ in commands:
            try:
                replies.append(self._read())
            except RespError as failure:
                replies.append(failure)
                error = error or failure
        if len(commands) == 1 and error:
            raise error
        return replies

    def _read(self):
        line = self.reader.readline()
        if not line:
            raise ConnectionError("Redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            length = int(rest)
            if length < 0:
                return None
            data = self.reader.read(length + 2)[:-2]
            return data.decode(errors="replace")
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [self._read() for _ in range(count)]
        raise RespError(f"unexpected reply {line!r}")


def redis_call(port, *args, timeout=5.0):
    """One command on a connection of its own."""
    with Resp(port, timeout) as connection:
        return connection.call(*args)


def consumer_group_backlog(redis, logs, group):
    """(pending, lag) of consumer group `group` summed over `logs`, from one pipeline of XINFO
    GROUPS: entries delivered and not acknowledged, and entries not delivered yet (a lag Redis
    cannot tell counts 0). A log that does not exist, or that another node of a cluster serves
    (MOVED), adds nothing here; any other error raises."""
    pending = lag = 0
    for reply in redis.pipeline([("XINFO", "GROUPS", log) for log in logs]):
        if isinstance(reply, RespError):
            if "no such key" in str(reply).lower() or str(reply).startswith("MOVED"):
                continue
            raise reply
        for fields in reply:
            info = dict(zip(fields[::2], fields[1::2]))
            if info.get("name") == group:
                pending += int(info.get("pending") or 0)
                lag += int(info.get("lag") or 0)
    return pending, lag
