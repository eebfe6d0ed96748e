#!/usr/bin/env python3
"""make bench (rebuild): how long `threadweave rebuild` takes over many events.

Starts a private redis-server, runs `threadweave setup`, writes --events events straight into
thread streams exactly as tw_append lays them out (entry ID <version>-0, fields
`type at actor cmd data`): per thread one ThreadCreated and then MessagesAdded events of one
63-character message each. Writing them through the command path would take longer than the
rebuild itself; the rebuild reads only the thread streams, so it cannot tell the difference.
Then it times `threadweave rebuild`, prints its progress lines as they come, and checks a
sample of the rebuilt threads (version and message count) in the generation it switched to.
"""

import argparse
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_redis import LocalRedis  # noqa: E402
from resp import Resp  # noqa: E402

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CREATOR = "01HZ0000000000000000REB1D0"
TEXT = "a message of sixty-three characters, about as long as most are."


def ulid(milliseconds):
    timestamp = "".join(CROCKFORD[(milliseconds >> shift) & 31] for shift in range(45, -5, -5))
    return timestamp + "".join(random.choice(CROCKFORD) for _ in range(16))


def partition(thread_id, partitions):
    digest = 0x811C9DC5
    for byte in thread_id.encode():
        digest = ((digest ^ byte) * 0x01000193) & 0xFFFFFFFF
    return digest % partitions


def write_events(redis, namespace, partitions, events, per_thread):
    """Writes the events; answers the thread ids."""
    threads, pipeline, written = [], [], 0
    now = int(time.time() * 1000)
    while written < events:
        thread = ulid(now)
        threads.append(thread)
        key = f"{namespace}:{{p{partition(thread, partitions):02d}}}:thread:{thread}"
        count = min(per_thread, events - written)
        for version in range(1, count + 1):
            if version == 1:
                kind = "ThreadCreated"
                data = (f'{{"administratorIds":[],"creatorId":"{CREATOR}","memberIds":[],'
                        f'"threadId":"{thread}","title":"rebuild bench"}}')
            else:
                kind = "MessagesAdded"
                data = (f'{{"messages":[{{"id":"{ulid(now + version)}","mentions":[],'
                        f'"senderId":"{CREATOR}","text":"{TEXT}"}}]}}')
            pipeline.append(("XADD", key, f"{version}-0", "type", kind, "at", now + version,
                             "actor", CREATOR, "cmd", ulid(now + version), "data", data))
        written += count
        if len(pipeline) >= 20_000:
            redis.pipeline(pipeline)
            pipeline = []
    if pipeline:
        redis.pipeline(pipeline)
    return threads


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", required=True, help="threadweave binary (the release build)")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--events-per-thread", type=int, default=100)
    parser.add_argument("--namespace", default="tw")
    options = parser.parse_args()

    redis = LocalRedis(options.binary).start()  # a temporary data directory, removed afterwards
    try:
        common = ["--redis-url", redis.url, "--namespace", options.namespace, "--log-level", "error"]
        subprocess.run([options.binary, "setup"] + common, check=True, capture_output=True)
        with Resp(redis.port, timeout=60) as connection:
            partitions = int(connection.call("HGET", f"{options.namespace}:config", "partitions"))
            started = time.monotonic()
            threads = write_events(connection, options.namespace, partitions, options.events,
                                   options.events_per_thread)
            print(f"wrote {options.events} events in {len(threads)} threads in "
                  f"{time.monotonic() - started:.1f} s; used_memory "
                  f"{connection.call('INFO', 'memory').split('used_memory:')[1].split()[0]} bytes", flush=True)

            started = time.monotonic()
            rebuild = subprocess.Popen([options.binary, "rebuild"] + common, stderr=subprocess.PIPE, text=True)
            for line in rebuild.stderr:
                print(f"  {line.rstrip()}", flush=True)
            status = rebuild.wait()
            seconds = time.monotonic() - started
            if status != 0:
                sys.exit(f"rebuild exited with status {status}")
            print(f"rebuild: {options.events} events in {seconds:.1f} s, {options.events / seconds:,.0f} events/s",
                  flush=True)

            generation = int(connection.call("HGET", f"{options.namespace}:config", "readModel") or 0)
            segment = f":g{generation}" if generation else ""
            problems = 0
            for thread in random.sample(threads, min(100, len(threads))):
                key = f"{options.namespace}:{{p{partition(thread, partitions):02d}}}{segment}:rm:thread:{thread}"
                version, messages = connection.call("HMGET", key, "version", "messageCount")
                expected = options.events_per_thread if thread != threads[-1] else None
                if version is None or (expected and (int(version) != expected or int(messages) != expected - 1)):
                    problems += 1
                    print(f"  {key}: version {version}, messageCount {messages}", flush=True)
            if problems:
                sys.exit(f"{problems} sampled threads were not rebuilt as written")
            print("sampled 100 rebuilt threads: versions and message counts as written")
    finally:
        redis.stop()


if __name__ == "__main__":
    main()
