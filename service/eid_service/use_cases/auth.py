"""Who is calling: a relying party by API key, a citizen by session token."""

from __future__ import annotations

from eid_service.domain.account import Account
from eid_service.domain.errors import Unauthenticated
from eid_service.domain.party import RelyingParty
from eid_service.store.uow import UnitOfWork
from eid_service.use_cases.context import UseCaseContext


async def authenticate_party(uow: UnitOfWork, api_key: str | None) -> RelyingParty:
    if not api_key:
        raise Unauthenticated(
            reason="API_KEY_MISSING", message="send the relying party's API key as x-api-key"
        )
    party = await uow.parties.by_api_key(api_key)
    if party is None:
        raise Unauthenticated(reason="API_KEY_INVALID", message="the API key is not valid")
    return party


async def authenticate_citizen(
    uow: UnitOfWork, ctx: UseCaseContext, session_token: str | None
) -> Account:
    if not session_token:
        raise Unauthenticated(
            reason="SESSION_MISSING",
            message="sign in and send the session as 'authorization: Bearer <token>'",
        )
    account_id = await uow.sessions.account_for(session_token, ctx.clock())
    account = None if account_id is None else await uow.accounts.get(account_id)
    if account is None:
        raise Unauthenticated(
            reason="SESSION_INVALID", message="the session is not valid or has expired"
        )
    account.require_active()
    return account
