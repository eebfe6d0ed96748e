"""schemathesis hooks of `make test-api` (loaded through SCHEMATHESIS_HOOKS by scripts/api_fuzz.py).

- JSON Schema cannot say that two fields differ: create-thread refuses a `parentThreadId` that
  names the thread itself (400, as the document says). Such a body is not a valid request, so
  it is left out rather than counted as a schema-valid request the server rejected.
- Cursor paging of list-threads and list-messages is being implemented on another branch; until
  it is merged the code ignores `cursor` (list-threads pages by `offset`, list-messages by
  `after`), so cases that send one test nothing real. Delete that part with the merge: the
  document already describes `cursor`."""

import schemathesis


@schemathesis.hook
def filter_case(context, case):
    operation = case.operation.definition.raw.get("operationId")
    if operation in ("create-thread", "invoke-create-thread"):
        body = case.body
        return not (isinstance(body, dict) and body.get("threadId") is not None
                    and body.get("threadId") == body.get("parentThreadId"))
    if operation in ("list-threads", "invoke-list-threads", "list-messages", "invoke-list-messages"):
        carried = case.body if operation.startswith("invoke-") else case.query
        return not (isinstance(carried, dict) and "cursor" in carried)
    return True
