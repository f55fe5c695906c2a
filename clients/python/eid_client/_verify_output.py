"""How the online verification commands print (see _output.py for the streams):
a verdict with its demographic answers and receipt, a one-time code's expiry,
and the citizen's access history."""

from __future__ import annotations

from rich.table import Column

from eid.v1 import identity_service_pb2 as pb
from eid_client._output import Output, Rows, party_label, short_when, verify_rows, when
from eid_client._share_output import attributes, short


def method(value: pb.VerificationMethod.ValueType) -> str:
    return short(pb.VerificationMethod.Name(value), "VERIFICATION_METHOD_")


def _match(verdict: pb.AttributeMatch.ValueType) -> str:
    if verdict == pb.ATTRIBUTE_MATCH_UNSPECIFIED:
        return "not claimed"
    return short(pb.AttributeMatch.Name(verdict), "ATTRIBUTE_MATCH_")


def demographic_rows(result: pb.DemographicResult) -> Rows:
    """The answer per claimed attribute; the registered values are never sent."""
    name = _match(result.full_name)
    if result.full_name != pb.ATTRIBUTE_MATCH_UNSPECIFIED and result.full_name_score:
        name += f" (score {result.full_name_score})"
    return [
        ("Full name", name),
        ("Birth date", _match(result.birth_date)),
        ("Gender", _match(result.gender)),
    ]


def print_verification(response: pb.VerifyResponse, out: Output) -> None:
    """A Verify answer: the verdict, the demographic answers, then the receipt
    on a line of its own, unwrapped, for copy and paste."""
    if out.as_json:
        out.json(response)
        return
    out.table("Verification", verify_rows(response))
    if response.method == pb.VERIFICATION_METHOD_DEMOGRAPHIC:
        out.table("Demographic claim", demographic_rows(response.demographic))
        out.hint("Verified only when every claim matches; no attributes are released.")
    if response.receipt:
        out.raw(response.receipt)
        out.hint("Above: the signed receipt of this verification, to keep as evidence.")
        out.hint("Check it offline: eid verify-receipt <RECEIPT> --audience <your party id>")


def otp_rows(response: pb.RequestOtpResponse) -> Rows:
    return [
        ("Code sent to", "the citizen's registered phone, if the ID number has an active account"),
        ("Code expires", when(response.expire_time)),
    ]


def _fixed(header: str) -> Column:
    # Times, methods and verdicts never wrap; party names and attributes may.
    return Column(header, no_wrap=True, overflow="ignore")


def history_columns() -> list[Column]:
    return [
        _fixed("Time"),
        Column("Party", overflow="fold", ratio=1, min_width=12),
        _fixed("Method"),
        _fixed("Verified"),
        Column("Attributes", overflow="fold", ratio=1, min_width=10),
    ]


def history_cells(record: pb.AccessRecord) -> list[str]:
    """One row of `eid history`."""
    return [
        short_when(record.verify_time),
        party_label(record.party_name, record.party_id),
        method(record.method),
        "yes" if record.verified else "no",
        attributes(list(record.attributes)) if record.attributes else "none",
    ]
