"""Online QR share tokens: round trip, forgery and tamper rejection with the
reason of the first failed check, revoked keys, rotation, tokens of the
earlier Ed25519 format, and what the published keys can and cannot do."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from eid_service.domain.errors import InvalidInput, PreconditionFailed
from eid_service.security.keys import KeyRing, generate_key_ring, rotate
from eid_service.security.share_tokens import ShareClaims, ShareTokenSigner, mac_key

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
    """A correctly tagged token around an arbitrary payload (to test checks after the tag)."""
    kid = ring.active_signing_key_id
    signing_input = "eid2." + _b64(payload)
    key = mac_key(ring.signing_keys[kid], kid)
    return signing_input + "." + _b64(hmac.digest(key, signing_input.encode(), "sha256")[:16])


def _sign_legacy(ring: KeyRing, payload: bytes) -> str:
    """A token of the earlier format: "eid1.", the payload signed with Ed25519."""
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


def signer_of(ring: KeyRing, revoked: frozenset[str] = frozenset()) -> ShareTokenSigner:
    """A signer with the ring's active key that verifies with every ring key."""
    return ShareTokenSigner(ring.active_signing_key_id, ring.signing_keys, revoked)


_INVALID_REASONS = {
    "SHARE_PAYLOAD_TOO_LARGE",
    "SHARE_PAYLOAD_PREFIX_UNKNOWN",
    "SHARE_PAYLOAD_VERSION_UNSUPPORTED",
    "SHARE_PAYLOAD_MALFORMED",
    "SHARE_KEY_UNKNOWN",
    "SHARE_SIGNATURE_INVALID",
}


def _assert_invalid(signer: ShareTokenSigner, token: str, reason: str | None = None) -> None:
    with pytest.raises(InvalidInput) as excinfo:
        signer.read(token)
    error = excinfo.value
    assert error.reason in _INVALID_REASONS
    if reason is not None:
        assert error.reason == reason
    assert [(v.field, v.reason) for v in error.violations] == [("qr_share.token", error.reason)]
    assert not token or token not in str(error)
    assert error.__cause__ is None
    assert signer.claims_of_genuine(token) is None


@pytest.fixture
def ring() -> KeyRing:
    return generate_key_ring()


@pytest.fixture
def signer(ring: KeyRing) -> ShareTokenSigner:
    return signer_of(ring)


@pytest.mark.parametrize("audience", ["bank-vcb", None])
def test_round_trip_keeps_claims_to_the_second(
    signer: ShareTokenSigner, audience: str | None
) -> None:
    token = signer.issue(_claims(audience))

    claims = signer.read(token)

    assert claims == ShareClaims(
        SHARE_ID, audience, ISSUED.replace(microsecond=0), EXPIRES.replace(microsecond=0)
    )
    assert claims.expires_at.tzinfo is not None


def test_token_is_compact_and_self_describing(ring: KeyRing, signer: ShareTokenSigner) -> None:
    token = signer.issue(_claims())

    prefix, payload, signature = token.split(".")
    assert prefix == "eid2"
    assert "=" not in token
    assert len(_unb64(signature)) == 16  # a 128-bit tag
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
    assert len(token) < 200  # fits a small QR code


def test_extending_the_expiry_breaks_the_signature(ring: KeyRing, signer: ShareTokenSigner) -> None:
    token = signer.issue(_claims())
    _, _, signature = token.split(".")
    forged = "eid2." + _b64(_payload(ring, exp=int(EXPIRES.timestamp()) + 86400)) + "." + signature

    _assert_invalid(signer, forged, "SHARE_SIGNATURE_INVALID")


def test_changing_the_share_or_audience_breaks_the_signature(
    ring: KeyRing, signer: ShareTokenSigner
) -> None:
    signature = signer.issue(_claims()).split(".")[2]

    forged_share = "eid2." + _b64(_payload(ring, sid="other-share")) + "." + signature
    forged_audience = "eid2." + _b64(_payload(ring, aud="telco-x")) + "." + signature
    _assert_invalid(signer, forged_share, "SHARE_SIGNATURE_INVALID")
    _assert_invalid(signer, forged_audience, "SHARE_SIGNATURE_INVALID")


def test_any_changed_character_is_rejected(signer: ShareTokenSigner) -> None:
    token = signer.issue(_claims())

    for index in range(len(token)):
        replacement = "B" if token[index] != "B" else "C"
        _assert_invalid(signer, token[:index] + replacement + token[index + 1 :])


def test_token_of_another_key_ring_is_rejected(signer: ShareTokenSigner) -> None:
    foreign = signer_of(generate_key_ring()).issue(_claims())

    _assert_invalid(signer, foreign, "SHARE_KEY_UNKNOWN")


def test_same_key_id_with_a_different_key_is_rejected(ring: KeyRing) -> None:
    key_id = ring.active_signing_key_id
    impostor = KeyRing(
        hmac_key=ring.hmac_key,
        encryption_keys=ring.encryption_keys,
        active_encryption_key_id=ring.active_encryption_key_id,
        signing_keys={key_id: Ed25519PrivateKey.generate()},
        active_signing_key_id=key_id,
    )

    _assert_invalid(
        signer_of(ring), signer_of(impostor).issue(_claims()), "SHARE_SIGNATURE_INVALID"
    )


