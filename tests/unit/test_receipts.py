"""Signed verification receipts (eid_client.receipts): the round trip, every
refusal reason, tampering at every position, revoked and retired keys, and
interoperability with an independent JOSE library (PyJWT) both ways."""

from __future__ import annotations

import base64
import dataclasses
import json
import string
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from eid_client.offline import KeySet, VerificationKey
from eid_client.receipts import (
    MAX_RECEIPT_CHARS,
    MODES,
    REASONS,
    ReceiptClaims,
    ReceiptVerificationError,
    sign_receipt,
    verify_receipt,
)
from eid_service.domain.signing_key import SigningKeyRecord
from eid_service.security.signing_keys import SigningKey, SigningKeySet

# Fixed keys: with a fresh key per run, about 1 run in 15 signed the genuine
# receipt without "-" or "_", and its "standard alphabet" variant was the
# genuine receipt itself (test_malformed asserts that no case is).
PRIVATE = Ed25519PrivateKey.from_private_bytes(bytes([7]) * 32)
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
ISSUED = datetime(2026, 3, 14, 9, 26, 53, tzinfo=UTC)
CLAIMS = ReceiptClaims(
    issuer="eid.vn",
    subject="sub_" + "a" * 32,
    audience="rp_0123456789abcdef",
    issued_at=ISSUED,
    verification_id="aud_42",
    mode="password",
    level="LEVEL_2",
    attributes=("birth_date", "full_name"),
    verified=True,
)
HEADER: dict[str, object] = {"alg": "EdDSA", "kid": "k1", "typ": "eid-receipt+jwt"}
PAYLOAD: dict[str, object] = {
    "iss": "eid.vn",
    "sub": "sub_" + "a" * 32,
    "aud": "rp_0123456789abcdef",
    "iat": int(ISSUED.timestamp()),
    "jti": "aud_42",
    "mode": "password",
    "level": "LEVEL_2",
    "attrs": ["birth_date", "full_name"],
    "result": "verified",
}


