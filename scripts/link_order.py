#!/usr/bin/env python3
"""make link-order: writes scripts/link-order.txt, the order in which the release link lays out
the functions the processes run, so that they sit together in the binary.

Why: a process's resident memory is mostly the binary's own code pages, and the kernel maps a
file's pages in 64 KiB windows around each page a process touches. The ~2 MiB of code a
`function` process runs was spread over 30 MiB of `.text`, so start-up alone mapped 15 MiB of it.
Compiled with one section per function (`-function-sections`, `-ffunction-sections`) and linked
with this file (`--section-ordering-file`, gold), those functions come first and together.

How: runs the given release binary (debug info stripped: valgrind 3.19 cannot read it) under
`valgrind --tool=callgrind` from start to exit, once as `serve` under a walk through every
operation, and once as each function process answering its own requests, all against a private
redis-server; then writes `.text.<symbol>` for every function that ran: those that ran while the
processes answered requests first, most instructions first (so that a request's code shares as few
pages and cache lines as it can with the rest), then those that only ran at start and stop, then
the sections no profile can name (the C++ static constructors, Swift's symbol-less helpers).
A function missing from the file (new code since it was written) is still linked, only outside
the block: regenerate after larger changes. Needs valgrind (`apt-get install valgrind`).

`--check BINARY` (make test-release) shows that a release binary was linked by the file: most of
the functions it names that the binary holds lie together, in a span as long as their own bytes
(about 83% when the file is fresh, 22-25% for a binary built without RELEASE_FLAGS, or from objects
compiled before them), and warns when the binary holds fewer than 80% of them (the file is stale).
"""

import argparse
import bisect
import collections
import json
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_http import release_binary, request, start_threadweave, stop_serve  # noqa: E402
from local_cluster import descriptors  # noqa: E402
from local_redis import LocalRedis  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "scripts" / "link-order.txt"
CREATOR = "01HZ0000000000000000A11CE0"
MEMBER = "01HZ00000000000000000B0B00"
ADMIN = "01HZ000000000000000CAR0100"
STRANGER = "01HZ0000000000000MA110RY00"


def expect(answer, *statuses):
    status, body = answer
    if status not in statuses:
        raise RuntimeError(f"answered {status}, expected {statuses}: {body[:200]!r}")
    return body


