"""Idempotent answers: a request id is answered once, and replayed after.

The caller (the API edge) says how a use case's result becomes its answer
and how that answer is stored; the use case looks for an earlier answer and
keeps the new one inside its own transaction, so the effect and the answer
commit together or not at all. Request ids are scoped to the RPC and the
caller: a party, a citizen, or anonymous."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from eid_service.domain import errors
from eid_service.domain.errors import DomainError, FieldViolation, InvalidInput
from eid_service.domain.request_id import REQUEST_ID_REUSED, parse_request_id
from eid_service.use_cases.ports import Repositories, RequestKey, UnitOfWork

if TYPE_CHECKING:
    from eid_service.use_cases.context import UseCaseContext

Result = TypeVar("Result")
Answer = TypeVar("Answer")
Done = TypeVar("Done")

REPLAY_FOR = timedelta(hours=24)
# Stored refusals start with a zero byte, which no protobuf encoding does.
_REFUSAL = b"\x00refusal:"
# Under a token's scope, where its session's answer is (the session's id).
_SESSION_POINTER = b"\x00session:"
_ERROR_KINDS = {
    kind.__name__: kind
    for kind in vars(errors).values()
    if isinstance(kind, type) and issubclass(kind, DomainError)
}


def token_scope(ctx: UseCaseContext, kind: str, token: str) -> str:
    """A request-id scope naming the caller by a digest of its token (a
    refresh token's); a citizen's session: `session_scope`; a caller with
    none: `Reply.content_scope`."""
    return f"{kind}:" + ctx.fingerprint(token.encode()).hex()[:32]


@dataclass
class SessionScope:
    """The request-id scope of a signed-in citizen's call: their session,
    found (inside the call's transaction) by the access token, live or ended.
    Scoped by the token alone, a retry sent after the app refreshed an
    expired token was a new call: a second share, a revocation answered
    SESSION_NOT_FOUND (found by an attacker's pass). Only the token's holder
    names the session this way. A copy still carrying the token it was sent
    with, refreshed since (a duplicate in flight), finds the answer too (found
    in review): the token's scope keeps a pointer to the session's.

    An answer is given again only while its session is live: after the
    citizen signed out, or the session was revoked, locked or deactivated,
    the token (current or refreshed away) with the same request id got the
    kept answer for 24 hours, a QR share's token included (found by an
    attacker's pass). The exception is the call whose own effect ended the
    session (`answered_after`: the reasons it ends sessions with), so a
    retried SignOut, RevokeSession or LockAccount still gets its answer."""

    access_token: str = field(repr=False)
    token: str
    now: datetime
    answered_after: frozenset[str] = frozenset()
    # A token is the current one of at most one session, ever: looked up once.
    _session: str | None = field(default=None, repr=False)
    _looked: bool = field(default=False, repr=False)

    def _of(self, r: Repositories) -> str | None:
        """The id of the session whose current access token this is."""
        if not self._looked:
            self._session = r.sessions.id_of_access_token(self.access_token)
            self._looked = True
        return self._session

    def find(self, r: Repositories, key_of: Callable[[str], RequestKey | None]) -> bytes | None:
        """The answer kept for this call's request id, if it may be given.
        A request id reused for other content is refused REQUEST_ID_REUSED
        only while the token could make a call: else the call goes on to
        its SESSION_INVALID, as any call of that token does."""
        session = self._of(r)
        if session is None:
            # A token refreshed away (or never current): its pointer, if any.
            pointer = _kept_or_reused(r, key_of(self.token))
            if isinstance(pointer, InvalidInput):
                return None  # this token makes no new call
            if pointer is None or not pointer.startswith(_SESSION_POINTER):
                return pointer
            session = pointer[len(_SESSION_POINTER) :].decode()
        found = _kept_or_reused(r, key_of(f"session:{session}"))
        if found is None:
            return None  # a first call, nearly every call: no look at the session
        ended = r.sessions.ended(session, self.now)
        if ended is not None and ended not in self.answered_after:
            return None  # neither given nor refused: the session's end is the answer
        if isinstance(found, InvalidInput):
            raise found
        return found

    def kept(self, r: Repositories, stored: bytes) -> list[tuple[str, bytes]]:
        """Where an answer is kept: under the session, and under the token a
        pointer to it (else, with no session, under the token)."""
        session = self._of(r)
        if session is None:
            return [(self.token, stored)]
        return [(f"session:{session}", stored), (self.token, _SESSION_POINTER + session.encode())]


def _kept_or_reused(r: Repositories, key: RequestKey | None) -> bytes | InvalidInput | None:
    """What is kept under `key`: an answer, the refusal of a request id used
    before for other content (REQUEST_ID_REUSED), or nothing."""
    if key is None:
        return None
    try:
        return r.idempotency.find(key)
    except InvalidInput as refused:
        if refused.reason != REQUEST_ID_REUSED:
            raise
        return refused


def session_scope(
    ctx: UseCaseContext, access_token: str, answered_after: frozenset[str] = frozenset()
) -> SessionScope:
    """`answered_after`: for a call that ends its own session, the reasons it
    ends it with (its retry is answered after that)."""
    return SessionScope(
        access_token, token_scope(ctx, "session", access_token), ctx.clock(), answered_after
    )


# Who sent a request id: a scope, or a session's (resolved in a transaction).
Caller = str | SessionScope


def _kept(r: Repositories, caller: Caller, stored: bytes) -> list[tuple[str, bytes]]:
    return [(caller, stored)] if isinstance(caller, str) else caller.kept(r, stored)


def _encode_refusal(error: DomainError) -> bytes:
    fields = {
        "kind": type(error).__name__,
        "reason": error.reason,
        "message": error.message,
        "metadata": error.metadata,
        "violations": [
            [v.field, v.reason, v.description]
            for v in (error.violations if isinstance(error, InvalidInput) else [])
        ],
    }
    return _REFUSAL + json.dumps(fields).encode()


def _decode_refusal(stored: bytes) -> DomainError:
    fields = json.loads(stored[len(_REFUSAL) :])
    kind = _ERROR_KINDS.get(fields["kind"], errors.PreconditionFailed)
    if issubclass(kind, InvalidInput):
        violations = [FieldViolation(*v) for v in fields["violations"]]
        return InvalidInput(fields["reason"], fields["message"], fields["metadata"], violations)
    if kind is errors.Conflict:
        return errors.Conflict(fields["message"])
    return kind(fields["reason"], fields["message"], fields["metadata"])


@dataclass
class Reply(Generic[Result, Answer]):
    rpc: str
    request_id: str
    request: bytes = field(repr=False)
    present: Callable[[Result], Answer]
    encode: Callable[[Answer], bytes]
    decode: Callable[[bytes], Answer]
    fingerprint: Callable[[bytes], bytes]
    # The caller's W3C trace id, kept with the call's audit entries.
    trace_id: str | None = None

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

    def content_scope(self) -> str:
        """The scope of a call without credentials (Register, Activate,
        SendAccountCode, LockAccount and UnlockAccount by password or code):
        its own content, as a digest. Such callers cannot be told apart, so
        one caller's request id must not spoil another's call (anyone knows
        an ID number; a stranger sending ids 1, 2, 3 would have the citizen's
        app refused); a retry sends the same content, so it finds its answer."""
        if self._digest is None:
            self._digest = self.fingerprint(self.request)
        return "anonymous:" + self._digest.hex()[:32]

    @property
    def has_request_id(self) -> bool:
        return self._rid is not None

    def replay(self, r: Repositories, caller: Caller) -> Answer | None:
        """The answer an earlier call with this request id got, if any; an
        earlier refusal that was kept (see `refuse`) is raised again."""
        if isinstance(caller, str):
            key = self.key(caller)
            stored = None if key is None else r.idempotency.find(key)
        else:
            stored = caller.find(r, self.key)
        if stored is None:
            return None
        if stored.startswith(_REFUSAL):
            raise _decode_refusal(stored)
        return self.decode(stored)

    def refuse(
        self, r: Repositories, caller: Caller, error: DomainError, now: datetime
    ) -> DomainError:
        """Keeps a refusal as this request id's answer, for refusals that
        changed something (a counted wrong code): a retry must not count again."""
        self._keep(r, caller, _encode_refusal(error), now)
        return error

    def supersede(
        self, r: Repositories, caller: Caller, error: DomainError, now: datetime
    ) -> DomainError:
        """Replaces the answer kept for this request id with a refusal: the
        call it answered is over (a refresh its session has moved past), and
        a copy of the request must not get that answer again."""
        for scope, stored in _kept(r, caller, _encode_refusal(error)):
            key = self.key(scope)
            if key is not None:
                r.idempotency.replace(key, stored, now, now + REPLAY_FOR)
        return error

    def finish(self, r: Repositories, caller: Caller, result: Result, now: datetime) -> Answer:
        """The answer to `result`, kept for retries in the same transaction."""
        answer = self.present(result)
        self._keep(r, caller, self.encode(answer), now)
        return answer

    def _keep(self, r: Repositories, caller: Caller, stored: bytes, now: datetime) -> None:
        for scope, kept in _kept(r, caller, stored):
            key = self.key(scope)
            if key is not None:
                r.idempotency.save(key, kept, now, now + REPLAY_FOR)


async def once(
    uow: UnitOfWork,
    reply: Reply[Any, Answer],
    caller: Caller,
    work: Callable[[Repositories], Done],
) -> Done | Answer:
    """Runs `work` (which looks for `reply.replay` before it changes anything,
    or after a change that only a first call can make, or not at all when a
    retry may redo everything: its answer's key, taken at `reply.finish` or
    `reply.refuse`, then rolls all of it back) in one transaction. If it is
    refused, a concurrent duplicate may have committed meanwhile and caused
    the refusal (a taken key, a used code, an account that now exists): then
    its answer is ours.
    That holds for a refusal `work` raises (rolled back) and for one it
    returns (committed, because it counted something)."""
    try:
        done = await uow.atomically(work)
    except DomainError:
        earlier = await uow.read(lambda r: reply.replay(r, caller))
        if earlier is not None:
            return earlier
        raise
    if isinstance(done, DomainError) and reply.has_request_id:
        earlier = await uow.read(lambda r: reply.replay(r, caller))
        if earlier is not None:
            return earlier
    return done


async def answer_once(
    uow: UnitOfWork,
    reply: Reply[Any, Answer],
    caller: Caller,
    work: Callable[[Repositories], Answer | DomainError],
) -> Answer:
    """`once` for work that returns its refusal (so what it counted commits):
    the refusal is raised after the commit."""
    done = await once(uow, reply, caller, work)
    if isinstance(done, DomainError):
        raise done
    return done
