"""Child spans of the RPC in progress: database work, password hashing,
signing. `install` is called once per process when tracing is on; until
then every helper returns at a None check. Only children: work outside a
recorded span (the outbox dispatcher's polls, the purge, a call the caller
chose not to sample) makes none, so a trace backend is not filled with lone
database spans.

Exceptions are never recorded on spans (OpenTelemetry's default would copy
their message, which may quote data): a span an exception leaves gets the
exception's type as `error.type`, and the ERROR status unless it is a domain
error (a refusal the caller is told about, not a fault)."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from eid_service.domain.errors import DomainError

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Status, Tracer

T = TypeVar("T")
Attributes = Mapping[str, str | int | float | bool]

_tracer: Tracer | None = None
_error: Status | None = None
_current_span: Callable[[], Span] | None = None
_NOTHING: contextlib.AbstractContextManager[None] = contextlib.nullcontext()


def install(tracer: Tracer | None) -> None:
    """Sets (or, with None, removes) the tracer of this process's spans."""
    global _tracer, _error, _current_span
    if tracer is not None:
        from opentelemetry.trace import Status, StatusCode, get_current_span

        _error = Status(StatusCode.ERROR)
        _current_span = get_current_span
    _tracer = tracer


def _in_span() -> bool:
    return _current_span is not None and _current_span().is_recording()


def span(name: str, attributes: Attributes | None = None) -> contextlib.AbstractContextManager[Any]:
    """A child span of the current one for the block, or nothing when tracing is off."""
    if _tracer is None or not _in_span():
        return _NOTHING
    return _traced(_tracer, name, attributes)


def carry(work: Callable[..., T]) -> Callable[..., T]:
    """`work`, run in the caller's trace context wherever it runs (the
    database threads): its spans become children of the current one."""
    if _tracer is None or not _in_span():
        return work
    return partial(contextvars.copy_context().run, work)


@contextlib.contextmanager
def _traced(tracer: Tracer, name: str, attributes: Attributes | None) -> Iterator[Any]:
    with tracer.start_as_current_span(
        name, attributes=attributes, record_exception=False, set_status_on_exception=False
    ) as current:
        try:
            yield current
        except BaseException as error:
            current.set_attribute("error.type", type(error).__name__)
            if _error is not None and not isinstance(error, DomainError):
                current.set_status(_error)
            raise
