"""A citizen's signed-in devices: refresh, sign out, list, revoke.

An access token lasts `ACCESS_TTL`; the refresh token that comes with it
lasts `REFRESH_TTL` and is single use: each refresh returns a new pair. A
refresh token presented a second time means two holders (one of them a
thief), so the whole session ends; a client that lost the answer to a
refresh retries with the same request_id and gets the same new pair."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

from eid_service.domain.account import require_state_active
from eid_service.domain.errors import DomainError, InvalidInput, NotFound, Unauthenticated
from eid_service.domain.request_id import REQUEST_ID_REUSED
from eid_service.use_cases import pages
from eid_service.use_cases.auth import citizen_session, session_missing
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.ports import (
    AuditEntry,
    IssuedTokens,
    Repositories,
    Reused,
    SessionInfo,
    SessionLifetimes,
    UnitOfWork,
)
from eid_service.use_cases.replies import (
    Answer,
    Reply,
    answer_once,
    once,
    session_scope,
    token_scope,
)

ACCESS_TTL = timedelta(minutes=15)
REFRESH_TTL = timedelta(days=30)
LIFETIMES = SessionLifetimes(access=ACCESS_TTL, refresh=REFRESH_TTL)
_SESSION_ID = re.compile(r"ses_[0-9a-f]{24}")


@dataclass(frozen=True)
class SessionPage:
    sessions: list[SessionInfo]
    current_session_id: str
    next_page_token: str = field(default="")


def _refresh_invalid() -> Unauthenticated:
    return Unauthenticated(
        reason="REFRESH_TOKEN_INVALID",
        message="the refresh token is not valid, has expired or was revoked; sign in again",
    )


def _reused() -> Unauthenticated:
    return Unauthenticated(
        reason="REFRESH_TOKEN_REUSED",
        message="this refresh token was already used: the session has been ended; sign in again",
    )


async def refresh_session(
    uow: UnitOfWork, ctx: UseCaseContext, refresh_token: str, reply: Reply[IssuedTokens, Answer]
) -> Answer:
    if not refresh_token:
        raise InvalidInput.of(
            "refresh_token", "REFRESH_TOKEN_MISSING", "send the refresh token from SignIn"
        )
    now = ctx.clock()
    caller = token_scope(ctx, "refresh", refresh_token)

    def end_session(r: Repositories, rotation: Reused) -> DomainError:
        """A copy of a spent token: a thief's, or a device's that lost the
        race. Returned, not raised, so the revocation commits."""
        view = r.accounts.view(rotation.account_id, frozenset())
        assert view is not None
        r.sessions.revoke(rotation.session_id, rotation.account_id, now, "refresh_reused")
        r.audit.append(
            AuditEntry(view.subject, view.id, None, "session_refresh", "token_reused", now)
        )
        return _reused()

    def rotate(r: Repositories) -> Answer | DomainError:
        try:
            earlier = reply.replay(r, caller)
        except InvalidInput as other_content:
            if other_content.reason != REQUEST_ID_REUSED:
                raise
            # The token again under the request id it was answered for, with
            # other content: no retry sends that, so it is a copy (found in
            # review: the session stayed live). Its answer stays this refusal.
            spent = r.sessions.rotate(refresh_token, now, LIFETIMES)
            if not isinstance(spent, Reused):
                raise  # rolls back whatever that did
            return end_session(r, spent)
        if earlier is not None:
            last = r.sessions.answered_last(refresh_token, now)
            if last:
                return earlier
            # The session refreshed again since that answer: its client got
            # it, so this is a copy of the request, not a retry, and a spent
            # token's reuse. Before, the copy got the tokens again for 24
            # hours (found by an attacker's pass). A session ended since has
            # no tokens to give and none to end: the token is just invalid.
            spent = None if last is None else r.sessions.rotate(refresh_token, now, LIFETIMES)
            refusal = end_session(r, spent) if isinstance(spent, Reused) else _refresh_invalid()
            return reply.supersede(r, caller, refusal, now)
        rotation = r.sessions.rotate(refresh_token, now, LIFETIMES)
        if rotation is None:
            return _refresh_invalid()
        if isinstance(rotation, Reused):
            # A duplicate of this very request that spent the token first (on
            # PostgreSQL it commits while this one waits for the session's
            # row): its answer is ours. Looked for again only now, as the
            # first look came before that commit.
            earlier = reply.replay(r, caller)
            if earlier is not None:
                return earlier
            return end_session(r, rotation)
        view = r.accounts.view(rotation.account_id, frozenset())
        assert view is not None
        require_state_active(view.state)
        return reply.finish(r, caller, rotation, now)

    return await answer_once(uow, reply, caller, rotate)


async def sign_out(
    uow: UnitOfWork, ctx: UseCaseContext, access_token: str | None, reply: Reply[None, Answer]
) -> Answer:
    """Ends the caller's own session; a retry of the same request id is answered alike."""
    if not access_token:
        raise session_missing()
    now = ctx.clock()
    caller = session_scope(ctx, access_token, frozenset({"signed_out"}))

    def end(r: Repositories) -> Answer:
        earlier = reply.replay(r, caller)
        if earlier is not None:
            return earlier
        session, citizen = citizen_session(r, access_token, now)
        r.sessions.revoke(session.id, citizen.id, now, "signed_out")
        r.audit.append(AuditEntry(citizen.subject, citizen.id, None, "sign_out", "ok", now))
        return reply.finish(r, caller, None, now)

    return await once(uow, reply, caller, end)


async def list_sessions(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    access_token: str | None,
    page_size: int,
    page_token: str,
) -> SessionPage:
    """The citizen's live sessions, newest first (AIP-158 pages)."""
    if not access_token:
        raise session_missing()
    size = pages.page_size(page_size)
    after = pages.after_id(page_token, _SESSION_ID)
    now = ctx.clock()

    def page(r: Repositories) -> SessionPage:
        session, citizen = citizen_session(r, access_token, now)
        found = r.sessions.list_live(citizen.id, now, after, size + 1)
        more = len(found) > size
        shown = found[:size]
        token = pages.next_page_token(shown[-1].id) if more else ""
        return SessionPage(shown, session.id, token)

    return await uow.read(page)


async def revoke_session(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    access_token: str | None,
    session_id: str,
    reply: Reply[None, Answer],
) -> Answer:
    """Ends one of the citizen's sessions (another device, or this one)."""
    if not access_token:
        raise session_missing()
    if not _SESSION_ID.fullmatch(session_id):
        raise InvalidInput.of(
            "session_id", "SESSION_ID_INVALID", "use a session_id from ListSessions"
        )
    now = ctx.clock()
    caller = session_scope(ctx, access_token, frozenset({"revoked"}))

    def end(r: Repositories) -> Answer:
        earlier = reply.replay(r, caller)
        if earlier is not None:
            return earlier
        _, citizen = citizen_session(r, access_token, now)
        if not r.sessions.revoke(session_id, citizen.id, now, "revoked"):
            raise NotFound(
                reason="SESSION_NOT_FOUND", message="no live session of yours has this id"
            )
        r.audit.append(AuditEntry(citizen.subject, citizen.id, None, "revoke_session", "ok", now))
        return reply.finish(r, caller, None, now)

    return await once(uow, reply, caller, end)
