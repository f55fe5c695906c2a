"""Who is calling: a relying party by API key, a citizen by session token."""

from __future__ import annotations

from datetime import datetime

from eid_service.domain.account import require_state_active
from eid_service.domain.errors import Unauthenticated
from eid_service.domain.party import RelyingParty
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.ports import AccountView, Repositories, UnitOfWork


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


def citizen_of_session(r: Repositories, session_token: str, now: datetime) -> AccountView:
    """The ACTIVE account a live session belongs to (inside a transaction)."""
    account_id = r.sessions.account_for(session_token, now)
    view = None if account_id is None else r.accounts.view(account_id, frozenset())
    if view is None:
        raise Unauthenticated(
            reason="SESSION_INVALID", message="the session is not valid or has expired"
        )
    require_state_active(view.state)
    return view