def raw_public(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


KEYS = KeySet([VerificationKey("k1", raw_public(PRIVATE))])


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def forge(
    header: dict[str, object] | bytes = HEADER,
    payload: dict[str, object] | bytes = PAYLOAD,
    key: Ed25519PrivateKey = PRIVATE,
) -> str:
    """A token signed with `key` over any header and payload (JSON given as bytes is kept)."""
    parts = [p if isinstance(p, bytes) else json.dumps(p).encode() for p in (header, payload)]
    signing_input = f"{b64(parts[0])}.{b64(parts[1])}"
    return f"{signing_input}.{b64(key.sign(signing_input.encode()))}"


def refusal(token: str, keys: KeySet = KEYS, **checks: str) -> str:
    with pytest.raises(ReceiptVerificationError) as refused:
        verify_receipt(token, keys, **checks)
    reason = refused.value.reason
    assert reason in REASONS
    return reason


def test_round_trip_and_the_exact_encoding() -> None:
    token = sign_receipt(CLAIMS, "k1", PRIVATE)
    assert verify_receipt(token, KEYS, issuer="eid.vn", audience="rp_0123456789abcdef") == CLAIMS
    header, payload, signature = token.split(".")
    assert unb64(header) == b'{"alg":"EdDSA","kid":"k1","typ":"eid-receipt+jwt"}'
    assert unb64(payload) == json.dumps(PAYLOAD, separators=(",", ":"), sort_keys=True).encode()
    assert len(unb64(signature)) == 64 and "=" not in token


def test_a_failed_verification_round_trips_with_its_reason() -> None:
    failed = dataclasses.replace(
        CLAIMS, level="", attributes=(), verified=False, reason="DEMOGRAPHIC_MISMATCH"
    )
    token = sign_receipt(failed, "k1", PRIVATE)
    payload = json.loads(unb64(token.split(".")[1]))
    assert payload["result"] == "not_verified" and payload["reason"] == "DEMOGRAPHIC_MISMATCH"
    assert verify_receipt(token, KEYS) == failed
    no_reason = dataclasses.replace(failed, reason="")
    token = sign_receipt(no_reason, "k1", PRIVATE)
    assert "reason" not in json.loads(unb64(token.split(".")[1]))
    assert verify_receipt(token, KEYS) == no_reason


@pytest.mark.parametrize("mode", sorted(MODES))
def test_every_mode(mode: str) -> None:
    claims = dataclasses.replace(CLAIMS, mode=mode)
    assert verify_receipt(sign_receipt(claims, "k1", PRIVATE), KEYS).mode == mode


@pytest.mark.parametrize(
    "change",
    [
        {"issued_at": ISSUED.replace(tzinfo=None)},
        {"issued_at": ISSUED.replace(microsecond=1)},
        {"attributes": ("full_name", "birth_date")},
        {"attributes": ("full_name", "full_name")},
        {"attributes": ("",)},
        {"mode": "telepathy"},
        {"issuer": ""},
        {"subject": ""},
        {"audience": ""},
        {"verification_id": ""},
        {"level": ""},  # verified without a level
        {"reason": "WHY"},  # a reason for a success
        {"verified": False},  # a level for a failure
    ],
)
def test_sign_refuses_claims_it_could_not_read_back(change: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"issued_at|claims"):
        sign_receipt(dataclasses.replace(CLAIMS, **change), "k1", PRIVATE)  # type: ignore[arg-type]


def test_sign_refuses_a_bad_key_id() -> None:
    for key_id in ("", "k" * 65):
        with pytest.raises(ValueError, match="key id"):
            sign_receipt(CLAIMS, key_id, PRIVATE)


def test_the_signing_key_set_signs_with_its_current_key() -> None:
    record = SigningKeyRecord("kcur1", raw_public(OTHER), ISSUED - timedelta(days=1))
    keys = SigningKeySet([SigningKey(record, OTHER)], issuer="eid.vn", longest_share=timedelta(1))
    token = keys.sign_receipt(CLAIMS)
    assert json.loads(unb64(token.split(".")[0]))["kid"] == "kcur1"
    assert verify_receipt(token, keys.verification_keys) == CLAIMS


def test_too_large_is_checked_first() -> None:
    assert refusal("." * (MAX_RECEIPT_CHARS + 1)) == "RECEIPT_TOO_LARGE"
    genuine = sign_receipt(CLAIMS, "k1", PRIVATE)
    assert refusal(genuine + "A" * MAX_RECEIPT_CHARS) == "RECEIPT_TOO_LARGE"


GENUINE = sign_receipt(CLAIMS, "k1", PRIVATE)
G_HEADER, G_PAYLOAD, G_SIGNATURE = GENUINE.split(".")


def _without(document: dict[str, object], name: str) -> dict[str, object]:
    return {k: v for k, v in document.items() if k != name}


FAILED = PAYLOAD | {"result": "not_verified", "level": ""}
MALFORMED = {
    "empty": "",
    "two parts": f"{G_HEADER}.{G_PAYLOAD}",
    "four parts": f"{GENUINE}.{G_SIGNATURE}",
    "empty payload": f"{G_HEADER}..{G_SIGNATURE}",
    "padded signature": f"{G_HEADER}.{G_PAYLOAD}.{G_SIGNATURE}==",
    "padded header": f"{G_HEADER}=.{G_PAYLOAD}.{G_SIGNATURE}",
    "standard alphabet": GENUINE.replace("-", "+").replace("_", "/"),
    "whitespace": f"{G_HEADER}.{G_PAYLOAD} .{G_SIGNATURE}",
    "non-ASCII": f"{G_HEADER}.{G_PAYLOAD}é.{G_SIGNATURE}",
    "short signature": f"{G_HEADER}.{G_PAYLOAD}.{G_SIGNATURE[:-2]}",
    "header not JSON": forge(b"{alg: EdDSA}"),
    "header not an object": forge(b'["EdDSA"]'),
    "header not UTF-8": forge(b'{"alg":"\xff"}'),
    "header duplicate key": forge(
        b'{"alg":"EdDSA","kid":"k1","typ":"eid-receipt+jwt","alg":"none"}'
    ),
    "alg none": forge(HEADER | {"alg": "none"}),
    "alg none unsigned": forge(HEADER | {"alg": "none"}).rsplit(".", 1)[0] + ".",
    "alg HS256": forge(HEADER | {"alg": "HS256"}),
    "alg Ed25519": forge(HEADER | {"alg": "Ed25519"}),
    "typ JWT": forge(HEADER | {"typ": "JWT"}),
    "no typ": forge(_without(HEADER, "typ")),
    "no kid": forge(_without(HEADER, "kid")),
    "kid not text": forge(HEADER | {"kid": 1}),
    "kid empty": forge(HEADER | {"kid": ""}),
    "extra header": forge(HEADER | {"crit": ["exp"]}),
    "jwk in header": forge(HEADER | {"jwk": {"kty": "OKP"}}),
    "payload not JSON": forge(payload=b"{iss: eid.vn}"),
    "payload a list": forge(payload=b"[]"),
    "payload NaN": forge(payload=json.dumps(PAYLOAD | {"iat": float("nan")}).encode()),
    "payload duplicate key": forge(payload=json.dumps(PAYLOAD)[:-1].encode() + b',"iss":"x"}'),
    "payload trailing data": forge(payload=json.dumps(PAYLOAD).encode() + b"{}"),
    "unknown claim": forge(payload=PAYLOAD | {"exp": 2_000_000_000}),
    "iat float": forge(payload=PAYLOAD | {"iat": 1.5e9}),
    "iat bool": forge(payload=PAYLOAD | {"iat": True}),
    "iat text": forge(payload=PAYLOAD | {"iat": "1773480413"}),
    "iat negative": forge(payload=PAYLOAD | {"iat": -1}),
    "iat huge": forge(payload=PAYLOAD | {"iat": 10**13}),
    "aud a list": forge(payload=PAYLOAD | {"aud": ["rp_0123456789abcdef"]}),
    "sub empty": forge(payload=PAYLOAD | {"sub": ""}),
    "jti number": forge(payload=PAYLOAD | {"jti": 42}),
    "mode unknown": forge(payload=PAYLOAD | {"mode": "telepathy"}),
    "mode a list": forge(payload=PAYLOAD | {"mode": ["password"]}),
    "level a number": forge(payload=PAYLOAD | {"level": 2}),
    "attrs unsorted": forge(payload=PAYLOAD | {"attrs": ["full_name", "birth_date"]}),
    "attrs repeated": forge(payload=PAYLOAD | {"attrs": ["full_name", "full_name"]}),
    "attrs not text": forge(payload=PAYLOAD | {"attrs": [1]}),
    "attrs a string": forge(payload=PAYLOAD | {"attrs": "full_name"}),
    "result other": forge(payload=PAYLOAD | {"result": "maybe"}),
    "result bool": forge(payload=PAYLOAD | {"result": True}),
    "reason when verified": forge(payload=PAYLOAD | {"reason": "X"}),
    "reason empty": forge(payload=PAYLOAD | {"result": "not_verified", "level": "", "reason": ""}),
    "reason not text": forge(
        payload=PAYLOAD | {"result": "not_verified", "level": "", "reason": 1}
    ),
    "level when not verified": forge(payload=PAYLOAD | {"result": "not_verified"}),
    **{f"no {name}": forge(payload=_without(PAYLOAD, name)) for name in PAYLOAD},
}


@pytest.mark.parametrize("token", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed(token: str) -> None:
    assert token != GENUINE
    assert refusal(token) == "RECEIPT_MALFORMED"


def test_the_claims_are_read_only_after_the_signature() -> None:
    bad_claims = forge(payload=PAYLOAD | {"mode": "telepathy"}, key=OTHER)
    assert refusal(bad_claims) == "RECEIPT_SIGNATURE_INVALID"
    assert refusal(forge(payload=b"not json", key=OTHER)) == "RECEIPT_SIGNATURE_INVALID"


def test_key_unknown_revoked_and_forged() -> None:
    assert refusal(GENUINE, KeySet([])) == "RECEIPT_KEY_UNKNOWN"
    assert refusal(forge(HEADER | {"kid": "k9"})) == "RECEIPT_KEY_UNKNOWN"
    revoked = KeySet([VerificationKey("k1", raw_public(PRIVATE), revoked=True)])
    assert refusal(GENUINE, revoked) == "RECEIPT_KEY_REVOKED"
    assert refusal(sign_receipt(CLAIMS, "k1", OTHER)) == "RECEIPT_SIGNATURE_INVALID"
    swapped = f"{G_HEADER}.{G_PAYLOAD}.{sign_receipt(CLAIMS, 'k1', OTHER).split('.')[2]}"
    assert refusal(swapped) == "RECEIPT_SIGNATURE_INVALID"


def test_a_retired_key_signs_nothing_new_but_its_receipts_never_expire() -> None:
    def retired(not_after: datetime) -> KeySet:
        return KeySet([VerificationKey("k1", raw_public(PRIVATE), not_after=not_after)])

    assert verify_receipt(GENUINE, retired(ISSUED)) == CLAIMS  # signed at the last moment
    assert verify_receipt(GENUINE, retired(ISSUED + timedelta(days=1))) == CLAIMS
    before = retired(ISSUED - timedelta(seconds=1))
    assert refusal(GENUINE, before) == "RECEIPT_ISSUED_AFTER_KEY_RETIRED"
    old = dataclasses.replace(CLAIMS, issued_at=datetime(2001, 1, 1, tzinfo=UTC))
    assert verify_receipt(sign_receipt(old, "k1", PRIVATE), KEYS) == old  # no expiry


def test_issuer_and_audience() -> None:
    assert refusal(GENUINE, issuer="eid.example") == "RECEIPT_ISSUER_MISMATCH"
    assert refusal(GENUINE, audience="rp_other") == "RECEIPT_AUDIENCE_MISMATCH"
    assert verify_receipt(GENUINE, KEYS, issuer="eid.vn") == CLAIMS
    assert verify_receipt(GENUINE, KEYS, audience="rp_0123456789abcdef") == CLAIMS


def test_the_reasons_are_the_documented_ones() -> None:
    assert {
        "RECEIPT_TOO_LARGE",
        "RECEIPT_MALFORMED",
        "RECEIPT_KEY_UNKNOWN",
        "RECEIPT_KEY_REVOKED",
        "RECEIPT_SIGNATURE_INVALID",
        "RECEIPT_ISSUED_AFTER_KEY_RETIRED",
        "RECEIPT_ISSUER_MISMATCH",
        "RECEIPT_AUDIENCE_MISMATCH",
    } == REASONS
    refused = ReceiptVerificationError("RECEIPT_KEY_REVOKED")
    assert refused.reason == "RECEIPT_KEY_REVOKED" and str(refused) == refused.message


def test_no_single_character_change_anywhere_is_accepted() -> None:
    alphabet = string.ascii_letters + string.digits + "-_.="
    accepted, reasons = [], set()
    for i, original in enumerate(GENUINE):
        variants = [GENUINE[:i] + c + GENUINE[i + 1 :] for c in alphabet if c != original]
        variants.append(GENUINE[:i] + GENUINE[i + 1 :])  # and deleted
        for variant in variants:
            try:
                verify_receipt(variant, KEYS)
            except ReceiptVerificationError as refused:
                reasons.add(refused.reason)
            else:
                accepted.append((i, variant))
    assert accepted == []
    assert reasons == {"RECEIPT_MALFORMED", "RECEIPT_KEY_UNKNOWN", "RECEIPT_SIGNATURE_INVALID"}


def test_pyjwt_verifies_our_receipt_with_our_jwks() -> None:
    published = KeySet([*KEYS.values(), VerificationKey("k2", raw_public(OTHER))]).to_jwks()
    jwks = jwt.PyJWKSet.from_json(published)
    header = jwt.get_unverified_header(GENUINE)
    assert header == HEADER
    decoded = jwt.decode(
        GENUINE,
        jwks[header["kid"]],
        algorithms=["EdDSA"],
        audience="rp_0123456789abcdef",
        issuer="eid.vn",
    )
    assert decoded == PAYLOAD
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(GENUINE, jwks["k2"], algorithms=["EdDSA"], audience="rp_0123456789abcdef")


def test_a_receipt_pyjwt_signs_verifies_with_verify_receipt() -> None:
    unsorted = dict(reversed(PAYLOAD.items()))  # our verifier does not need sorted keys
    token = jwt.encode(
        unsorted, PRIVATE, algorithm="EdDSA", headers={"kid": "k1", "typ": "eid-receipt+jwt"}
    )
    assert verify_receipt(token, KeySet.from_jwks(KEYS.to_jwks()), issuer="eid.vn") == CLAIMS
    # PyJWT's default header ({"typ": "JWT"}) is not a receipt's.
    plain = jwt.encode(PAYLOAD, PRIVATE, algorithm="EdDSA", headers={"kid": "k1"})
    assert refusal(plain) == "RECEIPT_MALFORMED"
    hmac = jwt.encode(PAYLOAD, "s" * 64, algorithm="HS256", headers=HEADER | {"alg": "HS256"})
    assert refusal(hmac) == "RECEIPT_MALFORMED"
