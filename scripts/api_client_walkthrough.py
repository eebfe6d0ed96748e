"""make test-api, part 2: a client generated from the served /openapi.json (openapi-python-client)
walks through a thread's life against the running `serve`; run by scripts/api_fuzz.py with the
venv's Python, after `openapi-python-client generate` wrote the package `threadweave_client`:

    api_client_walkthrough.py PACKAGE_PARENT BASE_URL ADMIN_ID ADMIN_TOKEN MEMBER_ID MEMBER_TOKEN

Create a thread, join a member, add messages, page through them with `nextCursor`, get the thread
and ask again with its ETag (304), decode errors as the document's error schemas (403, 404, 410),
destroy it. Every answer is the generated model the document names for its status; any other
answer or value fails the step and the run (exit status 1)."""

import secrets
import sys

sys.path.insert(0, sys.argv[1])
from threadweave_client import AuthenticatedClient  # noqa: E402
from threadweave_client.api.commands import add_messages, create_thread, destroy_thread, join_members  # noqa: E402
from threadweave_client.api.queries import get_thread, list_messages  # noqa: E402
from threadweave_client.models import (  # noqa: E402
    AccountIdsInput, AddMessagesInput, CommandAnswer, CreateThreadInput, DestroyThreadInput, DestroyThreadResponse403,
    GetThreadResponse404, GetThreadResponse410, MessagesAnswer, NewMessage, ThreadView)
from threadweave_client.types import UNSET  # noqa: E402

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
MESSAGES = 5
PAGE = 2


def expect(step, response, status, model):
    """The answer has `status` and decodes to `model` (None: no body); returns the model."""
    parsed = response.parsed
    if response.status_code != status or (model is None and parsed is not None) or \
            (model is not None and not isinstance(parsed, model)):
        sys.exit(f"api-client: {step}: expected {status} {getattr(model, '__name__', 'no body')}, got "
                 f"{response.status_code} {type(parsed).__name__}: {response.content[:300]!r}")
    print(f"api-client: {step}: {status} {getattr(model, '__name__', 'no body')}")
    return parsed


def check(step, condition, detail):
    if not condition:
        sys.exit(f"api-client: {step}: {detail}")


def main():
    _, _, base_url, admin_id, admin_token, member_id, member_token = sys.argv
    admin = AuthenticatedClient(base_url=base_url, token=admin_token)
    member = AuthenticatedClient(base_url=base_url, token=member_token)

    created = expect("create-thread", create_thread.sync_detailed(
        client=admin, body=CreateThreadInput(title="generated client walk-through")), 201, CommandAnswer)
    thread = created.thread_id
    check("create-thread", created.version == 1, f"version {created.version}, not 1")

    joined = expect("join-members", join_members.sync_detailed(
        thread, client=admin, body=AccountIdsInput(account_ids=[member_id])), 200, CommandAnswer)
    check("join-members", joined.version == 2, f"version {joined.version}, not 2")

    texts = [f"message {n}" for n in range(MESSAGES)]
    added = expect("add-messages", add_messages.sync_detailed(
        thread, client=member, body=AddMessagesInput(messages=[NewMessage(text=text) for text in texts])),
        200, CommandAnswer)
    check("add-messages", added.message_ids is not UNSET and len(added.message_ids) == MESSAGES,
          f"message ids {added.message_ids}")

    seen, cursor, pages = [], UNSET, 0
    while True:
        page = expect(f"list-messages page {pages + 1}", list_messages.sync_detailed(
            thread, client=admin, limit=PAGE, cursor=cursor, min_version=added.version), 200, MessagesAnswer)
        pages += 1
        seen += [message.text for message in page.messages]
        check("list-messages", all(message.sender_id == member_id for message in page.messages), "wrong sender")
        if page.next_cursor is UNSET:
            break
        cursor = page.next_cursor
        check("list-messages", pages < 10, "nextCursor never ends")
    check("list-messages", seen == texts, f"paged {seen}, not {texts}")
    check("list-messages", pages == -(-MESSAGES // PAGE), f"{pages} pages of {PAGE} for {MESSAGES} messages")

    response = get_thread.sync_detailed(thread, client=member, min_version=added.version)
    view = expect("get-thread", response, 200, ThreadView)
    check("get-thread", (view.id, view.creator_id, view.member_count, view.message_count) ==
          (thread, admin_id, 1, MESSAGES),
          f"id {view.id}, creator {view.creator_id}, {view.member_count} members, {view.message_count} messages")
    etag = response.headers.get("etag")
    check("get-thread", etag == f'"{view.version}"', f"ETag {etag!r} for version {view.version}")
    expect("get-thread If-None-Match", get_thread.sync_detailed(thread, client=member, if_none_match=etag), 304, None)

    unknown = "0" + "".join(secrets.choice(CROCKFORD) for _ in range(25))
    missing = expect("get-thread of an unknown thread", get_thread.sync_detailed(unknown, client=admin),
                     404, GetThreadResponse404)
    check("404 error", missing.error.code.value == "thread_not_found" and missing.error.message,
          f"{missing.error.code} {missing.error.message!r}")
    refused = expect("destroy-thread by a member", destroy_thread.sync_detailed(
        thread, client=member, body=DestroyThreadInput()), 403, DestroyThreadResponse403)
    check("403 error", refused.error.code.value == "not_administrator", f"{refused.error.code}")

    destroyed = expect("destroy-thread", destroy_thread.sync_detailed(
        thread, client=admin, body=DestroyThreadInput()), 200, CommandAnswer)
    gone = expect("get-thread after destroy", get_thread.sync_detailed(
        thread, client=admin, min_version=destroyed.version), 410, GetThreadResponse410)
    check("410 error", gone.error.code.value == "thread_destroyed", f"{gone.error.code}")
    print(f"api-client: walk-through passed ({pages} pages of messages, ETag {etag})")


if __name__ == "__main__":
    main()
