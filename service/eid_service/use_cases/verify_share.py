"""Verify a citizen for a relying party by redeeming a scanned QR share
(either mode: an online reference or an offline credential)."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from eid_service.domain.account import AccountState, citizen_deceased, require_state_active
from eid_service.domain.errors import DomainError
from eid_service.domain.party import RelyingParty, VerifyMode
from eid_service.domain.party_limits import PARTY_CITIZEN_RATE_LIMITED, PARTY_RATE_LIMITED
from eid_service.domain.share import Attribute, released_attributes
from eid_service.domain.share_grant import (
    expired_share,
    guardian_share_ended,
    guardians_share_withdrawn,
    payload_refusal,
    replayed_share,
    unknown_share,
)
from eid_service.use_cases.call_audit import call_entry
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.party_gate import Ticket
from eid_service.use_cases.party_limits import admit
from eid_service.use_cases.ports import Repositories, UnitOfWork
from eid_service.use_cases.replies import Answer, Reply, once
from eid_service.use_cases.verified import (
    Verification,
    party_caller,
    record_verified,
    require_mode,
    wanted_attributes,
)


async def redeem_share(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    party: RelyingParty,
    payload: str,
    reply: Reply[Verification, Answer],
    requested: frozenset[Attribute] | None = None,
) -> Answer:
    """Redeems a scanned payload of either mode and releases what the share
    offers and the party may read; a single-use share is consumed. A retry
    with the same request id gets the same attributes again (kept encrypted
    for 24 hours). Refusals of genuine payloads are in the citizen's history."""
    require_mode(party, VerifyMode.QR_SHARE)
    wanted = wanted_attributes(party, requested)
    caller = party_caller(party)
    now = ctx.clock()
    keys = await ctx.signing_keys.current(uow)
    # Damaged, foreign or revoked-key payloads stop here; nothing names a share yet.
    claims = keys.read(payload)
    if claims.issued_at > now + ctx.share_policy.clock_skew:
        raise payload_refusal("SHARE_NOT_YET_VALID")

    def redeem(r: Repositories) -> Answer:
        # Redeem first, look for an earlier answer only when that fails: a
        # first call (nearly every call) saves the lookup. A retry of a
        # single-use share finds it redeemed, then its answer; a retry of a
        # multi-use one redeems again, its answer's key is taken at `finish`,
        # the redemption rolls back and `once` replays the earlier answer.
        expired = now >= claims.expires_at
        share = None if expired else r.shares.redeem(claims.share_id, party.id, now)
        if share is None:
            # Ours already (a retry, or a concurrent duplicate of this very
            # request), even after the share expired.
            earlier = reply.replay(r, caller)
            if earlier is not None:
                return earlier
            if expired:
                raise expired_share()
            raise _why_not(r, claims.share_id, party, now)
        view = r.accounts.view(share.account_id, released_attributes(share.attributes, wanted))
        assert view is not None  # shares reference accounts by foreign key
        if share.issued_by is not None and view.state is not AccountState.DEPENDANT:
            # A guardian's share of a child who took the account over: the
            # take-over revoked it, or would have but for a share committed
            # just after its revocation (PostgreSQL). Ended either way.
            raise guardian_share_ended()
        if share.issued_by is not None and not _guardian_active(r, share.issued_by):
            # The guardian's lock (or death) withdrew their shares; one
            # committed just after that withdrawal (PostgreSQL: it was being
            # made as the lock committed) is refused here. Before, it kept
            # releasing the child's data (found by an attacker's pass).
            raise guardians_share_withdrawn()
        if view.state is not AccountState.DEPENDANT:  # a child's: its guardian shared it
            require_state_active(view.state)
        # The party's buckets before the citizen's audit chain, as every
        # Verify takes them: the other order deadlocked on PostgreSQL against
        # a claim about the same citizen. A refusal rolls the redemption
        # back; the share can be redeemed later.
        admit(r, party, now, citizen=view.subject, ticket=ticket)
        done = record_verified(
            r, ctx, keys, party, view, VerifyMode.QR_SHARE, now, reply=reply, actor=share.issued_by
        )
        return reply.finish(r, caller, done, now)

    async with ctx.party_gate.enter(uow, party, now) as ticket:
        try:
            return await once(uow, reply, caller, redeem)
        except DomainError as refused:
            if refused.reason not in (PARTY_RATE_LIMITED, PARTY_CITIZEN_RATE_LIMITED):
                await _audit_refusal(uow, claims.share_id, party, refused, now, reply, ticket)
            raise


def _guardian_active(r: Repositories, guardian_account_id: str) -> bool:
    guardian = r.accounts.view(guardian_account_id, frozenset())
    return guardian is not None and guardian.state is AccountState.ACTIVE


def _why_not(r: Repositories, share_id: str, party: RelyingParty, now: datetime) -> DomainError:
    grant = r.shares.get(share_id)
    if grant is None:
        return unknown_share()
    owner = r.accounts.view(grant.account_id, frozenset())
    if owner is not None and owner.state is AccountState.DEACTIVATED:
        # Deactivation withdrew the share; the payload is the party's proof.
        return citizen_deceased()
    locked = owner is not None and owner.state is AccountState.LOCKED
    try:
        grant.check_redeemable_by(party.id, now, account_locked=locked)
    except DomainError as refused:
        return refused
    return replayed_share()


async def _audit_refusal(
    uow: UnitOfWork,
    share_id: str,
    party: RelyingParty,
    refused: DomainError,
    now: datetime,
    reply: Reply[Verification, Answer],
    ticket: Ticket,
) -> None:
    """A refused redemption of a genuine payload (rolled back) is audited in
    the citizen's history and counts against the party's limits, here, as
    the refusal path has no transaction left to do it in. Over a limit, the
    party is told so instead."""

    def record(r: Repositories) -> None:
        grant = r.shares.get(share_id)
        view = None if grant is None else r.accounts.view(grant.account_id, frozenset())
        admit(r, party, now, citizen=None if view is None else view.subject, ticket=ticket)
        if view is None:
            return
        outcome = refused.reason.lower()
        entry = call_entry(
            reply,
            view.subject,
            view.id,
            party.id,
            "verify.qr_share",
            outcome,
            now,
            reason=refused.reason,
        )
        # A dependant's share: its guardian made it.
        r.audit.append(dataclasses.replace(entry, actor=None if grant is None else grant.issued_by))

    await uow.atomically(record)
