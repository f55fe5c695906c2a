"""Open a citizen session with ID number and password."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from eid_service.domain.account import Account
from eid_service.domain.errors import Unauthenticated
from eid_service.store.uow import UnitOfWork
from eid_service.use_cases.context import SESSION_TTL, UseCaseContext
from eid_service.use_cases.credentials import check_password


@dataclass(frozen=True)
class SignedIn:
    session_token: str = field(repr=False)
    expires_at: datetime
    account: Account


async def sign_in(
    uow: UnitOfWork, ctx: UseCaseContext, personal_id: str, password: str
) -> SignedIn:
    now = ctx.clock()
    account, charged_to = await check_password(uow, ctx, personal_id, password, field="personal_id")
    if account is None:
        await uow.audit.append(
            account_id=charged_to, party_id=None, action="sign_in", outcome="rejected", now=now
        )
        await uow.commit()  # keep the failure count
        raise Unauthenticated(
            reason="INVALID_CREDENTIALS", message="the ID number or password is not correct"
        )
    account.require_active()
    expires_at = now + SESSION_TTL
    token = await uow.sessions.open(account.id, now, expires_at)
    await uow.audit.append(
        account_id=account.id, party_id=None, action="sign_in", outcome="ok", now=now
    )
    return SignedIn(token, expires_at, account)
