#!/usr/bin/env python3
"""Redis memory per message: what chat history costs to keep.

Starts its own redis-server (no persistence) and `threadweave serve` (the release
binary by default), creates 10 threads, posts --messages messages of 63 characters
through HTTP, waits until the read model has the last one, and prints Redis's
used_memory growth per message and MEMORY USAGE per key family per message. The
change log (`log`) is trimmed by `serve` every minute once acknowledged, so the
steady state is the total without it.

    scripts/memory_per_message.py [--binary PATH] [--messages 2000]
"""

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_http import release_binary, request, start_serve  # noqa: E402
from local_redis import LocalRedis  # noqa: E402

ACCOUNT = "01HZ0000000000000000BENCH0"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary")
    parser.add_argument("--messages", type=int, default=2000)
    options = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="threadweave-memory."))
    binary = options.binary or release_binary()
    redis = LocalRedis(binary, workdir / "redis", ["--appendonly", "no"]).start()
    try:
        serve, port = start_serve(binary, workdir, redis.url, "error")
    except RuntimeError:
        redis.stop()
        raise
    try:
        threads = [json.loads(request(port, "POST", "/v1/threads/create", {"accountId": ACCOUNT, "title": f"t{i}"})[1])["threadId"]
                   for i in range(10)]
        time.sleep(1)

        def used_memory():
            return int(re.search(r"^used_memory:(\d+)", redis.call("INFO", "memory"), re.M).group(1))

        before = used_memory()
        last = {}
        for index in range(options.messages):
            thread = threads[index % len(threads)]
            status, body = request(port, "POST", f"/v1/threads/{thread}/messages/add",
                                   {"accountId": ACCOUNT, "messages": [{"text": "m" * 63}]})
            last[thread] = json.loads(body)["version"]
        for thread, version in last.items():
            request(port, "GET", f"/v1/threads/{thread}?accountId={ACCOUNT}&minVersion={version}")
        grown = used_memory() - before

        families = {}
        for key in redis.call("KEYS", "*"):
            family = re.sub(r"[0-9A-HJKMNP-TV-Z]{26}", "<id>", key.split(":", 2)[-1])
            families[family] = families.get(family, 0) + int(redis.call("MEMORY", "USAGE", key) or 0)
        per_message = {family: round(size / options.messages) for family, size in families.items()}
        log = per_message.get("log", 0)
        print(f"used_memory growth: {grown / options.messages:.0f} B per message "
              f"({options.messages} messages of 63 characters over {len(threads)} threads)")
        print(f"steady state without the change log (trimmed once acknowledged): {grown / options.messages - log:.0f} B")
        for family, size in sorted(per_message.items(), key=lambda item: -item[1]):
            if size:
                print(f"  {family}: {size} B")
    finally:
        serve.terminate()
        serve.wait()
        redis.stop()


if __name__ == "__main__":
    main()
