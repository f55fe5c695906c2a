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
            stored = await uow.idempotency.replay(scope, rid, fingerprint)
            if stored is not None:
                return response_type.FromString(stored)
        try:
            try:
                response = await work(uow)
            except DomainError:
                # A concurrent call with this request_id may have committed while we
                # worked (and made our work fail): the client is owed its answer.
                if rid is None:
                    raise
                await uow.rollback()
                stored = await uow.idempotency.replay(scope, rid, fingerprint)
                if stored is not None:
                    return response_type.FromString(stored)
                raise
            await uow.start_writing()
            if rid is not None:
                await uow.idempotency.save(
                    scope, rid, fingerprint, response.SerializeToString(), now
                )
            await uow.commit()
            return response
        except IntegrityError:
            await uow.rollback()
            if rid is not None:
                # A concurrent retry with the same request_id committed first.
                stored = await uow.idempotency.replay(scope, rid, fingerprint)
                if stored is not None:
                    return response_type.FromString(stored)
            raise Aborted(
                reason="CONCURRENT_REQUEST",
                message="a concurrent request changed the same data; retry",
            ) from None
