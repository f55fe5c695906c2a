"""Approval on the citizen's device (domain/approval.py): a relying party
starts a request; the signed-in citizen lists, claims (QR variant) and
decides requests. The party collects the outcome with Verify
(verify_approval.py).

StartApproval answers alike for any well-formed ID number: a request for one
with no ACTIVE account, or whose citizen locked the approval mode, is kept,
counted and expires like any other, but is shown to nobody, so a stranger
learns nothing about who has an account or a lock. (A QR request the citizen
scans and claims is their own act: a lock does not stop it.)"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field, replace
from datetime import datetime

from eid_service.domain.account import AccountState
from eid_service.domain.approval import (
    APPROVAL_ID_PATTERN,
    APPROVAL_TTL,
    MAX_CODE_ATTEMPTS,
    PER_CITIZEN,
    PER_PARTY_CITIZEN,
    ApprovalRequest,
    ApprovalState,
    already_claimed,
    already_decided,
    approval_expired,
    approval_not_found,
    code_choices,
    new_approval_id,
    new_approval_token,
    new_verification_code,
    parse_approval_id,
    parse_approval_token,
    parse_message,
    parse_verification_code,
    wrong_code,
)
from eid_service.domain.errors import DomainError
from eid_service.domain.party import RelyingParty, VerifyMode
from eid_service.domain.personal_id import parse_personal_id
from eid_service.domain.share import Attribute
from eid_service.use_cases import pages
from eid_service.use_cases.auth import citizen_of_session, session_missing
from eid_service.use_cases.call_audit import NOT_ACTIVE, call_entry
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.one_time_codes import hit_limits
from eid_service.use_cases.party_limits import admit
from eid_service.use_cases.ports import Repositories, UnitOfWork
from eid_service.use_cases.replies import Answer, Reply, answer_once
from eid_service.use_cases.sessions import token_scope
from eid_service.use_cases.validation import Violations
from eid_service.use_cases.verified import party_caller, require_mode, wanted_attributes


@dataclass(frozen=True)
class StartCommand:
    # Empty: the QR variant.
    personal_id: str = field(repr=False)
    # None: all the party may read.
    requested: frozenset[Attribute] | None = None
    message: str = field(default="", repr=False)


@dataclass(frozen=True)
class StartedApproval:
    approval_id: str
    code: str
    expires_at: datetime
    # QR variant: what the party's QR code shows.
    token: str = field(default="", repr=False)


@dataclass(frozen=True)
class ApprovalView:
    """A request as the citizen's app shows it."""

    request: ApprovalRequest
    party_name: str
    choices: tuple[str, ...]
    status: ApprovalState


@dataclass(frozen=True)
class ApprovalPage:
    approvals: list[ApprovalView]
    next_page_token: str = ""


@dataclass(frozen=True)
class Decision:
    approval_id: str
    approve: bool
    # Needed to approve; declining needs none.
    code: str = field(default="", repr=False)


async def start_approval(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    party: RelyingParty,
    cmd: StartCommand,
    reply: Reply[StartedApproval, Answer],
) -> Answer:
    require_mode(party, VerifyMode.APPROVAL)
    v = Violations()
    pid = None
    if cmd.personal_id:
        pid = v.check(lambda: parse_personal_id(cmd.personal_id, "personal_id").value)
    message = v.check(lambda: parse_message(cmd.message))
    v.raise_if_any()
    wanted = wanted_attributes(party, cmd.requested)
    now = ctx.clock()
    token = None if cmd.personal_id else new_approval_token()
    request = ApprovalRequest(
        id=new_approval_id(),
        party_id=party.id,
        attributes=wanted,
        code=new_verification_code(),
        created_at=now,
        expires_at=now + APPROVAL_TTL,
        message=message or "",
        by_qr=token is not None,
    )
    started = StartedApproval(request.id, request.code, request.expires_at, token or "")
    caller = party_caller(party)

    def start(r: Repositories) -> Answer | DomainError:
        earlier = reply.replay(r, caller)
        if earlier is not None:
            return earlier
        kept = request
        if pid is None:
            admit(r, party, now)
        else:
            # Before the look-up: an ID number without an account counts alike.
            admit(r, party, now, citizen=r.accounts.subject_of(pid))
            hits = [(PER_PARTY_CITIZEN, f"{party.id}:{pid}"), (PER_CITIZEN, pid)]
            refused = hit_limits(r, now, hits)
            if refused is not None:
                return refused  # committed: the hits count
            cred = r.accounts.credential(pid, VerifyMode.APPROVAL)
            # A citizen who locked the approval mode is not prompted (mode_locks.py).
            shown = (
                cred.account_id is not None
                and cred.state is AccountState.ACTIVE
                and not cred.mode_locked(now)
            )
            kept = replace(
                request, account_id=cred.account_id if shown else None, subject=cred.subject
            )
            outcome = "shown" if shown else "not_shown"
            why = None if shown else "AUTH_MODE_LOCKED" if cred.mode_locked(now) else NOT_ACTIVE
            r.audit.append(
                call_entry(
                    reply,
                    cred.subject,
                    cred.account_id,
                    party.id,
                    "approval.started",
                    outcome,
                    now,
                    reason=why,
                )
            )
        r.approvals.add(kept, token)
        return reply.finish(r, caller, started, now)

    return await answer_once(uow, reply, caller, start)


