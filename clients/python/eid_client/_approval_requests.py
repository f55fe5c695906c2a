"""Request builders of the approval flow (a relying party asks, the citizen
approves on their device), shared by the sync and async clients."""

from __future__ import annotations

from google.protobuf.duration_pb2 import Duration

from eid.v1 import identity_service_pb2 as pb
from eid_client._requests import new_request_id, parse_image_format
from eid_client._verify_requests import Scopes, parse_scopes

# A request lives 2 minutes: waiting longer than that on one is never needed.
MAX_WAIT_SECONDS = 120.0


def start_approval_request(
    *,
    personal_id: str,
    requested_scopes: Scopes,
    message: str,
    image_format: str,
    request_id: str | None,
) -> pb.StartApprovalRequest:
    image = parse_image_format(image_format)
    if personal_id and image not in (pb.QR_IMAGE_FORMAT_UNSPECIFIED, pb.QR_IMAGE_FORMAT_NONE):
        raise ValueError("image_format= draws the QR variant's token: leave personal_id empty")
    return pb.StartApprovalRequest(
        request_id=new_request_id(request_id),
        personal_id=personal_id,
        requested_scopes=parse_scopes(requested_scopes),
        message=message,
        image_format=image,
    )


def approval_verify_request(
    approval_id: str, *, wait: float | None, requested_scopes: Scopes, request_id: str | None
) -> pb.VerifyRequest:
    """``wait`` seconds (0 to 120) for a pending decision; None: as long as
    the call's deadline allows."""
    if not approval_id:
        raise ValueError("pass the approval_id start_approval() returned")
    credential = pb.ApprovalCredential(approval_id=approval_id)
    if wait is not None:
        if not 0 <= wait <= MAX_WAIT_SECONDS:  # NaN too
            raise ValueError(f"wait= is 0 to {MAX_WAIT_SECONDS:g} seconds")
        credential.max_wait.CopyFrom(Duration(seconds=int(wait), nanos=int(wait % 1 * 1e9)))
    return pb.VerifyRequest(
        approval=credential,
        request_id=new_request_id(request_id),
        requested_scopes=parse_scopes(requested_scopes),
    )


def list_approval_requests_request(
    page_size: int, page_token: str
) -> pb.ListApprovalRequestsRequest:
    if page_size < 0:
        raise ValueError("page_size must be 0 (the server default) or more")
    return pb.ListApprovalRequestsRequest(page_size=page_size, page_token=page_token)


def decide_approval_request(
    approval_id: str, *, approve: bool, verification_code: str, request_id: str | None
) -> pb.DecideApprovalRequest:
    if approve and not verification_code:
        raise ValueError("approving needs the verification_code= the relying party shows")
    return pb.DecideApprovalRequest(
        request_id=new_request_id(request_id),
        approval_id=approval_id,
        decision=pb.APPROVAL_DECISION_APPROVE if approve else pb.APPROVAL_DECISION_DECLINE,
        verification_code=verification_code if approve else "",
    )


def claim_approval_request(token: str, request_id: str | None) -> pb.ClaimApprovalRequest:
    if not token:
        raise ValueError("pass the token read from the relying party's QR code")
    return pb.ClaimApprovalRequest(request_id=new_request_id(request_id), token=token.strip())
