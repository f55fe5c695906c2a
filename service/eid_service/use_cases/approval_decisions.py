"""The citizen's side of an approval request (approvals.py): claim the one
whose QR code the app scanned, and approve it (confirming the verification
code) or decline it. Each decision wakes a Verify waiting on it in this
process at once; other processes' waits find it by polling."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field, replace
from datetime import datetime

from eid_service.domain.approval import (
    MAX_CODE_ATTEMPTS,
    ApprovalRequest,
    ApprovalState,
    already_claimed,
    already_decided,
    approval_expired,
    approval_not_found,
    parse_approval_id,
    parse_approval_token,
    parse_verification_code,
    wrong_code,
)
from eid_service.domain.errors import DomainError
from eid_service.domain.mode_locks import mode_locked
from eid_service.domain.party import VerifyMode
from eid_service.use_cases.approvals import ApprovalView, approval_mode_locked, approval_view
from eid_service.use_cases.auth import citizen_of_session, session_missing
from eid_service.use_cases.call_audit import call_entry
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.ports import Repositories, UnitOfWork
from eid_service.use_cases.replies import Answer, Reply, answer_once, session_scope


@dataclass(frozen=True)
class Decision:
    approval_id: str
    approve: bool
    # Needed to approve; declining needs none.
    code: str = field(default="", repr=False)


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
    caller = session_scope(ctx, session_token)

    def decide(r: Repositories) -> Answer | DomainError:
        earlier = reply.replay(r, caller)
        if earlier is not None:
            return earlier
        citizen = citizen_of_session(r, session_token, now)
        request = r.approvals.get(approval_id)
        if request is None or request.account_id != citizen.id:
            raise approval_not_found()
        _require_pending(request, now)
        if decision.approve and approval_mode_locked(r, citizen.id, now):
            raise mode_locked(VerifyMode.APPROVAL)  # declining is always allowed
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
        return reply.finish(r, caller, approval_view(r, ctx, decided, now), now)

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
    caller = session_scope(ctx, session_token)

    def claim(r: Repositories) -> Answer:
        earlier = reply.replay(r, caller)
        if earlier is not None:
            return earlier
        citizen = citizen_of_session(r, session_token, now)
        if approval_mode_locked(r, citizen.id, now):
            raise mode_locked(VerifyMode.APPROVAL)  # left unclaimed
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
        return reply.finish(r, caller, approval_view(r, ctx, request, now), now)

    return await answer_once(uow, reply, caller, claim)
