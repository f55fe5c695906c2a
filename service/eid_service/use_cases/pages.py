"""AIP-158 pages: a size the client may choose within bounds, and an opaque
token naming the last item shown."""

from __future__ import annotations

import base64
import binascii
import re

from eid_service.domain.errors import InvalidInput

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


def page_size(requested: int) -> int:
    if requested < 0:
        raise InvalidInput.of("page_size", "PAGE_SIZE_NEGATIVE", "page_size cannot be negative")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def next_page_token(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode("ascii")).decode("ascii")


def after_id(page_token: str, valid_id: re.Pattern[str]) -> str | None:
    """The id a page token names (None for the first page); InvalidInput if it
    is not a token this service gave."""
    if not page_token:
        return None
    try:
        last_id = base64.urlsafe_b64decode(page_token.encode("ascii")).decode("ascii")
    except (UnicodeError, binascii.Error, ValueError):
        last_id = ""
    if not valid_id.fullmatch(last_id):
        raise InvalidInput.of(
            "page_token", "PAGE_TOKEN_INVALID", "use a next_page_token from an earlier page"
        )
    return last_id
