"""Approval on the citizen's device (domain/approval.py): a relying party
starts a request and the signed-in citizen lists the pending ones; the
citizen claims (QR variant) and decides them in approval_decisions.py, and
the party collects the outcome with Verify (verify_approval.py).

StartApproval answers alike for any well-formed ID number: a request for one
with no ACTIVE account, or whose citizen locked the approval mode, is kept,
counted and expires like any other, but is shown to nobody, so a stranger
learns nothing about who has an account or a lock. (A QR request the citizen
scans and claims is their own act: a lock does not stop it.)"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from eid_service.domain.account import AccountState
from eid_service.domain.approval import (
    APPROVAL_ID_PATTERN,
    APPROVAL_TTL,
    PER_CITIZEN,
    PER_PARTY_CITIZEN,
    PER_PARTY_CITIZEN_HOUR,
    ApprovalRequest,
    ApprovalState,
    code_choices,
    new_approval_id,
    new_approval_token,
    new_verification_code,
    parse_message,
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
            hits = [
                (PER_PARTY_CITIZEN, f"{party.id}:{pid}"),
                (PER_PARTY_CITIZEN_HOUR, f"{party.id}:{pid}"),
                (PER_CITIZEN, pid),
            ]
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


def approval_mode_locked(r: Repositories, account_id: str, now: datetime) -> bool:
    """Whether the citizen has the approval mode locked now: then no prompt is
    shown, approved or claimed, and none approved before is collected."""
    return any(
        lock.mode is VerifyMode.APPROVAL and lock.holds(now)
        for lock in r.mode_locks.of_account(account_id)
    )


def approval_view(
    r: Repositories, ctx: UseCaseContext, request: ApprovalRequest, now: datetime
) -> ApprovalView:
    record = r.parties.get(request.party_id)
    return shown_view(ctx, request, "" if record is None else record.party.name, now)


def shown_view(
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
    """The citizen's pending requests, newest first (AIP-158 pages); none
    while the citizen has the approval mode locked (even those started
    before the lock: a flood of prompts is what a lock stops)."""
    if not session_token:
        raise session_missing()
    size = pages.page_size(page_size)
    after = pages.after_id(page_token, APPROVAL_ID_PATTERN)
    now = ctx.clock()

    def read(r: Repositories) -> ApprovalPage:
        citizen = citizen_of_session(r, session_token, now)
        if approval_mode_locked(r, citizen.id, now):
            return ApprovalPage([], "")
        found = r.approvals.pending_for(citizen.id, now, after, size + 1)
        shown = [shown_view(ctx, f.request, f.party_name, now) for f in found[:size]]
        more = len(found) > size
        return ApprovalPage(shown, pages.next_page_token(shown[-1].request.id) if more else "")

    return await uow.read(read)
