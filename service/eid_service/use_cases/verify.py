"""Verify a citizen for a relying party: by password, or by redeeming a QR share once."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from eid_service.domain.account import Account, AccountLevel
from eid_service.domain.errors import DomainError, PreconditionFailed, TooManyAttempts
from eid_service.domain.party import RelyingParty
from eid_service.domain.share import Attribute, attribute_values, released_attributes
from eid_service.domain.share_grant import unknown_share
from eid_service.store.uow import UnitOfWork
from eid_service.use_cases.context import (
    MAX_PARTY_FAILURES,
    PARTY_FAILURE_WINDOW,
    UseCaseContext,
)
from eid_service.use_cases.credentials import check_password


class Method(enum.Enum):
    PASSWORD = "password"  # noqa: S105 (a method name, not a secret)
    QR_SHARE = "qr_share"


@dataclass(frozen=True)
class Verification:
    verified: bool
    method: Method
    at: datetime
    level: AccountLevel | None = None
    released: dict[Attribute, str] = field(default_factory=dict, repr=False)
    verification_id: str = ""


async def verify_password(
    uow: UnitOfWork, ctx: UseCaseContext, party: RelyingParty, personal_id: str, password: str
) -> Verification:
    now = ctx.clock()
    window_start = now - PARTY_FAILURE_WINDOW
    if await uow.parties.failures_since(party.id, window_start) >= MAX_PARTY_FAILURES:
        raise TooManyAttempts(
            reason="PARTY_THROTTLED",
            message="too many failed verifications from this relying party; slow down",
            metadata={"retry_after_seconds": str(int(PARTY_FAILURE_WINDOW.total_seconds()))},
        )
    account, charged_to = await check_password(
        uow, ctx, personal_id, password, field="password.personal_id"
    )
    if account is None:
        await uow.parties.record_failure(party.id, now, window_start)
        event_id = await uow.audit.append(
            account_id=charged_to,
            party_id=party.id,
            action="verify.password",
            outcome="rejected",
            now=now,
        )
        return Verification(False, Method.PASSWORD, now, verification_id=event_id)
    account.require_active()
    return await _verified(uow, account, party, Method.PASSWORD, list(Attribute), now)


async def redeem_share(
    uow: UnitOfWork, ctx: UseCaseContext, party: RelyingParty, token: str
) -> Verification:
    now = ctx.clock()
    claims = ctx.share_tokens.verify(token, now=now)
    grant = await uow.shares.get(claims.share_id)
    if grant is None:
        raise unknown_share()
    await uow.start_writing()
    try:
        grant.check_redeemable_by(party.id, now)
        if not await uow.shares.redeem(grant.id, party.id, now):
            raise PreconditionFailed(
                reason="SHARE_ALREADY_REDEEMED", message="the share has already been redeemed"
            )
        account = await uow.accounts.get(grant.account_id)
        assert account is not None  # shares reference accounts by foreign key
        account.require_active()
    except DomainError as refused:
        await uow.rollback()
        # The citizen sees refused redemptions of their shares too.
        await uow.audit.append(
            account_id=grant.account_id,
            party_id=party.id,
            action="verify.qr_share",
            outcome=refused.reason.lower(),
            now=now,
        )
        await uow.commit()
        raise
    return await _verified(uow, account, party, Method.QR_SHARE, grant.attributes, now)


async def _verified(
    uow: UnitOfWork,
    account: Account,
    party: RelyingParty,
    method: Method,
    offered: Iterable[Attribute],
    now: datetime,
) -> Verification:
    """Records a successful verification and releases what the party may read."""
    event_id = await uow.audit.append(
        account_id=account.id,
        party_id=party.id,
        action=f"verify.{method.value}",
        outcome="verified",
        now=now,
    )
    released = released_attributes(offered, party.scopes)
    return Verification(
        True,
        method,
        now,
        level=account.level,
        released=attribute_values(account.demographics, released),
        verification_id=event_id,
    )
