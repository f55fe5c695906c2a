"""How the share and key commands print their results (see _output.py for the
streams): shares, keys and the attributes of a verified offline credential."""

from __future__ import annotations

import base64
import datetime
from dataclasses import dataclass

from google.protobuf import timestamp_pb2
from rich.table import Column

from eid.v1 import identity_service_pb2 as pb
from eid_client._output import Rows, attribute, short_when, when
from eid_client.offline import OfflineCredential, VerificationKey


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


def key_columns() -> list[Column]:
    return [
        _fixed("Key ID"),
        _fixed("State"),
        _fixed("Not before"),
        _fixed("Not after"),
        _fixed("Public key (Ed25519, base64url)"),
    ]


def _iso(moment: datetime.datetime | None) -> str:
    return "-" if moment is None else moment.astimezone().isoformat(timespec="seconds")


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class KeyView:
    """A verification key as `eid keys` shows it, from the server or from a cache file
    (which keeps no start time, and whose state is read from retirement and revocation)."""

    key_id: str
    state: str
    public_key: bytes
    not_before: datetime.datetime | None
    not_after: datetime.datetime | None

    @classmethod
    def listed(cls, key: pb.VerificationKey) -> KeyView:
        return cls(
            key.key_id,
            key_state(key.state),
            key.public_key,
            _moment(key.not_before) if key.HasField("not_before") else None,
            _moment(key.not_after) if key.HasField("not_after") else None,
        )

    @classmethod
    def cached(cls, key: VerificationKey) -> KeyView:
        state = "REVOKED" if key.revoked else "RETIRED" if key.not_after else "CURRENT"
        return cls(key.key_id, state, key.public_key, None, key.not_after)

    def cells(self) -> list[str]:
        return [
            self.key_id,
            self.state,
            _short(self.not_before),
            _short(self.not_after),
            _b64url(self.public_key),
        ]

    def as_json(self) -> dict[str, str | None]:
        return {
            "key_id": self.key_id,
            "algorithm": "EdDSA",
            "state": self.state,
            "public_key": _b64url(self.public_key),
            "not_before": None if self.not_before is None else self.not_before.isoformat(),
            "not_after": None if self.not_after is None else self.not_after.isoformat(),
        }


def _moment(stamp: timestamp_pb2.Timestamp) -> datetime.datetime:
    return stamp.ToDatetime(tzinfo=datetime.UTC)


def _short(moment: datetime.datetime | None) -> str:
    return "-" if moment is None else moment.astimezone().strftime("%Y-%m-%d %H:%M")


def credential_rows(credential: OfflineCredential) -> Rows:
    """A verified offline credential: who signed it, its validity and what it shares."""
    rows: Rows = [
        ("Verified", "yes, offline (no call to eid)"),
        ("Issuer", credential.issuer),
        ("Signed by key", credential.key_id),
        ("Share ID", credential.share_id),
        ("Issued", _iso(credential.issued_at)),
        ("Expires", _iso(credential.expires_at)),
        ("Audience", credential.audience or "any party"),
    ]
    shared = [(label, value) for label, value in _attribute_values(credential) if value]
    rows.extend(shared or [("Attributes", "none")])
    return rows


def _attribute_values(credential: OfflineCredential) -> list[tuple[str, str | None]]:
    return [
        ("Personal ID", credential.personal_id),
        ("Full name", credential.full_name),
        ("Birth date", credential.birth_date),
        ("Gender", credential.gender),
        ("Phone number", credential.phone_number),
        ("Email", credential.email),
        ("Nationality", credential.nationality),
    ]


def credential_json(credential: OfflineCredential) -> dict[str, object]:
    """The JSON of `eid --json verify-qr`: only the attributes the citizen shared."""
    attributes = {
        name: value
        for name, value in (
            ("personal_id", credential.personal_id),
            ("full_name", credential.full_name),
            ("birth_date", credential.birth_date),
            ("gender", credential.gender),
            ("phone_number", credential.phone_number),
            ("email", credential.email),
            ("nationality", credential.nationality),
        )
        if value is not None
    }
    return {
        "verified": True,
        "mode": "offline",
        "issuer": credential.issuer,
        "key_id": credential.key_id,
        "share_id": credential.share_id,
        "issue_time": credential.issued_at.isoformat(),
        "expire_time": credential.expires_at.isoformat(),
        "audience": credential.audience,
        "attributes": attributes,
    }
