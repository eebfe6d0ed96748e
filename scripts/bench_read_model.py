#!/usr/bin/env python3
"""Big threads and list-threads against one `threadweave serve` (which runs the
read-model worker) on its own redis-server, over HTTP.

  big-thread    a thread of --members members, built through the write path (create
                with 1,000, then join-member batches of 1,000); then --messages messages
                one at a time, each followed by get-thread with minVersion = the version
                add-messages answered: append (request sent) -> visible in the read model.
                Target p99 <= 20 ms, whatever the member count.
  list-threads  one account in --account-threads threads, activity shuffled by messages
                in random threads; list-threads (limit 20) timed --lists times; then one
                paging through all of them by cursor, checked to list each thread once,
                latest activity first. Target p99 <= 10 ms.

  scripts/bench_read_model.py --binary .build/release/threadweave [--scenario big-thread|list-threads|all]
"""
import argparse
import json
import random
import sys
import tempfile
import time
import uuid
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_http import start_serve, stop_serve  # noqa: E402
from local_redis import LocalRedis  # noqa: E402

BATCH = 1000  # ids in one command's account list (InputLimits.accountIds)


def account_id():
    return "01J" + uuid.uuid4().hex[:23].upper()  # hex digits are all Crockford base32: a valid ULID


def percentile(samples, fraction):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def summary(samples):
    return {"n": len(samples), "p50": round(percentile(samples, 0.5), 2), "p99": round(percentile(samples, 0.99), 2),
            "max": round(max(samples), 2)}


class Client:
    """One kept-alive HTTP connection to serve."""

    def __init__(self, port):
        self.connection = HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method, path, body=None, expect=(200, 201)):
        headers = {"Content-Type": "application/json"} if body is not None else {}
        self.connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        if response.status not in expect:
            sys.exit(f"{method} {path} answered {response.status}: {data[:300]!r}")
        return json.loads(data)


def big_thread(client, members, messages):
    creator = account_id()
    accounts = [account_id() for _ in range(members - 1)]
    started = time.monotonic()
    created = client.call("POST", "/v1/threads/create",
                          {"accountId": creator, "title": "big thread", "memberIds": accounts[:BATCH - 1]})
    thread, version = created["threadId"], created["version"]
    for start in range(BATCH - 1, len(accounts), BATCH):
        version = client.call("POST", f"/v1/threads/{thread}/member-ids/join",
                              {"accountId": creator, "accountIds": accounts[start:start + BATCH]})["version"]
    # The last join projected: the thread view counts every member.
    view = client.call("GET", f"/v1/threads/{thread}?accountId={creator}&minVersion={version}")
    built = time.monotonic() - started
    if view["memberCount"] < members - 1:
        sys.exit(f"the read model counts {view['memberCount']} members, expected {members - 1} or more")

    visible, get_only = [], []
    senders = [creator] + random.sample(accounts, 9)
    for index in range(messages):
        sender = senders[index % len(senders)]
        sent = time.monotonic()
        version = client.call("POST", f"/v1/threads/{thread}/messages/add",
                              {"accountId": sender, "messages": [{"text": f"to {members} members, number {index}"}]})["version"]
        appended = time.monotonic()
        client.call("GET", f"/v1/threads/{thread}?accountId={sender}&minVersion={version}")
        done = time.monotonic()
        visible.append((done - sent) * 1000)
        get_only.append((done - appended) * 1000)
    return {"scenario": "big-thread", "members": members, "builtInSeconds": round(built, 1),
            "appendToVisibleMs": summary(visible), "getThreadWithMinVersionMs": summary(get_only)}


def list_threads(client, count, lists):
    account = account_id()
    threads, last_version = [], {}
    started = time.monotonic()
    for index in range(count):
        answer = client.call("POST", "/v1/threads/create", {"accountId": account, "title": f"thread {index}"})
        threads.append(answer["threadId"])
    # Shuffle the activity order: messages in a random half of the threads.
    for thread in random.sample(threads, count // 2):
        last_version[thread] = client.call("POST", f"/v1/threads/{thread}/messages/add",
                                           {"accountId": account, "messages": [{"text": "activity"}]})["version"]
    built = time.monotonic() - started
    # Caught up: the last message's thread shows its version in the read model.
    thread, version = list(last_version.items())[-1]
    client.call("GET", f"/v1/threads/{thread}?accountId={account}&minVersion={version}")

    samples = []
    for _ in range(lists):
        sent = time.monotonic()
        page = client.call("GET", f"/v1/threads?accountId={account}&limit=20")
        samples.append((time.monotonic() - sent) * 1000)
    if page["total"] != count or len(page["threads"]) != 20:
        sys.exit(f"list-threads answered total {page['total']} and {len(page['threads'])} threads")

    listed, cursor, pages = [], None, 0
    paging = time.monotonic()
    while True:
        path = f"/v1/threads?accountId={account}&limit=100" + (f"&cursor={quote(cursor)}" if cursor else "")
        page = client.call("GET", path)
        pages += 1
        listed += [(entry["id"], entry["lastActivityAt"]) for entry in page["threads"]]
        cursor = page.get("nextCursor")
        if not cursor:
            break
    paged_in = (time.monotonic() - paging) * 1000
    ids = [entry[0] for entry in listed]
    if sorted(ids) != sorted(threads):
        sys.exit(f"paging listed {len(ids)} threads ({len(set(ids))} distinct), expected each of {count} once")
    if any(a[1] < b[1] for a, b in zip(listed, listed[1:])):
        sys.exit("paging is not in latest-activity-first order")
    return {"scenario": "list-threads", "accountThreads": count, "builtInSeconds": round(built, 1),
            "firstPageOf20Ms": summary(samples), "pagingAllBy100": {"pages": pages, "totalMs": round(paged_in, 1)}}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--scenario", choices=["big-thread", "list-threads", "all"], default="all")
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--account-threads", type=int, default=1000)
    parser.add_argument("--lists", type=int, default=500)
    parser.add_argument("--log-level", default="error")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="threadweave-bench-read-model."))
    redis = LocalRedis(args.binary, workdir / "redis", ["--appendonly", "yes", "--appendfsync", "everysec"]).start()
    serve = None
    try:
        serve, port = start_serve(args.binary, workdir, redis.url, args.log_level)
        client = Client(port)
        reports = []
        if args.scenario in ("big-thread", "all"):
            report = big_thread(client, args.members, args.messages)
            reports.append(report)
            print(f"big thread of {report['members']} members (built in {report['builtInSeconds']} s): append -> visible "
                  f"p50 {report['appendToVisibleMs']['p50']} ms, p99 {report['appendToVisibleMs']['p99']} ms "
                  f"(target p99 <= 20 ms); get-thread with minVersion alone p99 {report['getThreadWithMinVersionMs']['p99']} ms")
        if args.scenario in ("list-threads", "all"):
            report = list_threads(client, args.account_threads, args.lists)
            reports.append(report)
            print(f"list-threads, an account in {report['accountThreads']} threads: first page of 20 "
                  f"p50 {report['firstPageOf20Ms']['p50']} ms, p99 {report['firstPageOf20Ms']['p99']} ms (target p99 <= 10 ms); "
                  f"all {report['accountThreads']} by cursor in {report['pagingAllBy100']['pages']} pages, "
                  f"{report['pagingAllBy100']['totalMs']} ms")
        print(json.dumps({"runs": reports}))
    finally:
        stop_serve(serve)
        redis.stop()


if __name__ == "__main__":
    main()
