#!/usr/bin/env bash
# Runs a command next to a throwaway redis-server: a random free loopback
# port, its own data directory, stopped (by its pid) and removed afterwards.
# The command sees the server as TEST_REDIS_URL.
set -euo pipefail

dir=$(mktemp -d "${TMPDIR:-/tmp}/threadweave-redis.XXXXXX")
pid=""
cleanup() {
    if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$dir"
}
trap cleanup EXIT

for _ in $(seq 1 20); do
    port=$(( (RANDOM << 15 | RANDOM) % 40000 + 20000 ))
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --logfile "$dir/redis.log" \
        --save "" --appendonly no --daemonize no &
    pid=$!
    for _ in $(seq 1 100); do
        if grep -q "Ready to accept connections" "$dir/redis.log" 2>/dev/null; then break 2; fi
        if ! kill -0 "$pid" 2>/dev/null; then break; fi
        sleep 0.05
    done
    kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
    pid=""; : > "$dir/redis.log"
done
[[ -n "$pid" ]] || { echo "with-redis: could not start redis-server" >&2; exit 1; }

echo "with-redis: redis-server pid $pid on 127.0.0.1:$port (data in $dir)" >&2
TEST_REDIS_URL="redis://127.0.0.1:$port" "$@"
