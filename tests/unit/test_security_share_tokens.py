"""QR share tokens: round trip, forgery and tamper rejection, expiry, rotation, offline check."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from eid_service.domain.errors import InvalidInput, PreconditionFailed
from eid_service.security.keys import KeyRing, generate_key_ring, rotate
from eid_service.security.share_tokens import ShareClaims, ShareTokenSigner

ISSUED = datetime(2026, 11, 23, 9, 30, 15, 987654, tzinfo=UTC)
EXPIRES = ISSUED + timedelta(minutes=10)
SHARE_ID = "6f1c2a7e-0d4b-4c1e-9a55-3f0a3b7d9e21"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _claims(audience: str | None = "bank-vcb") -> ShareClaims:
    return ShareClaims(SHARE_ID, audience, ISSUED, EXPIRES)


def _sign_raw(ring: KeyRing, payload: bytes) -> str:
    """A correctly signed token around an arbitrary payload (to test checks after the signature)."""
    signing_input = "eid1." + _b64(payload)
    signature = ring.signing_keys[ring.active_signing_key_id].sign(signing_input.encode())
    return signing_input + "." + _b64(signature)


def _payload(ring: KeyRing, **changes: Any) -> bytes:
    payload: dict[str, Any] = {
        "aud": "bank-vcb",
        "exp": int(EXPIRES.timestamp()),
        "iat": int(ISSUED.timestamp()),
        "kid": ring.active_signing_key_id,
        "sid": SHARE_ID,
    }
    payload.update(changes)
    return json.dumps({k: v for k, v in payload.items() if v is not ...}).encode()


def _assert_invalid(signer: ShareTokenSigner, token: str, now: datetime = ISSUED) -> None:
    with pytest.raises(InvalidInput) as excinfo:
        signer.verify(token, now=now)
    error = excinfo.value
    assert error.reason == "SHARE_TOKEN_INVALID"
    assert str(error) == "the share token is not valid"  # same text whatever check failed
    assert [(v.field, v.reason) for v in error.violations] == [
        ("qr_share.token", "SHARE_TOKEN_INVALID")
    ]
    assert error.__cause__ is None


@pytest.fixture
def ring() -> KeyRing:
    return generate_key_ring()


@pytest.fixture
def signer(ring: KeyRing) -> ShareTokenSigner:
    return ShareTokenSigner(ring)


@pytest.mark.parametrize("audience", ["bank-vcb", None])
def test_round_trip_keeps_claims_to_the_second(
    signer: ShareTokenSigner, audience: str | None
) -> None:
    token = signer.issue(_claims(audience))

    claims = signer.verify(token, now=ISSUED + timedelta(minutes=1))

    assert claims == ShareClaims(
        SHARE_ID, audience, ISSUED.replace(microsecond=0), EXPIRES.replace(microsecond=0)
    )
    assert claims.expires_at.tzinfo is not None


def test_token_is_compact_and_self_describing(ring: KeyRing, signer: ShareTokenSigner) -> None:
    token = signer.issue(_claims())

    prefix, payload, signature = token.split(".")
    assert prefix == "eid1"
    assert "=" not in token
    assert len(_unb64(signature)) == 64
    assert (
        _unb64(payload)
        == json.dumps(
            {
                "aud": "bank-vcb",
                "exp": int(EXPIRES.timestamp()),
                "iat": int(ISSUED.timestamp()),
                "kid": ring.active_signing_key_id,
                "sid": SHARE_ID,
            },
            separators=(",", ":"),
            sort_keys=True,
        ).encode()
    )
    assert len(token) < 300  # fits a small QR code


def test_extending_the_expiry_breaks_the_signature(ring: KeyRing, signer: ShareTokenSigner) -> None:
    token = signer.issue(_claims())
    _, _, signature = token.split(".")
    forged = "eid1." + _b64(_payload(ring, exp=int(EXPIRES.timestamp()) + 86400)) + "." + signature

    _assert_invalid(signer, forged)


def test_changing_the_share_or_audience_breaks_the_signature(
    ring: KeyRing, signer: ShareTokenSigner
) -> None:
    signature = signer.issue(_claims()).split(".")[2]

    _assert_invalid(signer, "eid1." + _b64(_payload(ring, sid="other-share")) + "." + signature)
    _assert_invalid(signer, "eid1." + _b64(_payload(ring, aud="telco-x")) + "." + signature)


def test_any_changed_character_is_rejected(signer: ShareTokenSigner) -> None:
    token = signer.issue(_claims())

    for index in range(len(token)):
        replacement = "B" if token[index] != "B" else "C"
        _assert_invalid(signer, token[:index] + replacement + token[index + 1 :])


def test_token_of_another_key_ring_is_rejected(signer: ShareTokenSigner) -> None:
    foreign = ShareTokenSigner(generate_key_ring()).issue(_claims())

    _assert_invalid(signer, foreign)


def test_same_key_id_with_a_different_key_is_rejected(ring: KeyRing) -> None:
    key_id = ring.active_signing_key_id
    impostor = KeyRing(
        hmac_key=ring.hmac_key,
        encryption_keys=ring.encryption_keys,
        active_encryption_key_id=ring.active_encryption_key_id,
        signing_keys={key_id: Ed25519PrivateKey.generate()},
        active_signing_key_id=key_id,
    )

    _assert_invalid(ShareTokenSigner(ring), ShareTokenSigner(impostor).issue(_claims()))


def test_expired_token_says_expired(signer: ShareTokenSigner) -> None:
    token = signer.issue(_claims())
    expiry = EXPIRES.replace(microsecond=0)

    assert signer.verify(token, now=expiry - timedelta(seconds=1)).share_id == SHARE_ID
    for now in (expiry, expiry + timedelta(days=30)):
        with pytest.raises(PreconditionFailed) as excinfo:
            signer.verify(token, now=now)
        assert excinfo.value.reason == "SHARE_EXPIRED"


def test_forged_expired_token_is_invalid_not_expired(
    ring: KeyRing, signer: ShareTokenSigner
) -> None:
    signature = signer.issue(_claims()).split(".")[2]
    forged = "eid1." + _b64(_payload(ring, sid="other")) + "." + signature

    _assert_invalid(signer, forged, now=EXPIRES + timedelta(days=1))


def _garbage(ring: KeyRing, valid: str) -> list[Any]:
    head, payload, signature = valid.split(".")
    return [
        pytest.param("", id="empty"),
        pytest.param("eid1", id="prefix-only"),
        pytest.param("eid1..", id="empty-parts"),
        pytest.param("eid1.a.b", id="short-parts"),
        pytest.param("eid2." + payload + "." + signature, id="wrong-version"),
        pytest.param(valid + ".", id="extra-part"),
        pytest.param(valid + "=", id="padding"),
        pytest.param(" " + valid, id="leading-space"),
        pytest.param(valid + "\n", id="trailing-newline"),
        pytest.param(head + "." + payload + "." + signature + "A" * 1024, id="too-long"),
        pytest.param(head + "." + payload + "." + signature[:-1] + "é", id="non-ascii"),
        pytest.param(head + "." + payload + "+/." + signature, id="std-base64-alphabet"),
        pytest.param(head + "." + payload + "." + signature[:-4], id="short-signature"),
        pytest.param(_sign_raw(ring, b"not json"), id="signed-not-json"),
        pytest.param(_sign_raw(ring, b"[1, 2]"), id="signed-list"),
        pytest.param(_sign_raw(ring, _payload(ring, sid=...)), id="signed-missing-sid"),
        pytest.param(_sign_raw(ring, _payload(ring, extra=1)), id="signed-extra-key"),
        pytest.param(_sign_raw(ring, _payload(ring, sid=7)), id="signed-sid-not-string"),
        pytest.param(_sign_raw(ring, _payload(ring, sid="")), id="signed-empty-sid"),
        pytest.param(_sign_raw(ring, _payload(ring, aud=1)), id="signed-aud-not-string"),
        pytest.param(_sign_raw(ring, _payload(ring, exp="soon")), id="signed-exp-string"),
        pytest.param(_sign_raw(ring, _payload(ring, exp=1.5e9)), id="signed-exp-float"),
        pytest.param(_sign_raw(ring, _payload(ring, iat=False)), id="signed-iat-bool"),
        pytest.param(_sign_raw(ring, _payload(ring, exp=10**20)), id="signed-exp-huge"),
        pytest.param(_sign_raw(ring, _payload(ring, iat=-1)), id="signed-iat-negative"),
        pytest.param(
            _sign_raw(ring, _payload(ring, exp=int(ISSUED.timestamp()))), id="signed-exp-not-after"
        ),
        pytest.param(_sign_raw(ring, _payload(ring, kid="k-unknown")), id="signed-unknown-kid"),
        pytest.param(_sign_raw(ring, _payload(ring, kid=None)), id="signed-kid-null"),
    ]


# Built once at import so the parametrised ids show up in the report.
_RING = generate_key_ring()


@pytest.mark.parametrize("token", _garbage(_RING, ShareTokenSigner(_RING).issue(_claims())))
def test_garbage_is_rejected_as_invalid(token: str) -> None:
    _assert_invalid(ShareTokenSigner(_RING), token)


def test_rotation_keeps_old_tokens_valid(ring: KeyRing) -> None:
    old_token = ShareTokenSigner(ring).issue(_claims())
    rotated_ring = rotate(ring)
    rotated = ShareTokenSigner(rotated_ring)

    assert rotated.verify(old_token, now=ISSUED).share_id == SHARE_ID

    new_token = rotated.issue(_claims())
    kid = json.loads(_unb64(new_token.split(".")[1]))["kid"]
    assert kid == rotated_ring.active_signing_key_id != ring.active_signing_key_id
    _assert_invalid(ShareTokenSigner(ring), new_token)  # old ring cannot know the new key


def test_published_keys_verify_tokens_offline(ring: KeyRing) -> None:
    signer = ShareTokenSigner(rotate(ring))
    token = signer.issue(_claims())
    published = signer.public_keys()

    assert len(published) == 2
    assert all(len(raw) == 32 for raw in published.values())
    head, payload, signature = token.split(".")
    kid = json.loads(_unb64(payload))["kid"]
    # What a relying party does with the published keys; raises if the signature is wrong.
    Ed25519PublicKey.from_public_bytes(published[kid]).verify(
        _unb64(signature), f"{head}.{payload}".encode()
    )


@pytest.mark.parametrize(
    "claims",
    [
        ShareClaims(SHARE_ID, None, ISSUED, ISSUED),
        ShareClaims(SHARE_ID, None, ISSUED, ISSUED - timedelta(minutes=1)),
        ShareClaims(SHARE_ID, None, ISSUED, ISSUED + timedelta(microseconds=10)),
        ShareClaims("", None, ISSUED, EXPIRES),
        ShareClaims("x" * 129, None, ISSUED, EXPIRES),
        ShareClaims(SHARE_ID, "", ISSUED, EXPIRES),
    ],
)
def test_issue_rejects_claims_that_cannot_make_a_valid_token(
    signer: ShareTokenSigner, claims: ShareClaims
) -> None:
    with pytest.raises(ValueError, match=r"share_id|audience|expires_at"):
        signer.issue(claims)


def test_naive_datetimes_are_rejected(signer: ShareTokenSigner) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ShareClaims(SHARE_ID, None, ISSUED.replace(tzinfo=None), EXPIRES)
    token = signer.issue(_claims())
    with pytest.raises(ValueError, match="timezone-aware"):
        signer.verify(token, now=datetime(2026, 11, 23, 9, 31))