def open_watch(port, path):
    """Opens an SSE stream, reads its first bytes, hangs up."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as stream:
        stream.sendall(f"GET {path} HTTP/1.1\r\nHost: link-order\r\n\r\n".encode())
        head = stream.recv(4096)
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"watch {path} was answered {head[:300]!r}")


def drive_serve(port):
    """Every operation once or more through the REST routes, good requests and refused ones;
    returns a thread id for the function processes."""
    thread = expect(request(port, "POST", "/v1/threads/create",
                            {"accountId": CREATOR, "title": "link order", "memberIds": [MEMBER]}), 201)
    thread = json.loads(thread)["threadId"]
    base = f"/v1/threads/{thread}"
    for index in range(20):
        expect(request(port, "POST", base + "/messages/add",
                       {"accountId": MEMBER, "messages": [{"text": f"hello {index}"}, {"text": "agenda"}]}), 200)
    expect(request(port, "POST", base + "/administrator-ids/join", {"accountId": CREATOR, "accountIds": [ADMIN]}), 200)
    expect(request(port, "POST", base + "/member-ids/join", {"accountId": CREATOR, "accountIds": [STRANGER]}), 200)
    added = expect(request(port, "POST", base + "/messages/add",
                           {"accountId": STRANGER, "messages": [{"text": "hi", "mentions": [MEMBER]}]}), 200)
    expect(request(port, "POST", base + "/messages/remove",
                   {"accountId": STRANGER, "messageIds": [json.loads(added)["messageIds"][0]]}), 200)
    expect(request(port, "POST", base + "/member-ids/leave", {"accountId": STRANGER, "accountIds": [STRANGER]}), 200)
    expect(request(port, "POST", base + "/messages/add", {"accountId": MEMBER, "messages": [{"text": "   "}]}), 400)
    expect(request(port, "POST", base + "/messages/add", {"accountId": STRANGER, "messages": [{"text": "x"}]}), 403)
    expect(request(port, "POST", "/function/add-messages",
                   {"threadId": thread, "accountId": ADMIN, "messages": [{"text": "by name"}]}), 200)
    for _ in range(10):
        expect(request(port, "GET", f"{base}?accountId={CREATOR}&minVersion=3"), 200)
        expect(request(port, "GET", f"{base}/messages?accountId={ADMIN}&limit=10"), 200)
        expect(request(port, "GET", f"{base}/administrator-ids?accountId={CREATOR}"), 200)
        expect(request(port, "GET", f"{base}/member-ids?accountId={CREATOR}"), 200)
        expect(request(port, "GET", f"/v1/threads?accountId={CREATOR}&limit=10"), 200)
    expect(request(port, "GET", f"{base}?accountId={STRANGER}"), 403, 404)
    expect(request(port, "GET", "/metrics"), 200)
    open_watch(port, f"{base}/events?accountId={CREATOR}")
    other = expect(request(port, "POST", "/v1/threads/create", {"accountId": CREATOR, "title": "gone"}), 201)
    expect(request(port, "POST", f"/v1/threads/{json.loads(other)['threadId']}/destroy", {"accountId": CREATOR}), 200)
    return thread


def invocation(name, thread):
    """A body `name` accepts on POST / (it may still refuse it by the rules: that code runs too)."""
    body = {"threadId": thread, "accountId": CREATOR}
    if name == "create-thread":
        return {"accountId": CREATOR, "title": "by function"}
    if name == "add-messages":
        body["messages"] = [{"text": "by function"}]
    if name == "remove-messages":
        body["messageIds"] = ["01M8EE6MYE4AK38BBD0ESS1NES"]
    if name.startswith(("join-", "leave-")):
        body["accountIds"] = [ADMIN]
    if name.startswith("list-"):
        body["limit"] = 5
    return body


def drive_function(name, port, thread):
    if name == "watch-thread":
        open_watch(port, f"/?threadId={thread}&accountId={CREATOR}")
        return
    for _ in range(1 if name == "destroy-thread" else 20):
        request(port, "POST", "/", invocation(name, thread))
    expect(request(port, "POST", "/", "not an object"), 400)
    expect(request(port, "GET", "/metrics"), 200)


def profiled(binary, workdir, command, redis_url, drive, serving, starting):
    """Runs `threadweave <command>` under callgrind until `drive(port)` returns, adding the instructions
    spent while it answered to `serving` and those of its start and stop to `starting`; returns what
    `drive` returned."""
    profile = Path(workdir) / f"callgrind.{'-'.join(command)}"
    callgrind = ["valgrind", "--tool=callgrind", "--dump-instr=no", "--demangle=no", "--compress-strings=no",
                 f"--callgrind-out-file={profile}", binary]
    process, port = start_threadweave(callgrind[0], workdir, callgrind[1:] + command, redis_url, "warning",
                                      ["--auth", "none"] if command[0] == "function" else [],
                                      log_name=f"{'-'.join(command)}.log", ready_timeout=300)
    try:
        # Each dump writes the counts so far to <profile>.<n> and zeroes them.
        subprocess.run(["callgrind_control", "--dump", str(process.pid)], check=True, capture_output=True)
        result = drive(port)
        subprocess.run(["callgrind_control", "--dump", str(process.pid)], check=True, capture_output=True)
    finally:
        stop_serve(process)
    self_costs(f"{profile}.1", starting)
    self_costs(f"{profile}.2", serving)
    self_costs(profile, starting)
    return result


def self_costs(profile, costs):
    """Adds each function's own instructions (not its callees') from a callgrind profile."""
    function, skip_next = None, False
    with open(profile, errors="replace") as lines:
        for line in lines:
            if skip_next:  # the inclusive cost of the call named on the line before
                skip_next = False
            elif line.startswith("fn="):
                function = line[3:].strip()
                costs[function] += 0
            elif line.startswith("calls="):
                skip_next = True
            elif function and line[:1] in "0123456789+-*":
                fields = line.split()
                if len(fields) >= 2:
                    costs[function] += int(fields[1])


def check(binary, order_file):
    """Exits 1 unless most functions the order file names lie together in `binary`."""
    names = [line.strip()[len(".text."):] for line in open(order_file)
             if line.startswith(".text.") and not any(glob in line for glob in "*?[")]
    addresses, sizes = {}, {}
    symbols = subprocess.run(["nm", "--print-size", "--defined-only", binary], check=True, capture_output=True,
                             text=True).stdout
    for line in symbols.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[2] in "tTwW":
            addresses.setdefault(fields[3], int(fields[0], 16))
            sizes.setdefault(fields[3], int(fields[1], 16))
    held = sorted(addresses[name] for name in names if name in addresses)
    if not held:
        sys.exit(f"link-order: {binary} holds none of the functions {order_file} names")
    span = sum(sizes[name] for name in set(names) if name in sizes)
    together = max(bisect.bisect_right(held, start + span) - index for index, start in enumerate(held))
    share, found = together / len(held), len(held) / len(names)
    print(f"link-order: {binary} holds {found:.0%} of the {len(names)} functions {order_file} names; "
          f"{share:.0%} of those lie together in {span / 2**20:.1f} MiB")
    if found < 0.8:
        print("link-order: warning: the file is stale, `make link-order` writes it again", file=sys.stderr)
    if share < 0.7:
        sys.exit("link-order: the functions are not laid out in the file's order: was the binary built with "
                 "RELEASE_FLAGS, from objects compiled with them (remove .build/*/release once)?")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", help="the release threadweave (default: the release build's)")
    parser.add_argument("--out", default=str(OUTPUT))
    parser.add_argument("--check", metavar="BINARY", help="only check that BINARY was linked by --out's order")
    options = parser.parse_args()
    if options.check:
        check(options.check, options.out)
        return
    binary = options.binary or release_binary()
    with tempfile.TemporaryDirectory(prefix="threadweave-link-order.") as workdir:
        stripped = str(Path(workdir) / "threadweave")
        subprocess.run(["objcopy", "--strip-debug", binary, stripped], check=True)
        serving, starting = collections.Counter(), collections.Counter()
        with LocalRedis(binary, Path(workdir) / "redis") as redis:
            subprocess.run([binary, "setup", "--redis-url", redis.url], check=True, capture_output=True)
            thread = profiled(stripped, workdir, ["serve"], redis.url, drive_serve, serving, starting)
            # Every function of functions/*.json, destroy-thread last: the others act on the thread it destroys.
            for name in sorted(descriptors(ROOT / "functions"), key=lambda name: name == "destroy-thread"):
                profiled(stripped, workdir, ["function", name], redis.url,
                         lambda port, name=name: drive_function(name, port, thread), serving, starting)
                print(f"link-order: profiled {name}", file=sys.stderr)
    # The code that answers requests first, hottest first, so that it shares as few pages and cache
    # lines with the rest as it can; then what only starting and stopping ran.
    hottest_first = lambda costs: [name for name, _ in sorted(costs.items(), key=lambda item: -item[1])
                                   if not name.startswith("0x")]
    answering = hottest_first(serving)
    names = answering + [name for name in hottest_first(starting) if name not in serving]
    with open(options.out, "w") as out:
        out.write("# Generated by `make link-order` (scripts/link_order.py): the functions the processes run (those\n"
                  "# answering requests first, most instructions first, then those of start-up), laid out together\n"
                  "# by the release link (gold's --section-ordering-file).\n")
        out.writelines(f".text.{name}\n" for name in names)
        # The C++ libraries' static constructors, which every process runs, share one name; Swift's
        # closure-context destroyers and unnamed helpers have no symbol to profile them by, and the
        # same names in every object: all of them (about 180 KiB) go right after.
        out.write(".text.startup\n.text..Lobjectdestroy*\n.text..L__unnamed_*\n")
    print(f"link-order: {len(answering)} functions answering requests, {len(names) - len(answering)} more at start-up"
          f" -> {options.out}")


if __name__ == "__main__":
    main()
