"""Runs a mutating RPC at most once per client-chosen request_id."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from google.protobuf.message import Message
from sqlalchemy.exc import IntegrityError

from eid_service.domain.errors import Aborted, DomainError
from eid_service.domain.request_id import parse_request_id
from eid_service.store.uow import UnitOfWork

M = TypeVar("M", bound=Message)


async def run_once(
    new_uow: Callable[[], UnitOfWork],
    *,
    scope: str,
    request: Message,
    request_id: str,
    response_type: type[M],
    now: datetime,
    work: Callable[[UnitOfWork], Awaitable[M]],
) -> M:
    """Replays the stored response of an earlier call with this request_id, or
    does `work` and commits its response with it in one transaction."""
    rid = parse_request_id(request_id)
    async with new_uow() as uow:
        fingerprint = b""
        if rid is not None:
            fingerprint = uow.idempotency.fingerprint(
                scope, request.SerializeToString(deterministic=True)
            )

        async def replayed() -> M | None:
            if rid is None:
                return None
            stored = await uow.idempotency.replay(scope, rid, fingerprint)
            return None if stored is None else response_type.FromString(stored)

        if (earlier := await replayed()) is not None:
            return earlier
        try:
            response = await work(uow)
            await uow.start_writing()
            if rid is not None:
                await uow.idempotency.save(
                    scope, rid, fingerprint, response.SerializeToString(), now
                )
            await uow.commit()
            return response
        except (DomainError, IntegrityError) as lost:
            # A concurrent call with this request_id may have committed while we
            # worked (and made our work fail): the client is owed its answer.
            await uow.rollback()
            if (earlier := await replayed()) is not None:
                return earlier
            if isinstance(lost, DomainError):
                raise
            raise Aborted(
                reason="CONCURRENT_REQUEST",
                message="a concurrent request changed the same data; retry",
            ) from None
