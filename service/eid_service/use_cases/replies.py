"""Idempotent answers: a request id is answered once, and replayed after.

The caller (the API edge) says how a use case's result becomes its answer
and how that answer is stored; the use case looks for an earlier answer and
keeps the new one inside its own transaction, so the effect and the answer
commit together or not at all. Request ids are scoped to the RPC and the
caller: a party, a citizen, or anonymous."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from eid_service.domain.errors import Conflict
from eid_service.domain.request_id import parse_request_id
from eid_service.use_cases.ports import Repositories, RequestKey, UnitOfWork

Result = TypeVar("Result")
Answer = TypeVar("Answer")

REPLAY_FOR = timedelta(hours=24)


@dataclass
class Reply(Generic[Result, Answer]):
    rpc: str
    request_id: str
    request: bytes = field(repr=False)
    present: Callable[[Result], Answer]
    encode: Callable[[Answer], bytes]
    decode: Callable[[bytes], Answer]
    fingerprint: Callable[[bytes], bytes]

    def __post_init__(self) -> None:
        # Parsed first, so a bad request id is refused before anything happens.
        self._rid = parse_request_id(self.request_id)
        self._digest: bytes | None = None

    def key(self, caller: str) -> RequestKey | None:
        if self._rid is None:
            return None
        if self._digest is None:
            self._digest = self.fingerprint(self.request)
        return RequestKey(f"{self.rpc}:{caller}", self._rid, self._digest)

    def replay(self, r: Repositories, caller: str) -> Answer | None:
        """The answer an earlier call with this request id got, if any."""
        key = self.key(caller)
        if key is None:
            return None
        stored = r.idempotency.find(key)
        return None if stored is None else self.decode(stored)

    def finish(self, r: Repositories, caller: str, result: Result, now: datetime) -> Answer:
        """The answer to `result`, kept for retries in the same transaction."""
        answer = self.present(result)
        key = self.key(caller)
        if key is not None:
            r.idempotency.save(key, self.encode(answer), now, now + REPLAY_FOR)
        return answer


async def once(
    uow: UnitOfWork,
    reply: Reply[Result, Answer],
    caller: str,
    work: Callable[[Repositories], Answer],
) -> Answer:
    """Runs `work` (which begins with `reply.replay` and ends with
    `reply.finish`) in one transaction. If a concurrent duplicate committed
    first and made ours conflict, its answer is ours; otherwise ABORTED."""
    try:
        return await uow.atomically(work)
    except Conflict:
        earlier = await uow.read(lambda r: reply.replay(r, caller))
        if earlier is not None:
            return earlier
        raise
