"""Verify by the citizen's approval: the party collects the outcome of its
request (approvals.py), waiting while the citizen has not decided.

The wait holds no connection and no transaction: it reads the request, naps
(`POLL_SECONDS`, or less when this process decides the request: the
in-process wake-up), and reads again, so a decision made by any server
process is seen within a nap. It does hold one of the worker's call places
for as long as it waits, so it begins by taking one of its party's places
in this process (approval_waits.py; refused at once past them) and a token
of the party's rate limit: the call's one token, which the collection after
the wait does not take again. A call that may not wait and finds the
request pending answers at once and takes none. A cancelled or timed-out
wait gives its place back and leaves nothing else behind.

The outcome is collected once, in one conditional UPDATE: approved, the
first Verify verifies (a retry with its request_id gets the same answer,
another Verify APPROVAL_ALREADY_USED); declined, voided or expired, it is
told so, and the first collection is audited and counted as a failure."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from eid_service.domain.approval import (
    APPROVAL_TTL,
    REFUSALS,
    ApprovalRequest,
    ApprovalState,
    approval_expired,
    approval_not_found,
    approval_pending,
    approval_used,
    parse_approval_id,
)
from eid_service.domain.errors import DomainError
from eid_service.domain.party import RelyingParty, VerifyMode
from eid_service.domain.share import Attribute
from eid_service.security.signing_keys import SigningKeySet
from eid_service.use_cases.approvals import approval_mode_locked
from eid_service.use_cases.call_audit import call_entry
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.party_gate import Ticket
from eid_service.use_cases.party_limits import admit
from eid_service.use_cases.ports import Repositories, UnitOfWork
from eid_service.use_cases.replies import Answer, Reply, answer_once
from eid_service.use_cases.verified import (
    Verification,
    party_caller,
    record_failure,
    record_verified,
    refusal_after_proof,
    require_mode,
    throttled,
    wanted_attributes,
)

# Between two reads of a pending request (a decision in another process is
# seen this late at most).
POLL_SECONDS = 0.15
# An approval decided just before the request expired may still be collected
# this long after (a party polling every few seconds must not miss it).
COLLECT_GRACE = timedelta(minutes=1)
_METHOD = VerifyMode.APPROVAL
_ACTION = f"verify.{_METHOD.value}"


async def verify_approval(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    party: RelyingParty,
    approval_id: str,
    requested: frozenset[Attribute] | None,
    reply: Reply[Verification, Answer],
    *,
    wait_seconds: float = 0.0,
) -> Answer:
    """Waits at most `wait_seconds` (capped at the request's expiry) for a
    pending request; still pending then: UNAVAILABLE APPROVAL_PENDING."""
    require_mode(party, _METHOD)
    parse_approval_id(approval_id, "approval.approval_id")
    wanted = wanted_attributes(party, requested)
    caller = party_caller(party)
    give_up = time.monotonic() + min(wait_seconds, APPROVAL_TTL.total_seconds())

    def first_look(r: Repositories) -> tuple[Answer | None, ApprovalRequest | None]:
        earlier = reply.replay(r, caller)
        return (earlier, None) if earlier is not None else (None, look(r))

    def look(r: Repositories) -> ApprovalRequest:
        request = r.approvals.get(approval_id)
        if request is None or request.party_id != party.id:
            raise approval_not_found()  # another party's request is none of this one's business
        return request

    earlier, found = await uow.read(first_look)
    if earlier is not None:
        return earlier
    assert found is not None
    request, ticket = found, Ticket()
    if _undecided(request, ctx):
        if _patience(give_up, ctx) <= 0:
            raise approval_pending(request.expires_at)  # asked not to wait: no place, no token
        with ctx.approval_waits.place(party.id):
            ticket = await _pay_for_wait(uow, ctx, party)
            while _undecided(request, ctx):
                patience = _patience(give_up, ctx)
                if patience <= 0:
                    raise approval_pending(request.expires_at)
                # Up to the expiry, then once more: the next look finds it expired.
                until_expiry = max(0.0, _until(request.expires_at, ctx.clock()))
                await ctx.approval_wakeups.nap(
                    approval_id, min(POLL_SECONDS, patience, until_expiry)
                )
                request = await uow.read(look)
    # The keys after the wait: they may have rotated meanwhile (a cached read).
    keys = await ctx.signing_keys.current(uow)
    return await _collect(uow, ctx, keys, party, request, wanted, reply, ticket)


def _undecided(request: ApprovalRequest, ctx: UseCaseContext) -> bool:
    return request.collected_at is None and request.status(ctx.clock()) is ApprovalState.PENDING


def _patience(give_up: float, ctx: UseCaseContext) -> float:
    # A draining server answers before its grace runs out: the party asks again elsewhere.
    return min(give_up, ctx.approval_wakeups.end_by) - time.monotonic()


async def _pay_for_wait(uow: UnitOfWork, ctx: UseCaseContext, party: RelyingParty) -> Ticket:
    """Takes the party's token for a call about to wait (refused, it does not
    wait): a paid ticket, for the collection that may follow."""
    now = ctx.clock()
    async with ctx.party_gate.enter(uow, party, now) as ticket:
        if not ticket.paid:
            await uow.atomically(lambda r: admit(r, party, now))
    return Ticket(paid=True)


def _until(moment: datetime, now: datetime) -> float:
    return (moment - now).total_seconds()


async def _collect(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    keys: SigningKeySet,
    party: RelyingParty,
    seen: ApprovalRequest,
    wanted: frozenset[Attribute],
    reply: Reply[Verification, Answer],
    ticket: Ticket,
) -> Answer:
    caller = party_caller(party)
    now = ctx.clock()
    approval_id = seen.id

    def collect(r: Repositories) -> Answer | DomainError:
        earlier = reply.replay(r, caller)
        if earlier is not None:
            return earlier
        throttled(r, party, now)
        # One token a call: a call that waited paid the party's when its wait began.
        admit(r, party, now, citizen=seen.subject, ticket=ticket)
        request = r.approvals.collect(approval_id, party.id, now)
        if request is None:
            raise _collected_before(r, approval_id, party, now)
        status = request.status(now)
        if status is ApprovalState.APPROVED and now >= request.expires_at + COLLECT_GRACE:
            status = ApprovalState.EXPIRED
        if status is not ApprovalState.APPROVED:
            refusal = REFUSALS[status]()
            record_failure(r, party, now)
            _audit(r, reply, request, party, status.value, refusal.reason, now)
            return reply.refuse(r, caller, refusal, now)
        assert request.account_id is not None  # only the citizen it is shown to approves
        view = r.accounts.view(request.account_id, request.attributes & wanted)
        assert view is not None
        # Approved, then the account locked or the approval mode locked: the
        # party holds the request, so it is told why, as after a right code.
        locked = approval_mode_locked(r, request.account_id, now)
        refused = refusal_after_proof(view.state, locked, _METHOD)
        if refused is not None:
            _audit(r, reply, request, party, refused.reason.lower(), refused.reason, now)
            return reply.refuse(r, caller, refused, now)
        return reply.finish(
            r, caller, record_verified(r, ctx, keys, party, view, _METHOD, now, reply=reply), now
        )

    return await answer_once(uow, reply, caller, collect)


def _collected_before(
    r: Repositories, approval_id: str, party: RelyingParty, now: datetime
) -> DomainError:
    """Why the request could not be collected: an earlier Verify took it (or
    it is still pending, when the clocks of two processes disagree)."""
    request = r.approvals.get(approval_id)
    if request is None or request.party_id != party.id:
        return approval_not_found()
    status = request.status(now)
    if status is ApprovalState.PENDING:
        return approval_pending(request.expires_at)
    if status is ApprovalState.APPROVED:
        return approval_used()
    return REFUSALS.get(status, approval_expired)()


def _audit(
    r: Repositories,
    reply: Reply[Verification, Answer],
    request: ApprovalRequest,
    party: RelyingParty,
    outcome: str,
    reason: str,
    now: datetime,
) -> None:
    # A QR request nobody claimed names nobody: there is no chain to append to.
    if request.subject is not None:
        subject, account_id = request.subject, request.account_id
        entry = call_entry(
            reply, subject, account_id, party.id, _ACTION, outcome, now, reason=reason
        )
        r.audit.append(entry)