def _view(
    r: Repositories, ctx: UseCaseContext, request: ApprovalRequest, now: datetime
) -> ApprovalView:
    record = r.parties.get(request.party_id)
    return _shown(ctx, request, "" if record is None else record.party.name, now)


def _shown(
    ctx: UseCaseContext, request: ApprovalRequest, party_name: str, now: datetime
) -> ApprovalView:
    seed = ctx.fingerprint(f"approval-choices\x00{request.id}".encode())
    choices = tuple(code_choices(request.code, seed))
    return ApprovalView(request, party_name, choices, request.status(now))


async def list_approval_requests(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    session_token: str | None,
    page_size: int,
    page_token: str,
) -> ApprovalPage:
    """The citizen's pending requests, newest first (AIP-158 pages)."""
    if not session_token:
        raise session_missing()
    size = pages.page_size(page_size)
    after = pages.after_id(page_token, APPROVAL_ID_PATTERN)
    now = ctx.clock()

    def read(r: Repositories) -> ApprovalPage:
        citizen = citizen_of_session(r, session_token, now)
        found = r.approvals.pending_for(citizen.id, now, after, size + 1)
        shown = [_shown(ctx, f.request, f.party_name, now) for f in found[:size]]
        more = len(found) > size
        return ApprovalPage(shown, pages.next_page_token(shown[-1].request.id) if more else "")

    return await uow.read(read)


async def decide_approval(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    session_token: str | None,
    decision: Decision,
    reply: Reply[ApprovalView, Answer],
) -> Answer:
    """Approves (with the right verification code) or declines one of the
    citizen's pending requests; a waiting Verify in this process wakes at once."""
    if not session_token:
        raise session_missing()
    approval_id = parse_approval_id(decision.approval_id, "approval_id")
    code = parse_verification_code(decision.code) if decision.approve else ""
    state = ApprovalState.APPROVED if decision.approve else ApprovalState.DECLINED
    now = ctx.clock()
    caller = token_scope(ctx, "session", session_token)

    def decide(r: Repositories) -> Answer | DomainError:
        earlier = reply.replay(r, caller)
        if earlier is not None:
            return earlier
        citizen = citizen_of_session(r, session_token, now)
        request = r.approvals.get(approval_id)
        if request is None or request.account_id != citizen.id:
            raise approval_not_found()
        _require_pending(request, now)
        if decision.approve and not hmac.compare_digest(code, request.code):
            left = r.approvals.count_wrong_code(approval_id, MAX_CODE_ATTEMPTS, now)
            if left is None:  # decided meanwhile
                _require_pending(r.approvals.get(approval_id), now)
                raise approval_not_found()
            if left == 0:
                r.audit.append(
                    call_entry(
                        reply,
                        citizen.subject,
                        citizen.id,
                        request.party_id,
                        "approval.voided",
                        "wrong_code",
                        now,
                        reason="VERIFICATION_CODE_WRONG",
                    )
                )
            return reply.refuse(r, caller, wrong_code(left), now)
        if not r.approvals.decide(approval_id, citizen.id, state, now):
            _require_pending(r.approvals.get(approval_id), now)
            raise approval_not_found()
        action = f"approval.{state.value}"
        r.audit.append(
            call_entry(reply, citizen.subject, citizen.id, request.party_id, action, "ok", now)
        )
        decided = replace(request, state=state, decided_at=now)
        return reply.finish(r, caller, _view(r, ctx, decided, now), now)

    try:
        return await answer_once(uow, reply, caller, decide)
    finally:
        ctx.approval_wakeups.notify(approval_id)


def _require_pending(request: ApprovalRequest | None, now: datetime) -> None:
    if request is None:
        raise approval_not_found()
    status = request.status(now)
    if status is ApprovalState.EXPIRED:
        raise approval_expired()
    if status is not ApprovalState.PENDING:
        raise already_decided(status)


async def claim_approval(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    session_token: str | None,
    token: str,
    reply: Reply[ApprovalView, Answer],
) -> Answer:
    """Takes the request whose QR the app scanned as the citizen's, once;
    scanning it again shows it as it stands."""
    if not session_token:
        raise session_missing()
    scanned = parse_approval_token(token)
    now = ctx.clock()
    caller = token_scope(ctx, "session", session_token)

    def claim(r: Repositories) -> Answer:
        earlier = reply.replay(r, caller)
        if earlier is not None:
            return earlier
        citizen = citizen_of_session(r, session_token, now)
        claimed = r.approvals.claim(scanned, citizen.id, citizen.subject, now)
        request = r.approvals.by_token(scanned)
        if request is None:
            raise approval_not_found()
        if claimed is not None:
            action = "approval.claimed"
            r.audit.append(
                call_entry(reply, citizen.subject, citizen.id, request.party_id, action, "ok", now)
            )
        elif request.account_id != citizen.id:
            if request.status(now) is ApprovalState.EXPIRED:
                raise approval_expired()
            raise already_claimed()
        return reply.finish(r, caller, _view(r, ctx, request, now), now)

    return await answer_once(uow, reply, caller, claim)
