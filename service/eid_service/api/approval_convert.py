"""Translation of approval requests between eid.v1 messages and use cases,
and how long Verify may wait on a pending request (see approval_rpcs.py)."""

from __future__ import annotations

from google.protobuf.duration_pb2 import Duration

from eid.v1 import identity_service_pb2 as pb
from eid_service.api import convert
from eid_service.api.servicer_base import Context
from eid_service.domain.approval import APPROVAL_TTL, ApprovalState
from eid_service.domain.errors import InvalidInput
from eid_service.use_cases.approvals import ApprovalView, StartedApproval

STATE_TO_PB = {
    ApprovalState.PENDING: pb.APPROVAL_STATE_PENDING,
    ApprovalState.APPROVED: pb.APPROVAL_STATE_APPROVED,
    ApprovalState.DECLINED: pb.APPROVAL_STATE_DECLINED,
    ApprovalState.VOIDED: pb.APPROVAL_STATE_VOIDED,
    ApprovalState.EXPIRED: pb.APPROVAL_STATE_EXPIRED,
}
DECISION_FROM_PB = {pb.APPROVAL_DECISION_APPROVE: True, pb.APPROVAL_DECISION_DECLINE: False}
ATTRIBUTE_TO_PB = {v: k for k, v in convert.ATTRIBUTE_FROM_PB.items()}
# A pending answer leaves the caller this share of its remaining time (at
# most half a second) to receive it before its deadline.
_DEADLINE_MARGIN = 0.2
_MAX_MARGIN_SECONDS = 0.5


def started_pb(started: StartedApproval) -> pb.StartApprovalResponse:
    return pb.StartApprovalResponse(
        approval_id=started.approval_id,
        verification_code=started.code,
        expire_time=convert.timestamp(started.expires_at),
        qr_token=started.token,
    )


def approval_request_pb(view: ApprovalView) -> pb.ApprovalRequest:
    request = view.request
    return pb.ApprovalRequest(
        approval_id=request.id,
        party_id=request.party_id,
        party_name=view.party_name,
        attributes=sorted(ATTRIBUTE_TO_PB[a] for a in request.attributes),
        verification_code=request.code,
        verification_code_choices=list(view.choices),
        message=request.message,
        create_time=convert.timestamp(request.created_at),
        expire_time=convert.timestamp(request.expires_at),
        state=STATE_TO_PB[view.status],
    )


def decision(value: int) -> bool:
    """True to approve, False to decline."""
    found = DECISION_FROM_PB.get(value)  # type: ignore[call-overload]
    if found is None:
        raise InvalidInput.of(
            "decision", "APPROVAL_DECISION_UNSPECIFIED", "decision must be APPROVE or DECLINE"
        )
    approve: bool = found
    return approve


def _max_wait_seconds(wait: Duration) -> float:
    if wait.seconds < 0 or wait.nanos < 0 or wait.nanos >= 1_000_000_000:
        raise InvalidInput.of(
            "approval.max_wait",
            "MAX_WAIT_INVALID",
            "max_wait is a duration of 0 or more (a request lives 2 minutes at most)",
        )
    return wait.seconds + wait.nanos / 1e9


def approval_wait(credential: pb.ApprovalCredential, context: Context) -> float:
    """Seconds Verify may wait for a pending request's decision: max_wait if
    given, never past the request's lifetime, and ending early enough before
    the call's deadline for the caller to hear APPROVAL_PENDING."""
    seconds = APPROVAL_TTL.total_seconds()
    if credential.HasField("max_wait"):
        seconds = min(seconds, _max_wait_seconds(credential.max_wait))
    remaining = context.time_remaining()
    if remaining is not None:
        seconds = min(seconds, remaining - min(_MAX_MARGIN_SECONDS, remaining * _DEADLINE_MARGIN))
    return max(0.0, seconds)
