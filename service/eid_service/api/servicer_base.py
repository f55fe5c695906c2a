"""What every part of the eid.v1.IdentityService servicer shares: the use
cases' dependencies, how a caller's address is read, and how a `Reply` (a
result's response message, kept for retried request ids) is made."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from google.protobuf.message import Message
from grpc import aio

from eid_service.api import metadata
from eid_service.domain.party import RelyingParty
from eid_service.use_cases.auth import authenticate_party
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.ports import UnitOfWork
from eid_service.use_cases.replies import Reply

Context = aio.ServicerContext[Any, Any]
R = TypeVar("R")
M = TypeVar("M", bound=Message)


class ServicerBase:
    def __init__(
        self,
        uow: UnitOfWork,
        ctx: UseCaseContext,
        *,
        trusted_proxies: frozenset[str] = frozenset(),
    ) -> None:
        self._uow = uow
        self._ctx = ctx
        self._trusted_proxies = trusted_proxies
        # Called after each commit that queued a message, so delivery is prompt.
        self.on_outbox_write: Callable[[], None] = lambda: None

    async def _party(self, context: Context) -> RelyingParty:
        """The calling relying party, by its API key and, if it is bound to
        one, its client certificate (see auth.authenticate_party)."""
        certificate = partial(metadata.client_certificate_sha256, context)
        return await authenticate_party(
            self._uow, self._ctx, metadata.api_key(context), certificate
        )

    def _source(self, context: Context) -> str:
        """Where the call comes from, for per-source limits."""
        return "ip:" + metadata.client_address(context, self._trusted_proxies)

    def _reply(
        self,
        rpc: str,
        request: Message,
        request_id: str,
        response_type: type[M],
        present: Callable[[R], M],
        context: Context | None = None,
    ) -> Reply[R, M]:
        """With the call's `context`, the reply also carries the caller's
        trace id (for audit entries)."""
        return Reply(
            rpc=rpc,
            request_id=request_id,
            request=request.SerializeToString(deterministic=True),
            present=present,
            encode=lambda m: m.SerializeToString(),
            decode=response_type.FromString,
            fingerprint=self._ctx.fingerprint,
            trace_id=None if context is None else metadata.trace_id(context),
        )
