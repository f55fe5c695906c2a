"""Client-chosen request ids that make retried mutating calls idempotent."""

from __future__ import annotations

import re

from eid_service.domain.errors import InvalidInput

# UUIDs, ULIDs and "client:counter" styles all fit; no spaces or control characters.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# The refusal of a request id sent again with other content.
REQUEST_ID_REUSED = "REQUEST_ID_REUSED"


def parse_request_id(raw: str, field: str = "request_id") -> str | None:
    """The id as given (compared exactly), or None when the call is not idempotent."""
    if raw == "":
        return None
    if not _REQUEST_ID.fullmatch(raw):
        raise InvalidInput.of(
            field,
            "REQUEST_ID_INVALID",
            "the request id must be 1 to 64 characters of letters, digits and . _ : -",
        )
    return raw
