"""How the approval commands print: a started request, a request as the
citizen sees it, and advice when the party's wait ends without a verdict."""

from __future__ import annotations

from rich.table import Column

from eid.v1 import identity_service_pb2 as pb
from eid_client._output import Rows, party_label, short_when, when
from eid_client._share_output import attributes, short

# What a party can do about each way a request ends unverified.
ADVICE = {
    "APPROVAL_DECLINED": "The citizen declined. Ask them before starting another request.",
    "APPROVAL_WRONG_CODE": "The citizen confirmed another code three times: show the code "
    "clearly, next to your prompt, and start a new request.",
    "APPROVAL_EXPIRED": "Nobody decided within 2 minutes (or the ID number has no active "
    "account: the two look alike). Start a new request if the citizen is there.",
    "APPROVAL_ALREADY_USED": "An earlier Verify collected this approval; its request_id "
    "replays the answer.",
    "APPROVAL_PENDING": "Still waiting for the citizen: run `eid approval wait` again.",
}


def state(value: pb.ApprovalState.ValueType) -> str:
    return short(pb.ApprovalState.Name(value), "APPROVAL_STATE_")


def started_rows(response: pb.StartApprovalResponse, personal_id: str) -> Rows:
    shown_to = (
        "the eid app of the citizen this ID number names, if it has an active account"
        if personal_id
        else "whoever scans the QR code with their eid app"
    )
    return [
        ("Approval ID", response.approval_id),
        ("Verification code", response.verification_code),
        ("Shown to", shown_to),
        ("Expires", when(response.expire_time)),
    ]


def request_rows(request: pb.ApprovalRequest) -> Rows:
    return [
        ("Approval ID", request.approval_id),
        ("Party", party_label(request.party_name, request.party_id)),
        ("Asks for", attributes(list(request.attributes)) if request.attributes else "nothing"),
        ("Note", request.message or "-"),
        ("Verification code", request.verification_code),
        ("Expires", when(request.expire_time)),
        ("State", state(request.state)),
    ]


def _fixed(header: str) -> Column:
    return Column(header, no_wrap=True, overflow="ignore")


def pending_columns() -> list[Column]:
    return [
        _fixed("Approval ID"),
        Column("Party", overflow="fold", ratio=1, min_width=10),
        _fixed("Code"),
        Column("Asks for", overflow="fold", ratio=1, min_width=10),
        _fixed("Expires"),
        Column("Note", overflow="fold", ratio=1, min_width=8),
    ]


def pending_cells(request: pb.ApprovalRequest) -> list[str]:
    return [
        request.approval_id,
        party_label(request.party_name, request.party_id),
        request.verification_code,
        attributes(list(request.attributes)) if request.attributes else "nothing",
        short_when(request.expire_time),
        request.message or "-",
    ]
