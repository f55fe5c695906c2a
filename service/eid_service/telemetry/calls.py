"""What the RPC in progress has learnt about itself, for its log line and its
telemetry: which relying party called, and how it ended.

grpc.aio runs every call in a task of its own, so a context variable holds
the call's record for the code it awaits (a use case names the party)."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

_CURRENT: ContextVar[Call | None] = ContextVar("eid_call", default=None)


class Call:
    """One RPC's record; made only when a log line or telemetry will read it."""

    __slots__ = ("code", "party_id", "reason", "trace_id")

    def __init__(self) -> None:
        self.party_id = ""
        self.code: Any = None  # a grpc.StatusCode once the call has an answer
        self.reason = ""
        self.trace_id = ""  # the server span's trace id, when traced


def begin() -> Call:
    """A new record for the call running in this task."""
    call = Call()
    _CURRENT.set(call)
    return call


def current() -> Call | None:
    return _CURRENT.get()


def note_party(party_id: str) -> None:
    """Tells the call in progress (if any is recorded) its relying party."""
    call = _CURRENT.get()
    if call is not None:
        call.party_id = party_id
