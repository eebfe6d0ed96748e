#!/usr/bin/env python3
"""make test-api: fuzz `threadweave serve` from its own OpenAPI document.

Starts a private redis-server (free loopback port) and `threadweave serve` against it, then:

1. fetches GET /openapi.json, checks it is byte for byte the repository's
   Sources/FunctionRuntime/openapi.json and validates it with openapi-spec-validator;
2. runs schemathesis (every operation; examples, coverage, fuzzing and stateful phases, the
   last following the document's links: create -> add -> remove -> destroy; every check on;
   configuration in scripts/api-fuzz.toml) against the document as a THREADWEAVE_AUTH=none
   server reads it, where `accountId` is required rather than optional;
3. shows that refused requests wrote nothing. From the recorded exchanges (HAR), the accepted
   commands (2xx) name a thread and the version they left it at. Every thread stream in Redis
   must belong to an accepted create-thread, its entry ids must be exactly 1-0, 2-0, ... n-0
   (no gaps), and every version in it must be one some accepted command answered: one event
   per version, and a version no accepted command answered would be an event a refused (or
   unrecorded) request wrote. Every idempotency record, and every thread id reserved for a
   create-thread's key, must belong to an accepted command sent with that key;
4. shows a client team can generate a client from the document and use it: a second `serve`
   (JWT authentication, namespace `client`) on the same Redis, `openapi-python-client generate
   --url .../openapi.json` (pinned; any error or warning fails), then the generated package walks
   through a thread's life (scripts/api_client_walkthrough.py, run with the venv's Python).

Prints the number of cases run; exits non-zero on any schemathesis failure, accounting miss,
generation problem or walk-through step that does not match.
"""

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import urllib.parse
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_http import request, start_serve  # noqa: E402
from local_redis import LocalRedis  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".build-tools" / "venv" / "bin"
DOCUMENT = ROOT / "Sources" / "FunctionRuntime" / "openapi.json"
COMMAND_ROUTE = re.compile(r"^/(?:v1/threads/(?:create|(?P<thread>[^/]+)/[a-z-]+(?:/[a-z]+)?)|function/(?P<name>[a-z-]+))$")
COMMANDS = {"create-thread", "destroy-thread", "join-administrators", "leave-administrators", "join-members",
            "leave-members", "add-messages", "remove-messages"}


def as_served_without_auth(document):
    """The document as a THREADWEAVE_AUTH=none server reads it: `accountId` required wherever
    it is an input (the document marks it optional because a JWT's `sub` can stand in)."""
    document = json.loads(json.dumps(document))
    document["components"]["parameters"]["accountId"]["required"] = True

    def visit(node):
        if isinstance(node, dict):
            if "accountId" in node.get("properties", {}) and "required" in node and "accountId" not in node["required"]:
                node["required"].append("accountId")
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)
    visit(document["paths"])
    visit(document["components"]["schemas"])
    return document


def accepted_commands(har_path):
    """(threadId, version, idempotency key or None, create?) of every 2xx command answer."""
    entries = json.loads(Path(har_path).read_text())["log"]["entries"]
    accepted = []
    for entry in entries:
        req, resp = entry["request"], entry["response"]
        if req["method"] != "POST" or not 200 <= resp["status"] < 300:
            continue
        path = urllib.parse.urlsplit(req["url"]).path
        match = COMMAND_ROUTE.match(path)
        if not match or (match["name"] and match["name"] not in COMMANDS):
            continue
        answer = json.loads(resp["content"]["text"])
        headers = {h["name"].lower(): h["value"] for h in req.get("headers", [])}
        body = json.loads(req.get("postData", {}).get("text") or "{}")
        key = headers.get("idempotency-key") or (body.get("commandId") if isinstance(body, dict) else None)
        creates = path == "/v1/threads/create" or match["name"] == "create-thread"
        accepted.append((answer["threadId"], answer["version"], key, creates))
    return len(entries), accepted


def check_writes(redis, accepted):
    """The accounting of the module docstring; returns a list of problems (empty: sound)."""
    versions = defaultdict(set)
    created = set()
    keys = defaultdict(set)
    for thread, version, key, creates in accepted:
        versions[thread].add(version)
        if creates:
            created.add(thread)
        if key:
            keys[thread].add(key)
    problems = []
    streams = scan(redis, "tw:{p*}:thread:*")
    for stream in streams:
        thread = stream.rsplit(":", 1)[1]
        ids = [entry[0] for entry in redis.call("XRANGE", stream, "-", "+")]
        expected = [f"{n}-0" for n in range(1, len(ids) + 1)]
        if ids != expected:
            problems.append(f"{stream}: entry ids {ids[:5]}... are not 1-0..{len(ids)}-0")
        if thread not in created:
            problems.append(f"{stream}: no accepted create-thread made this thread")
        unanswered = set(range(1, len(ids) + 1)) - versions[thread]
        if unanswered:
            problems.append(f"{stream}: versions {sorted(unanswered)[:10]} were answered to no accepted command")
    for record in scan(redis, "tw:{p*}:idem:*"):
        _, _, _, thread, _account, key = record.split(":", 5)
        if key not in keys[thread]:
            problems.append(f"{record}: no accepted command on {thread} was sent with key {key!r}")
    for reservation in scan(redis, "tw:{acct:*}:create:*"):
        key = reservation.split(":", 4)[4]
        thread = redis.call("GET", reservation)
        if thread not in created or key not in keys[thread]:
            problems.append(f"{reservation}: reserves {thread}, which no accepted create-thread with this key made")
    return len(streams), problems


CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
GENERATOR_CONFIG = "post_hooks: []\nproject_name_override: threadweave-client\npackage_name_override: threadweave_client\n"


def generated_client_walkthrough(binary, workdir, redis_url):
    """Step 4 of the module docstring; returns a list of problems (empty: the client works)."""
    secret = secrets.token_urlsafe(48)
    serve, port = start_serve(binary, workdir, redis_url, "error", ["--namespace", "client"],
                              {"THREADWEAVE_JWT_SECRET": secret}, "serve-client.log")
    try:
        config = Path(workdir) / "openapi-python-client.yml"
        config.write_text(GENERATOR_CONFIG)
        package_parent = Path(workdir) / "generated-client"
        generation = subprocess.run(
            [VENV / "openapi-python-client", "generate", "--url", f"http://127.0.0.1:{port}/openapi.json",
             "--config", config, "--meta", "none", "--output-path", package_parent / "threadweave_client"],
            capture_output=True, text=True)
        print(generation.stdout + generation.stderr, end="")
        if generation.returncode != 0 or "warning" in (generation.stdout + generation.stderr).lower():
            return [f"openapi-python-client generate failed or warned (exit status {generation.returncode})"]
        accounts = ["0" + "".join(secrets.choice(CROCKFORD) for _ in range(25)) for _ in range(2)]
        tokens = [subprocess.run([binary, "token", "--account", account], check=True, capture_output=True, text=True,
                                 env=dict(os.environ, THREADWEAVE_JWT_SECRET=secret)).stdout.strip()
                  for account in accounts]
        walk = subprocess.run([VENV / "python", ROOT / "scripts" / "api_client_walkthrough.py", package_parent,
                               f"http://127.0.0.1:{port}", accounts[0], tokens[0], accounts[1], tokens[1]])
        return [] if walk.returncode == 0 else ["the generated client's walk-through failed"]
    finally:
        serve.terminate()
        serve.wait(timeout=30)


def scan(redis, pattern):
    cursor, found = "0", []
    while True:
        cursor, batch = redis.call("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
        found.extend(batch)
        if cursor == "0":
            return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", required=True, help="the threadweave binary to fuzz")
    parser.add_argument("--seed", default=os.environ.get("API_FUZZ_SEED"))
    parser.add_argument("--max-examples", type=int, default=None)
    args = parser.parse_args()

    # Kept after the run (git-ignored): serve's log, the HAR of every exchange, the JUnit report.
    workdir = ROOT / ".build-tools" / "api-fuzz"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    redis = LocalRedis(args.binary, Path(workdir) / "redis").start()
    serve = None
    try:
        serve, port = start_serve(str(Path(args.binary).resolve()), workdir, redis.url, "error")
        status, served = request(port, "GET", "/openapi.json")
        if status != 200 or served != DOCUMENT.read_bytes():
            sys.exit(f"GET /openapi.json answered {status}, not the repository's {DOCUMENT.relative_to(ROOT)}")
        subprocess.run([VENV / "openapi-spec-validator", DOCUMENT], check=True)

        fuzzed = Path(workdir) / "openapi-auth-none.json"
        fuzzed.write_text(json.dumps(as_served_without_auth(json.loads(served))))
        har = Path(workdir) / "exchanges.har"
        command = [VENV / "schemathesis", "--config-file", ROOT / "scripts" / "api-fuzz.toml", "run", fuzzed,
                   "--url", f"http://127.0.0.1:{port}", "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful",
                   "--report", "har,junit", "--report-har-path", har, "--report-junit-path", Path(workdir) / "junit.xml",
                   "--output-truncate", "false", "--output-sanitize", "false"]
        if args.seed:
            command += ["--seed", args.seed]
        if args.max_examples:
            command += ["--max-examples", str(args.max_examples)]
        hooks = dict(os.environ, SCHEMATHESIS_HOOKS="api_fuzz_hooks", PYTHONPATH=str(ROOT / "scripts"))
        fuzz = subprocess.run([str(part) for part in command], cwd=workdir, env=hooks)

        requests_sent, accepted = accepted_commands(har)
        stream_count, problems = check_writes(redis, accepted)
        print(f"api-fuzz: {requests_sent} requests sent, {len(accepted)} commands accepted, "
              f"{stream_count} thread streams in Redis")
        for problem in problems:
            print(f"api-fuzz: WRITE ACCOUNTING: {problem}")
        if not problems:
            print("api-fuzz: every stream entry is an accepted command's version; refused requests wrote nothing")
        if serve.poll() is not None:
            problems.append(f"serve exited with {serve.returncode} during the run")
        client_problems = generated_client_walkthrough(str(Path(args.binary).resolve()), workdir, redis.url)
        for problem in client_problems:
            print(f"api-fuzz: GENERATED CLIENT: {problem}")
        problems += client_problems
        if fuzz.returncode != 0 or problems:
            sys.exit(1)
    finally:
        if serve is not None and serve.poll() is None:
            serve.terminate()
            serve.wait(timeout=30)
        redis.stop()


if __name__ == "__main__":
    main()
