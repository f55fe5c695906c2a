"""Who is calling: a relying party by API key, a citizen by session token."""

from __future__ import annotations

from datetime import datetime

from eid_service.domain.account import require_state_active
from eid_service.domain.errors import Unauthenticated
from eid_service.domain.party import RelyingParty
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.ports import AccountView, LiveSession, Repositories, UnitOfWork


async def authenticate_party(
    uow: UnitOfWork, ctx: UseCaseContext, api_key: str | None
) -> RelyingParty:
    if not api_key:
        raise Unauthenticated(
            reason="API_KEY_MISSING", message="send the relying party's API key as x-api-key"
        )
    party = ctx.parties.get(api_key)
    if party is None:
        party = await uow.read(lambda r: r.parties.by_api_key(api_key))
        if party is None:
            raise Unauthenticated(reason="API_KEY_INVALID", message="the API key is not valid")
        ctx.parties.put(api_key, party)
    return party


def session_missing() -> Unauthenticated:
    return Unauthenticated(
        reason="SESSION_MISSING",
        message="sign in and send the session as 'authorization: Bearer <token>'",
    )


def citizen_session(
    r: Repositories, access_token: str, now: datetime
) -> tuple[LiveSession, AccountView]:
    """The live session an access token opens and its ACTIVE account (inside a
    transaction). Locking an account ends its sessions, so a locked account
    has none; the state is checked anyway."""
    session = r.sessions.by_access_token(access_token, now)
    view = None if session is None else r.accounts.view(session.account_id, frozenset())
    if session is None or view is None:
        raise Unauthenticated(
            reason="SESSION_INVALID",
            message="the session is not valid or has expired; refresh it or sign in again",
        )
    require_state_active(view.state)
    return session, view


def citizen_of_session(r: Repositories, access_token: str, now: datetime) -> AccountView:
    """The ACTIVE account a live session belongs to (inside a transaction)."""
    return citizen_session(r, access_token, now)[1]