def test_a_revoked_key_fails_after_its_signature_checks_out(ring: KeyRing) -> None:
    token = signer_of(ring).issue(_claims())
    revoked = signer_of(ring, revoked=frozenset({ring.active_signing_key_id}))

    with pytest.raises(PreconditionFailed) as excinfo:
        revoked.read(token)
    assert excinfo.value.reason == "SHARE_KEY_REVOKED"
    # A forgery naming the revoked key is still a bad signature, not "revoked".
    forged = "eid2." + _b64(_payload(ring, sid="other")) + "." + token.split(".")[2]
    _assert_invalid(revoked, forged, "SHARE_SIGNATURE_INVALID")


def test_reading_does_not_judge_expiry(signer: ShareTokenSigner) -> None:
    # Whether a share is still good is the store's to say (a retried
    # redemption gets its first answer even after expiry).
    token = signer.issue(_claims())

    assert signer.read(token).expires_at == EXPIRES.replace(microsecond=0)


def _garbage(ring: KeyRing, valid: str) -> list[Any]:
    head, payload, signature = valid.split(".")
    return [
        pytest.param("", id="empty"),
        pytest.param("eid2", id="prefix-only"),
        pytest.param("eid2..", id="empty-parts"),
        pytest.param("eid2.a.b", id="short-parts"),
        pytest.param("eid1." + payload + "." + signature, id="tag-as-legacy-signature"),
        pytest.param(_sign_legacy(ring, payload.encode())[:-4], id="legacy-short-signature"),
        pytest.param(valid + ".", id="extra-part"),
        pytest.param(valid + "=", id="padding"),
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


@pytest.mark.parametrize("token", _garbage(_RING, signer_of(_RING).issue(_claims())))
def test_garbage_is_rejected_as_invalid(token: str) -> None:
    _assert_invalid(signer_of(_RING), token)


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("x" * 4097, "SHARE_PAYLOAD_TOO_LARGE"),
        ("eid3.e30.AAAA", "SHARE_PAYLOAD_VERSION_UNSUPPORTED"),
        ("eid10.e30.AAAA", "SHARE_PAYLOAD_VERSION_UNSUPPORTED"),
        ("HC1:NCFOXN", "SHARE_PAYLOAD_PREFIX_UNKNOWN"),
        (" eid1.e30.AAAA", "SHARE_PAYLOAD_PREFIX_UNKNOWN"),
        ("", "SHARE_PAYLOAD_PREFIX_UNKNOWN"),
    ],
)
def test_size_prefix_and_version_have_their_own_reasons(token: str, reason: str) -> None:
    _assert_invalid(signer_of(_RING), token, reason)


def test_rotation_keeps_old_tokens_valid(ring: KeyRing) -> None:
    old_token = signer_of(ring).issue(_claims())
    rotated_ring = rotate(ring)
    rotated = signer_of(rotated_ring)

    assert rotated.read(old_token).share_id == SHARE_ID

    new_token = rotated.issue(_claims())
    kid = json.loads(_unb64(new_token.split(".")[1]))["kid"]
    assert kid == rotated_ring.active_signing_key_id != ring.active_signing_key_id
    # The old signer cannot know the new key.
    _assert_invalid(signer_of(ring), new_token, "SHARE_KEY_UNKNOWN")


def test_the_published_keys_can_neither_check_nor_forge_a_token(ring: KeyRing) -> None:
    # Online tokens are opaque to everyone but the service: the MAC key is
    # derived from the private key, so the public key is no help to a forger.
    token = signer_of(ring).issue(_claims())
    public = ring.signing_keys[ring.active_signing_key_id].public_key().public_bytes_raw()
    head, payload, _ = token.split(".")
    guessed = hmac.digest(public, f"{head}.{payload}".encode(), hashlib.sha256)[:16]

    _assert_invalid(signer_of(ring), f"{head}.{payload}.{_b64(guessed)}", "SHARE_SIGNATURE_INVALID")


def test_tokens_of_the_earlier_ed25519_format_are_still_read(ring: KeyRing) -> None:
    # Issued before "eid2": redeemable until they expire, rotation and revocation alike.
    legacy = _sign_legacy(ring, _payload(ring))
    rotated_ring = rotate(ring)

    assert signer_of(rotated_ring).read(legacy) == signer_of(ring).read(
        _sign_raw(ring, _payload(ring))
    )
    flipped = legacy[:-3] + ("A" if legacy[-3] != "A" else "B") + legacy[-2:]
    _assert_invalid(signer_of(ring), flipped, "SHARE_SIGNATURE_INVALID")
    revoked = signer_of(ring, revoked=frozenset({ring.active_signing_key_id}))
    with pytest.raises(PreconditionFailed) as excinfo:
        revoked.read(legacy)
    assert excinfo.value.reason == "SHARE_KEY_REVOKED"


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
    assert isinstance(signer.read(signer.issue(_claims())), ShareClaims)
