"""How the share and key commands print their results (see _output.py for the
streams): shares, keys and the attributes of a verified offline credential."""

from __future__ import annotations

from rich.table import Column

from eid.v1 import identity_service_pb2 as pb
from eid_client._output import Rows, attribute, short_when, when


def short(name: str, prefix: str) -> str:
    """An enum value's name without its prefix, e.g. "OFFLINE"; "-" when unspecified."""
    value = name.removeprefix(prefix)
    return "-" if value == "UNSPECIFIED" else value


def mode(value: pb.ShareMode.ValueType) -> str:
    if value == pb.SHARE_MODE_UNSPECIFIED:  # the server reads it as ONLINE
        return "ONLINE"
    return short(pb.ShareMode.Name(value), "SHARE_MODE_")


def share_state(value: pb.ShareState.ValueType) -> str:
    return short(pb.ShareState.Name(value), "SHARE_STATE_")


def key_state(value: pb.VerificationKeyState.ValueType) -> str:
    return short(pb.VerificationKeyState.Name(value), "VERIFICATION_KEY_STATE_")


def use(multi_use: bool) -> str:
    return "multi-use until expiry" if multi_use else "single use"


def attributes(values: list[pb.Attribute.ValueType]) -> str:
    return ", ".join(attribute(a) for a in values) or "-"


def share_rows(share: pb.Share) -> Rows:
    """One share as a two-column table (revoke-share)."""
    rows: Rows = [
        ("Share ID", share.share_id),
        ("Mode", mode(share.mode)),
        ("State", share_state(share.state)),
        ("Use", use(share.multi_use)),
        ("Attributes", attributes(list(share.attributes))),
        ("Audience", share.audience_party_id or "any approved party"),
        ("Created", when(share.create_time)),
        ("Expires", when(share.expire_time)),
        ("Redeemed online", str(share.redeem_count)),
    ]
    if share.HasField("revoke_time"):
        rows.append(("Revoked", when(share.revoke_time)))
    return rows


def _fixed(header: str) -> Column:
    # IDs, states and times never wrap (an ID is copied into revoke-share).
    return Column(header, no_wrap=True, overflow="ignore")


def share_columns() -> list[Column]:
    return [
        _fixed("Share ID"),
        _fixed("Mode"),
        _fixed("State"),
        Column("Attributes", overflow="fold", ratio=1, min_width=10),
        _fixed("Audience"),
        _fixed("Created"),
        _fixed("Expires"),
        _fixed("Redeemed"),
    ]


def share_cells(share: pb.Share) -> list[str]:
    """One row of `eid shares`; "n (multi)" counts the redemptions of a multi-use share."""
    redeemed = str(share.redeem_count) + (" (multi)" if share.multi_use else "")
    return [
        share.share_id,
        mode(share.mode),
        share_state(share.state),
        attributes(list(share.attributes)),
        share.audience_party_id or "any",
        short_when(share.create_time),
        short_when(share.expire_time),
        redeemed,
    ]
