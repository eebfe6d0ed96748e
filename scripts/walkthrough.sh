#!/usr/bin/env bash
# A curl walk-through of the command API against a running gateway
# (`threadweave serve`, or `make run`). Each step prints the request as a
# copy-pasteable curl command, then the response status and body; the script
# stops with a non-zero status when a step answers another status than the
# one it expects, so CI can run it against a fresh gateway.
#
#   BASE_URL=http://127.0.0.1:8080 scripts/walkthrough.sh
#
# Against a server in jwt mode, set TOKEN_COMMAND to what mints a token
# for an account (it gets `--account <id>` appended), e.g.
#   TOKEN_COMMAND='threadweave token' THREADWEAVE_JWT_SECRET_FILE=... scripts/walkthrough.sh
# Each request then carries the bearer token of the account it names; the
# commands shown say `$TOKEN` instead of the token itself.
set -euo pipefail

BASE_URL=${BASE_URL:-http://127.0.0.1:8080}
TOKEN_COMMAND=${TOKEN_COMMAND:-}
# Accounts are plain ULIDs.
alice=01HZ0000000000000000A11CE0
bob=01HZ00000000000000000B0B00
carol=01HZ000000000000000CAR0100
mallory=01HZ0000000000000MA110RY00

body_file=$(mktemp)
trap 'rm -f "$body_file"' EXIT

declare -A tokens=()
# token_for <account>: one minted token per account, reused.
token_for() {
    [[ -n "${tokens[$1]:-}" ]] || tokens[$1]=$($TOKEN_COMMAND --account "$1")
    printf '%s' "${tokens[$1]}"
}

# step <expected status> <method> <path> [json body] [extra curl args...]
step() {
    local expected=$1 method=$2 path=$3 data=${4:-}
    shift 4 || shift $#
    local args=(-sS -X "$method" -o "$body_file" -w '%{http_code}' "$@")
    local shown="curl -X $method '$BASE_URL$path'"
    for extra in "$@"; do shown+=" '$extra'"; done
    if [[ -n "$data" ]]; then
        args+=(-H 'Content-Type: application/json' --data "$data")
        shown+=" -H 'Content-Type: application/json' -d '$data'"
    fi
    # The acting account is the one the request names; in jwt mode it comes with its token.
    local actor
    actor=$(sed -n 's/.*accountId[=":]*\([0-9A-Z]\{26\}\).*/\1/p' <<<"$path $data")
    if [[ -n "$TOKEN_COMMAND" && -n "$actor" ]]; then
        args+=(-H "Authorization: Bearer $(token_for "$actor")")
        shown+=" -H \"Authorization: Bearer \$TOKEN\""
    fi
    printf '\n$ %s\n' "$shown"
    status=$(curl "${args[@]}" "$BASE_URL$path")
    printf '< %s\n%s\n' "$status" "$(head -c 2000 "$body_file")"
    if [[ "$status" != "$expected" ]]; then
        echo "walkthrough: expected $expected from $method $path, got $status" >&2
        exit 1
    fi
    response=$(cat "$body_file")
}

field() { sed -n "s/.*\"$1\":\"\\([0-9A-Z]*\\)\".*/\\1/p" <<<"$response"; }
version() { sed -n 's/.*"version":\([0-9]*\).*/\1/p' <<<"$response"; }
first_message_id() { sed -n 's/.*"messageIds":\["\([0-9A-Z]*\)".*/\1/p' <<<"$response"; }

echo "# ThreadWeave walk-through against $BASE_URL"
step 200 GET /healthz
step 200 GET /readyz

if [[ -n "$TOKEN_COMMAND" ]]; then
    echo; echo "# jwt mode: a request without a bearer token is refused (401) and writes nothing"
    args=(-sS -o "$body_file" -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data '{"title":"anonymous"}')
    status=$(curl "${args[@]}" "$BASE_URL/v1/threads/create")
    printf '\n$ curl -X POST %s/v1/threads/create (no Authorization)\n< %s\n%s\n' "$BASE_URL" "$status" "$(cat "$body_file")"
    [[ "$status" == 401 ]] || { echo "walkthrough: expected 401 without a token, got $status" >&2; exit 1; }
fi

echo; echo "# Alice creates a thread with Bob as a member (201, server-generated id)"
step 201 POST /v1/threads/create "{\"accountId\":\"$alice\",\"title\":\"Launch plan\",\"memberIds\":[\"$bob\"]}"
thread=$(field threadId)

echo; echo "# Bob posts two messages; the answer carries their ids and the new version"
step 200 POST "/v1/threads/$thread/messages/add" \
    "{\"accountId\":\"$bob\",\"messages\":[{\"text\":\"Hello!\"},{\"text\":\"Agenda attached\"}]}"
message=$(first_message_id)

echo; echo "# Alice replies to Bob's first message, mentioning him"
step 200 POST "/v1/threads/$thread/messages/add" \
    "{\"accountId\":\"$alice\",\"messages\":[{\"text\":\"Welcome\",\"replyTo\":\"$message\",\"mentions\":[\"$bob\"]}]}"

echo; echo "# An idempotent retry: the same Idempotency-Key answers the same body and appends nothing"
retry_body="{\"accountId\":\"$bob\",\"messages\":[{\"text\":\"sent once\"}]}"
step 200 POST "/v1/threads/$thread/messages/add" "$retry_body" -H 'Idempotency-Key: walkthrough-1'
first=$response
step 200 POST "/v1/threads/$thread/messages/add" "$retry_body" -H 'Idempotency-Key: walkthrough-1'
[[ "$response" == "$first" ]] || { echo "walkthrough: the retry answered differently" >&2; exit 1; }

echo; echo "# Alice makes Carol an administrator"
step 200 POST "/v1/threads/$thread/administrator-ids/join" "{\"accountId\":\"$alice\",\"accountIds\":[\"$carol\"]}"

echo; echo "# Mallory is not a participant: 403"
step 403 POST "/v1/threads/$thread/messages/add" "{\"accountId\":\"$mallory\",\"messages\":[{\"text\":\"hi\"}]}"

echo; echo "# Bad input is refused before anything is written: 400"
step 400 POST "/v1/threads/$thread/messages/add" "{\"accountId\":\"$bob\",\"messages\":[{\"text\":\"   \"}]}"

echo; echo "# Bob removes his own message, then leaves the thread"
step 200 POST "/v1/threads/$thread/messages/remove" "{\"accountId\":\"$bob\",\"messageIds\":[\"$message\"]}"
step 200 POST "/v1/threads/$thread/member-ids/leave" "{\"accountId\":\"$bob\",\"accountIds\":[\"$bob\"]}"

echo; echo "# The same functions by name, OpenFaaS-style: path parameters travel in the body"
step 200 POST /function/add-messages "{\"threadId\":\"$thread\",\"accountId\":\"$carol\",\"messages\":[{\"text\":\"by name\"}]}"

written=$(version)

echo; echo "# Queries read the read model; minVersion waits until it has caught up with our own write"
step 200 GET "/v1/threads/$thread?accountId=$alice&minVersion=$written" "" -i
step 200 GET "/v1/threads/$thread/messages?accountId=$carol&limit=10&minVersion=$written"
step 200 GET "/v1/threads/$thread/administrator-ids?accountId=$alice"
step 200 GET "/v1/threads?accountId=$alice&limit=10"

echo; echo "# Reads are for participants only: 403"
step 403 GET "/v1/threads/$thread?accountId=$mallory"

echo; echo "# Alice destroys the thread; later commands and queries answer 410"
step 200 POST "/v1/threads/$thread/destroy" "{\"accountId\":\"$alice\"}"
destroyed=$(version)
step 410 POST "/v1/threads/$thread/messages/add" "{\"accountId\":\"$alice\",\"messages\":[{\"text\":\"anyone?\"}]}"
step 410 GET "/v1/threads/$thread?accountId=$alice&minVersion=$destroyed"

echo; echo "# Per-function request counters"
printf '\n$ curl %s/metrics\n' "$BASE_URL"
curl -sS "$BASE_URL/metrics" | grep '^threadweave_function_requests_total' || true
echo; echo "walk-through complete"
