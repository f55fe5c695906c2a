"""Offline QR credentials (eid_client.offline): round trips, the Claim 169 layout
read by an independent decoder, one reason per failed check, keys and key sets,
and the QR version bound.

The helpers at the top are shared with test_offline_tamper.py."""

from __future__ import annotations

import base64
import itertools
import json
import unicodedata
import zlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import base45  # type: ignore[import-untyped]
import cbor2
import claim169  # type: ignore[import-untyped]
import pytest
import segno
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from eid_client._base45 import b45encode
from eid_client.offline import (
    REASONS,
    CredentialClaims,
    KeySet,
    OfflineCredential,
    OfflineVerificationError,
    VerificationKey,
    is_offline_payload,
    issue_credential,
    read_genuine,
    verify_offline,
)

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
KID = "k7qmx2"
PUBLIC = KEY.public_key().public_bytes_raw()
KEYS = KeySet([VerificationKey(KID, PUBLIC)])
ISSUED = datetime(2026, 11, 24, 9, 30, 15, tzinfo=UTC)
EXPIRES = ISSUED + timedelta(minutes=5)
DURING = ISSUED + timedelta(minutes=1)
SKEW = timedelta(seconds=60)
CTI = bytes.fromhex("0f1e2d3c4b5a69788796")
NAME_40 = "Tôn Nữ Hoàng Phương Thảo Nguyên"
NAME_46 = "Tôn Nữ Hoàng Thị Phương Thảo Nguyên"

BASIC = CredentialClaims(
    issuer="eid.vn",
    share_id="shr_" + CTI.hex(),
    issued_at=ISSUED,
    expires_at=EXPIRES,
    audience=None,
    personal_id="079203001234",
    full_name=NAME_40,
    birth_date="2003-02-28",
    gender="female",
)


def issue(**changes: Any) -> str:
    return issue_credential(replace(BASIC, **changes), KID, KEY)


def wrap(cose: bytes) -> str:
    """The QR text of COSE bytes, encoded as the issuer does."""
    return b45encode(zlib.compress(cose, 0))


def unwrap(text: str) -> Any:
    """The decoded COSE structure of a QR text, with the reference Base45 (no checks)."""
    return cbor2.loads(zlib.decompress(base45.b45decode(text)))


def sign1(
    claims: object,
    *,
    key: Ed25519PrivateKey = KEY,
    protected: object = None,
    unprotected: object = None,
    tag: int | None = 18,
    signature: bytes | None = None,
) -> bytes:
    """A COSE_Sign1 over any claims (CBOR-encoded unless bytes), signed by `key`."""
    payload = claims if isinstance(claims, bytes) else cbor2.dumps(claims)
    header = cbor2.dumps({1: -8, 4: KID.encode()} if protected is None else protected)
    if signature is None:
        signature = key.sign(cbor2.dumps(["Signature1", header, b"", payload]))
    body = [header, {} if unprotected is None else unprotected, payload, signature]
    return cbor2.dumps(body if tag is None else cbor2.CBORTag(tag, body))


def cwt(**changes: Any) -> dict[int, Any]:
    """Genuine-looking CWT claims; a change to ... removes the claim."""
    numbers = {"iss": 1, "aud": 3, "exp": 4, "iat": 6, "cti": 7, "c169": 169}
    claims: dict[int, Any] = {
        1: "eid.vn",
        4: int(EXPIRES.timestamp()),
        6: int(ISSUED.timestamp()),
        7: CTI,
        169: {1: "079203001234", 4: NAME_40, 8: "20030228", 9: 2},
    }
    for name, value in changes.items():
        if value is ...:
            del claims[numbers[name]]
        else:
            claims[numbers[name]] = value
    return claims


def reason(payload: str, keys: KeySet = KEYS, **options: Any) -> str:
    options.setdefault("now", DURING)
    with pytest.raises(OfflineVerificationError) as refused:
        verify_offline(payload, keys, **options)
    assert refused.value.reason in REASONS
    return refused.value.reason


# --- Round trips ------------------------------------------------------------

ATTRIBUTES = ("personal_id", "full_name", "birth_date", "gender")
C169_KEY = {"personal_id": 1, "full_name": 4, "birth_date": 8, "gender": 9}


@pytest.mark.parametrize(
    "chosen",
    [c for n in range(5) for c in itertools.combinations(ATTRIBUTES, n)],
    ids=lambda c: "+".join(c) or "none",
)
@pytest.mark.parametrize("audience", [None, "rp_0123456789abcdef"])
def test_every_attribute_subset_round_trips_and_the_others_are_absent(
    chosen: tuple[str, ...], audience: str | None
) -> None:
    dropped = {a: None for a in ATTRIBUTES if a not in chosen}
    text = issue(audience=audience, **dropped)

    credential = verify_offline(text, KEYS, now=DURING, audience=audience)

    assert credential == OfflineCredential(
        share_id=BASIC.share_id,
        issuer="eid.vn",
        key_id=KID,
        issued_at=ISSUED,
        expires_at=EXPIRES,
        audience=audience,
        personal_id=BASIC.personal_id if "personal_id" in chosen else None,
        full_name=BASIC.full_name if "full_name" in chosen else None,
        birth_date=BASIC.birth_date if "birth_date" in chosen else None,
        gender=BASIC.gender if "gender" in chosen else None,
    )
    cose = unwrap(text)
    assert cose.tag == 18
    protected, unprotected, payload, signature = cose.value
    assert cbor2.loads(protected) == {1: -8, 4: KID.encode()}
    assert (unprotected, len(signature)) == ({}, 64)
    claims = cbor2.loads(payload)
    assert set(claims) == {1, 4, 6, 7, 169} | ({3} if audience else set())
    assert set(claims[169]) == {C169_KEY[a] for a in chosen}


def test_the_claims_are_in_claim_169_form() -> None:
    claims = cbor2.loads(unwrap(issue(audience="rp_bank")).value[2])
    assert claims == {
        1: "eid.vn",
        3: "rp_bank",
        4: int(EXPIRES.timestamp()),
        6: int(ISSUED.timestamp()),
        7: CTI,
        169: {1: "079203001234", 4: NAME_40, 8: "20030228", 9: 2},
    }


@pytest.mark.parametrize(("gender", "code"), [("male", 1), ("female", 2), ("other", 3)])
def test_genders(gender: str, code: int) -> None:
    text = issue(gender=gender)
    assert cbor2.loads(unwrap(text).value[2])[169][9] == code
    assert verify_offline(text, KEYS, now=DURING).gender == gender


def test_the_payload_is_raw_base45_of_a_stored_zlib_block() -> None:
    text = issue()
    assert is_offline_payload(text)
    assert set(text) <= set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
    compressed = base45.b45decode(text)
    assert compressed == zlib.compress(zlib.decompress(compressed), 0)
    assert read_genuine(text, KEYS) == verify_offline(text, KEYS, now=DURING)


@pytest.mark.parametrize(
    "change",
    [
        {"share_id": "shr_0f1e"},  # cti under 8 bytes
        {"share_id": "shr_" + "ab" * 33},
        {"share_id": "shr_0F1E2D3C4B5A69788796"},  # upper-case hex
        {"share_id": "0f1e2d3c4b5a69788796"},
        {"issued_at": ISSUED.replace(microsecond=5)},
        {"issued_at": ISSUED.replace(tzinfo=None)},
        {"expires_at": ISSUED},
        {"issuer": ""},
        {"audience": ""},
        {"personal_id": "07920300123"},
        {"full_name": unicodedata.normalize("NFD", NAME_40)},
        {"full_name": " "},
        {"birth_date": "20030228"},
        {"birth_date": "2003-02-29"},
        {"gender": "unknown"},
        {"full_name": "a" * 3000},  # over 4096 characters of QR text
    ],
)
def test_issuing_refuses_what_the_verifier_would(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"."):
        issue(**change)


def test_issuing_refuses_an_empty_or_long_key_id() -> None:
    for kid in ("", "k" * 65):
        with pytest.raises(ValueError, match="key id"):
            issue_credential(BASIC, kid, KEY)


# --- Interoperability with the claim169 reference decoder (Rust) ------------


def test_the_claim169_reference_decoder_verifies_and_reads_our_credential() -> None:
    issued = datetime.now(UTC).replace(microsecond=0)
    expires = issued + timedelta(minutes=5)
    text = issue(issued_at=issued, expires_at=expires, full_name=NAME_46, gender="male")

    decoded = claim169.decode_with_ed25519(text, PUBLIC)

    assert decoded.is_verified() and decoded.verification_status == "verified"
    assert (decoded.algorithm, decoded.key_id, decoded.detected_compression) == (
        "EdDSA",
        KID.encode(),
        "zlib",
    )
    person = decoded.claim169
    assert (person.id, person.full_name, person.date_of_birth, person.gender) == (
        "079203001234",
        NAME_46,
        "20030228",
        1,
    )
    meta = decoded.cwt_meta
    assert (meta.issuer, meta.issued_at, meta.expires_at) == (
        "eid.vn",
        int(issued.timestamp()),
        int(expires.timestamp()),
    )


def test_the_claim169_reference_decoder_refuses_another_key() -> None:
    other = OTHER_KEY.public_key().public_bytes_raw()
    with pytest.raises(claim169.SignatureError):
        claim169.decode_with_ed25519(issue(), other, validate_timestamps=False)


def _claim169_encoded() -> str:
    person = claim169.Claim169Input(id="079203001234", full_name=NAME_40)
    person.date_of_birth = "20030228"
    person.gender = 2
    meta = claim169.CwtMetaInput(issuer="eid.vn", expires_at=int(EXPIRES.timestamp()))
    meta.issued_at = int(ISSUED.timestamp())
    return str(claim169.encode_with_ed25519(person, meta, KEY.private_bytes_raw()))


def test_a_claim169_encoded_credential_is_refused_we_verify_only_our_own() -> None:
    text = _claim169_encoded()
    assert claim169.decode_with_ed25519(text, PUBLIC, validate_timestamps=False).is_verified()
    # Real deflate, so not the canonical stored block: refused before any key lookup.
    assert is_offline_payload(text)
    assert base45.b45decode(text)[:2] != b"\x78\x01"
    assert reason(text) == "SHARE_PAYLOAD_MALFORMED"
    # Re-packed canonically it is still not ours: its protected header has no kid.
    cose = zlib.decompress(base45.b45decode(text))
    assert cbor2.loads(cbor2.loads(cose).value[0]) == {1: -8}
    assert reason(wrap(cose)) == "SHARE_PAYLOAD_MALFORMED"


# --- One reason per failed check, in order -----------------------------------


def test_size_is_checked_first() -> None:
    assert reason("A" * 4097) == "SHARE_PAYLOAD_TOO_LARGE"
    assert reason("eid1." + "A" * 4092) == "SHARE_PAYLOAD_TOO_LARGE"
    genuine = issue()
    assert reason(genuine + "0" * (4097 - len(genuine))) == "SHARE_PAYLOAD_TOO_LARGE"
    assert reason("A" * 4096) == "SHARE_PAYLOAD_PREFIX_UNKNOWN"


def test_a_decompression_bomb_is_too_large() -> None:
    bomb = b45encode(zlib.compress(bytes(1_000_000), 9))
    assert len(bomb) <= 4096 and is_offline_payload(bomb)
    assert reason(bomb) == "SHARE_PAYLOAD_TOO_LARGE"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("", "SHARE_PAYLOAD_PREFIX_UNKNOWN"),
        ("hello", "SHARE_PAYLOAD_PREFIX_UNKNOWN"),
        ("HC1:NCFOXN%TS3DH3ZSUZK+.V0ETD%65NL-AH", "SHARE_PAYLOAD_PREFIX_UNKNOWN"),
        ("7BF", "SHARE_PAYLOAD_PREFIX_UNKNOWN"),  # Base45 of 78 9D, which fails FCHECK
        ("6BF", "SHARE_PAYLOAD_MALFORMED"),  # a zlib header (78 9C) and nothing else
        ("eid", "SHARE_PAYLOAD_PREFIX_UNKNOWN"),
        ("eid1", "SHARE_PAYLOAD_PREFIX_UNKNOWN"),
        ("eidx.abc", "SHARE_PAYLOAD_PREFIX_UNKNOWN"),
        ("eid1.e30.c2ln", "SHARE_ONLINE_ONLY"),
        ("eid1.", "SHARE_ONLINE_ONLY"),
        ("eid2.e30.c2ln", "SHARE_ONLINE_ONLY"),
        ("eid3.e30.c2ln", "SHARE_PAYLOAD_VERSION_UNSUPPORTED"),
        ("eid10.abc", "SHARE_PAYLOAD_VERSION_UNSUPPORTED"),
        ("eid01.abc", "SHARE_PAYLOAD_VERSION_UNSUPPORTED"),
        ("eid\u0661.abc", "SHARE_PAYLOAD_PREFIX_UNKNOWN"),  # Arabic-Indic digit one
    ],
)
def test_classification(payload: str, expected: str) -> None:
    assert reason(payload) == expected


def test_is_offline_payload() -> None:
    assert is_offline_payload(issue())
    for head in ("7BF", "eid1.x", "HC1:6BF", "", "6B", "6bf"):
        assert not is_offline_payload(head)
    heads = {b45encode(bytes([0x78, f])) for f in range(256) if (0x7800 + f) % 31 == 0}
    assert all(is_offline_payload(h + "rest") for h in heads) and len(heads) == 9


@pytest.mark.parametrize(
    "cose",
    [
        cbor2.dumps(cbor2.CBORTag(16, [b"\xa1\x01\x03", {}, b"ciphertext"])),  # Encrypt0
        cbor2.dumps(cbor2.CBORTag(98, [b"\xa0", {}, b"payload", [[b"", {}, b"sig"]]])),  # Sign
        cbor2.dumps(cbor2.CBORTag(17, [b"\xa1\x01\x05", {}, b"payload", b"tag"])),  # Mac0
        sign1(cwt(), protected={1: -7, 4: KID.encode()}),  # ES256
        sign1(cwt(), protected={1: -35, 4: KID.encode()}),  # ES384
        sign1(cwt(), protected={1: "EdDSA", 4: KID.encode()}),
    ],
    ids=["encrypt0", "sign", "mac0", "es256", "es384", "alg-text"],
)
def test_other_cose_structures_and_algorithms_are_unsupported(cose: bytes) -> None:
    assert reason(wrap(cose)) == "SHARE_PAYLOAD_VERSION_UNSUPPORTED"


def test_an_untagged_sign1_is_read() -> None:
    credential = verify_offline(wrap(sign1(cwt(), tag=None)), KEYS, now=DURING)
    assert credential.share_id == BASIC.share_id


@pytest.mark.parametrize(
    "cose",
    [
        b"",
        b"\xf6",
        cbor2.dumps(cbor2.CBORTag(61, cbor2.CBORTag(18, []))),  # a CWT tag around it
        cbor2.dumps(cbor2.CBORTag(19, [])),
        cbor2.dumps([b"", {}, b"", b""]),
        cbor2.dumps(cbor2.CBORTag(18, [b"\xa1\x01\x27", {}, cbor2.dumps(cwt()), bytes(64)])),
        sign1(cwt(), protected={1: -8}, unprotected={4: KID.encode()}),  # kid unprotected
        sign1(cwt(), unprotected={4: KID.encode()}),  # anything unprotected
        sign1(cwt(), protected={1: -8, 2: [99], 4: KID.encode()}),  # crit
        sign1(cwt(), protected={4: KID.encode(), 1: -8}),  # not our encoding
        sign1(cwt(), protected={1: -8, 4: KID}),  # kid as text
        sign1(cwt(), protected={1: -8, 4: b""}),
        sign1(cwt(), protected={1: -8, 4: b"\xff\xfe"}),  # not UTF-8
        sign1(cwt(), protected={1: -8, 4: b"k" * 65}),
        sign1(cwt(), signature=bytes(63)),
        sign1(cwt(), signature=bytes(65)),
        sign1(cwt()) + b"\x00",  # trailing data
        sign1(cwt())[:-1],
        b"\xd2\x85" + sign1(cwt())[2:] + b"\x40",  # five elements
        b"\xd8\x12" + sign1(cwt())[1:],  # tag 18 with a long head
        b"\xd2\x9f" + sign1(cwt())[2:] + b"\xff",  # indefinite-length array
        sign1(cwt())[:-66] + b"\x59\x00\x40" + sign1(cwt())[-64:],  # long signature head
    ],
)
def test_structural_damage_is_malformed(cose: bytes) -> None:
    assert reason(wrap(cose)) == "SHARE_PAYLOAD_MALFORMED"


def test_key_checks() -> None:
    text = issue()
    assert reason(text, KeySet([])) == "SHARE_KEY_UNKNOWN"
    other_kid = KeySet([VerificationKey("k2", PUBLIC)])
    assert reason(text, other_kid) == "SHARE_KEY_UNKNOWN"
    revoked = KeySet([VerificationKey(KID, PUBLIC, revoked=True)])
    assert reason(text, revoked) == "SHARE_KEY_REVOKED"
    with pytest.raises(OfflineVerificationError, match="revoked"):
        read_genuine(text, revoked)
    wrong = KeySet([VerificationKey(KID, OTHER_KEY.public_key().public_bytes_raw())])
    assert reason(text, wrong) == "SHARE_SIGNATURE_INVALID"


def test_a_valid_structure_signed_by_another_key_with_our_kid_is_refused() -> None:
    assert reason(wrap(sign1(cwt(), key=OTHER_KEY))) == "SHARE_SIGNATURE_INVALID"
    # The signature covers the protected header: another kid breaks it.
    genuine = sign1(cwt())
    swapped = genuine.replace(KID.encode(), b"k7qmx3")
    assert reason(wrap(swapped), KeySet([VerificationKey("k7qmx3", PUBLIC)])) == (
        "SHARE_SIGNATURE_INVALID"
    )


def test_claims_are_not_read_before_the_signature_checks_out() -> None:
    garbage = b"\xff not CBOR"
    assert reason(wrap(sign1(garbage, key=OTHER_KEY))) == "SHARE_SIGNATURE_INVALID"
    assert reason(wrap(sign1(garbage))) == "SHARE_PAYLOAD_MALFORMED"


@pytest.mark.parametrize(
    "claims",
    [
        b"\xff",
        cbor2.dumps(cwt()) + b"\x00",  # trailing data
        cbor2.dumps([1, 2]),
        cwt(c169=...),
        cwt(c169=[]),
        cwt(c169={10: "an address"}),  # an attribute we do not issue
        cwt(c169={1: "07920300123"}),
        cwt(c169={1: 79203001234}),
        cwt(c169={4: unicodedata.normalize("NFD", NAME_40)}),
        cwt(c169={4: ""}),
        cwt(c169={4: b"name"}),
        cwt(c169={8: "2003-02-28"}),  # ISO, as some writers put it
        cwt(c169={8: "20030229"}),
        cwt(c169={8: "2003022\uff18"}),  # a full-width digit
        cwt(c169={8: 20030228}),
        cwt(c169={9: 0}),
        cwt(c169={9: 4}),
        cwt(c169={9: True}),
        cwt(c169={9: "female"}),
        cwt(iss=...),
        cwt(iss=""),
        cwt(iss=1),
        cwt(aud=""),
        cwt(aud=b"rp_bank"),
        cwt(exp=...),
        cwt(iat=...),
        cwt(exp=float(EXPIRES.timestamp())),
        cwt(iat=True),
        cwt(exp=int(ISSUED.timestamp())),  # exp <= iat
        cwt(iat=-1),
        cwt(exp=253402300800),
        cwt(cti=...),
        cwt(cti=CTI[:7]),
        cwt(cti=bytes(33)),
        cwt(cti=CTI.hex()),
        {**cwt(), 5: int(ISSUED.timestamp())},  # nbf: a claim we do not know
        {**cwt(), 2: "subject"},
        {"iss": "eid.vn", **{str(k): v for k, v in cwt().items()}},
    ],
)
def test_ill_formed_claims_signed_with_our_key_are_malformed(claims: object) -> None:
    assert reason(wrap(sign1(claims))) == "SHARE_PAYLOAD_MALFORMED"


def test_claims_nested_deeper_than_the_recursion_limit_are_malformed() -> None:
    deep = b"\x81" * 2500 + b"\x00"  # still under 4096 characters
    assert reason(wrap(sign1(deep))) == "SHARE_PAYLOAD_MALFORMED"


def test_expiry_with_clock_skew() -> None:
    text = issue()
    last = EXPIRES + SKEW - timedelta(microseconds=1)
    assert verify_offline(text, KEYS, now=last).share_id == BASIC.share_id
    assert reason(text, now=EXPIRES + SKEW) == "SHARE_EXPIRED"
    assert reason(text, now=EXPIRES, clock_skew=timedelta(0)) == "SHARE_EXPIRED"
    no_skew = EXPIRES - timedelta(microseconds=1)
    assert verify_offline(text, KEYS, now=no_skew, clock_skew=timedelta(0))


def test_not_yet_valid_with_clock_skew() -> None:
    text = issue()
    assert verify_offline(text, KEYS, now=ISSUED - SKEW).share_id == BASIC.share_id
    too_early = ISSUED - SKEW - timedelta(microseconds=1)
    assert reason(text, now=too_early) == "SHARE_NOT_YET_VALID"
    assert reason(text, now=ISSUED - timedelta(seconds=1), clock_skew=timedelta(0)) == (
        "SHARE_NOT_YET_VALID"
    )


def test_now_defaults_to_the_clock_and_must_be_aware() -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    text = issue(issued_at=now, expires_at=now + timedelta(minutes=5))
    assert verify_offline(text, KEYS).issued_at == now
    old = issue(
        issued_at=datetime(2020, 1, 1, tzinfo=UTC), expires_at=datetime(2020, 1, 2, tzinfo=UTC)
    )
    with pytest.raises(OfflineVerificationError, match="expired"):
        verify_offline(old, KEYS)
    with pytest.raises(ValueError, match="aware"):
        verify_offline(text, KEYS, now=datetime(2026, 11, 24, 9, 31))


def test_a_retired_key_verifies_until_its_not_after() -> None:
    text = issue()

    def keys(not_after: datetime) -> KeySet:
        return KeySet([VerificationKey(KID, PUBLIC, not_after=not_after)])

    assert verify_offline(text, keys(EXPIRES), now=DURING).key_id == KID
    assert verify_offline(text, keys(ISSUED), now=ISSUED).key_id == KID
    # Signed after the key's life ended.
    assert reason(text, keys(ISSUED - timedelta(seconds=1))) == "SHARE_EXPIRED"
    # Past the last moment anything the key signed can be valid (with skew), even
    # before the credential's own expiry.
    retired = keys(ISSUED + timedelta(seconds=30))
    last = ISSUED + timedelta(seconds=30) + SKEW
    assert verify_offline(text, retired, now=last).key_id == KID
    assert reason(text, retired, now=last + timedelta(seconds=1)) == "SHARE_EXPIRED"
    assert last + timedelta(seconds=1) < EXPIRES


def test_audience() -> None:
    bound = issue(audience="rp_bank")
    assert verify_offline(bound, KEYS, now=DURING, audience="rp_bank").audience == "rp_bank"
    assert reason(bound) == "SHARE_AUDIENCE_MISMATCH"
    assert reason(bound, audience="rp_other") == "SHARE_AUDIENCE_MISMATCH"
    unbound = issue()
    assert verify_offline(unbound, KEYS, now=DURING, audience="rp_any").audience is None


def test_issuer() -> None:
    text = issue()
    assert verify_offline(text, KEYS, now=DURING, issuer="eid.vn").issuer == "eid.vn"
    assert reason(text, issuer="eid.example") == "SHARE_ISSUER_MISMATCH"


def test_the_first_failed_check_decides() -> None:
    expired_bound = issue(audience="rp_bank")
    late = EXPIRES + SKEW
    assert reason(expired_bound, now=late, issuer="x") == "SHARE_EXPIRED"
    assert reason(expired_bound, issuer="x") == "SHARE_ISSUER_MISMATCH"
    revoked = KeySet([VerificationKey(KID, PUBLIC, revoked=True)])
    assert reason(expired_bound, revoked, now=late) == "SHARE_KEY_REVOKED"
    # read_genuine makes no time, issuer or audience checks.
    assert read_genuine(expired_bound, KEYS).audience == "rp_bank"


def test_messages_hold_no_personal_data_or_payload() -> None:
    text = issue()
    refusals = [
        (text, KeySet([])),
        (text[:-1], KEYS),
        (text, KeySet([VerificationKey(KID, OTHER_KEY.public_key().public_bytes_raw())])),
    ]
    for payload, keys in refusals:
        with pytest.raises(OfflineVerificationError) as refused:
            verify_offline(payload, keys, now=DURING)
        message = str(refused.value)
        assert message == refused.value.message and message
        for secret in (payload[:12], payload[-12:], "079203001234", NAME_40, BASIC.share_id):
            assert secret not in message


# --- Canonical zlib ------------------------------------------------------------


def test_only_the_canonical_zlib_form_is_accepted() -> None:
    compressed = bytearray(base45.b45decode(issue()))
    cose = zlib.decompress(compressed)
    assert bytes(compressed) == zlib.compress(cose, 0)
    # Deflate picks a stored block itself for ~200 bytes of signed data (only the
    # header's FLEVEL differs, below); a repetitive name makes it compress.
    variants: list[bytes] = []
    repetitive = zlib.decompress(base45.b45decode(issue(full_name="Thị " * 10)))
    deflated = zlib.compress(repetitive, 9)
    assert len(deflated) < len(repetitive)
    assert reason(b45encode(deflated)) == "SHARE_PAYLOAD_MALFORMED"
    # FLEVEL bits in the zlib header (FCHECK adjusted), and the 5 padding bits of
    # the stored block header: zlib ignores them, we must not.
    for flg in (0x5E, 0x9C, 0xDA):
        variants.append(b"\x78" + bytes([flg]) + bytes(compressed[2:]))
    for bit in range(3, 8):
        padded = bytearray(compressed)
        padded[2] |= 1 << bit
        variants.append(bytes(padded))
    # A stored block split in two, and an empty stored block in front.
    n = len(cose)
    split = (
        b"\x78\x01"
        + b"\x00"
        + (10).to_bytes(2, "little")
        + (10 ^ 0xFFFF).to_bytes(2, "little")
        + cose[:10]
        + b"\x01"
        + (n - 10).to_bytes(2, "little")
        + ((n - 10) ^ 0xFFFF).to_bytes(2, "little")
        + cose[10:]
        + zlib.adler32(cose).to_bytes(4, "big")
    )
    variants.append(split)
    assert verify_offline(b45encode(bytes(compressed)), KEYS, now=DURING)
    for variant in variants:
        assert zlib.decompress(variant) == cose  # the same credential to zlib
        assert reason(b45encode(variant)) == "SHARE_PAYLOAD_MALFORMED", variant[:8].hex()


# --- Keys ----------------------------------------------------------------------


def test_jwks_round_trip_has_only_keys_not_revoked() -> None:
    other = OTHER_KEY.public_key().public_bytes_raw()
    keys = KeySet(
        [
            VerificationKey(KID, PUBLIC),
            VerificationKey("kold", other, not_after=EXPIRES),
            VerificationKey("kbad", bytes(range(1, 33)), revoked=True),
        ]
    )
    jwks = json.loads(keys.to_jwks())
    assert [k["kid"] for k in jwks["keys"]] == [KID, "kold"]
    assert jwks["keys"][0] == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": base64.urlsafe_b64encode(PUBLIC).decode().rstrip("="),
        "kid": KID,
        "alg": "EdDSA",
        "use": "sig",
    }
    back = KeySet.from_jwks(keys.to_jwks())
    assert dict(back) == {
        KID: VerificationKey(KID, PUBLIC),
        "kold": VerificationKey("kold", other),  # JWKS carries no retirement
    }
    assert verify_offline(issue(), back, now=DURING).key_id == KID


def test_from_jwks_ignores_other_keys_and_refuses_bad_ones() -> None:
    ours = json.loads(KEYS.to_jwks())["keys"][0]
    others = [
        {"kty": "RSA", "n": "xyz", "e": "AQAB", "kid": "rsa"},
        {"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "kid": "ec"},
        {"kty": "OKP", "crv": "X25519", "x": ours["x"], "kid": "x25519"},
        {**ours, "kid": "enc", "use": "enc"},
        {**ours, "kid": "other-alg", "alg": "ES256"},
    ]
    keys = KeySet.from_jwks(json.dumps({"keys": [*others, ours]}))
    assert list(keys) == [KID]
    bare = {k: v for k, v in ours.items() if k not in ("alg", "use")}
    assert list(KeySet.from_jwks(json.dumps({"keys": [bare]}))) == [KID]
    bad = [
        "not json",
        "[]",
        '{"keys": {}}',
        '{"keys": [1]}',
        json.dumps({"keys": [{**ours, "x": ours["x"][:-1]}]}),
        json.dumps({"keys": [{**ours, "x": ours["x"][:-1] + "h"}]}),  # non-canonical bits
        json.dumps({"keys": [{**ours, "x": ours["x"] + "="}]}),
        json.dumps({"keys": [{k: v for k, v in ours.items() if k != "kid"}]}),
        json.dumps({"keys": [ours, ours]}),
        '{"keys": ' + "[" * 100_000,  # deeper than json.loads recurses
    ]
    for text in bad:
        with pytest.raises(ValueError, match=r"."):
            KeySet.from_jwks(text)


def test_the_cache_format_keeps_retirement_and_revocation() -> None:
    keys = KeySet(
        [
            VerificationKey(KID, PUBLIC),
            VerificationKey("kold", OTHER_KEY.public_key().public_bytes_raw(), EXPIRES),
            VerificationKey("kbad", bytes(range(1, 33)), revoked=True),
        ]
    )
    document = json.loads(keys.to_json())
    assert document["version"] == 1
    assert document["keys"][1]["not_after"] == "2026-11-24T09:35:15+00:00"
    back = KeySet.from_json(keys.to_json())
    assert dict(back) == dict(keys)
    revoked = KeySet([VerificationKey(KID, PUBLIC, revoked=True)])
    assert reason(issue(), KeySet.from_json(revoked.to_json())) == "SHARE_KEY_REVOKED"
    for text in (
        json.dumps({**document, "version": 2}),
        json.dumps({"keys": document["keys"]}),
        json.dumps({**document, "keys": [{**document["keys"][1], "not_after": 5}]}),
        json.dumps({**document, "keys": [{**document["keys"][1], "not_after": "soon"}]}),
        json.dumps({**document, "keys": [{**document["keys"][1], "not_after": "2026-11-24"}]}),
        json.dumps({**document, "keys": [{**document["keys"][2], "revoked": "yes"}]}),
        "{",
        "[" * 100_000,  # deeper than json.loads recurses
    ):
        with pytest.raises(ValueError, match=r"."):
            KeySet.from_json(text)


def test_key_sets_are_mappings_with_unique_valid_keys() -> None:
    assert KEYS.get(KID) == VerificationKey(KID, PUBLIC)
    assert KEYS.get("nope") is None
    assert len(KEYS) == 1 and KID in KEYS and "KeySet" in repr(KEYS)
    for keys in (
        [VerificationKey(KID, PUBLIC), VerificationKey(KID, PUBLIC)],
        [VerificationKey("", PUBLIC)],
        [VerificationKey(KID, PUBLIC[:31])],
        [VerificationKey(KID, PUBLIC, not_after=datetime(2026, 1, 1))],
    ):
        with pytest.raises(ValueError, match=r"."):
            KeySet(keys)


# --- Size -----------------------------------------------------------------------


def _qr_version(text: str) -> int:
    qr = segno.make_qr(text, error="m", boost_error=False)
    assert qr.mode == "alphanumeric" and qr.error == "M"
    return int(qr.version)


def test_a_basic_credential_with_a_40_byte_name_fits_qr_version_10_at_level_m() -> None:
    assert len(NAME_40.encode()) == 40
    text = issue()
    assert len(BASIC.issuer) == 6 and len(KID) == 6 and len(CTI) == 10
    assert _qr_version(text) <= 10
    assert _qr_version(issue(full_name=NAME_46)) <= 10


def test_the_longest_name_that_fits_version_10_is_as_documented() -> None:
    """The module docstring says 48 bytes, or 27 with an "rp_" + 16 hex audience."""

    def longest(audience: str | None) -> int:
        fits = [
            n
            for n in range(20, 80)
            if _qr_version(issue(full_name="a" * n, audience=audience)) <= 10
        ]
        return max(fits)

    assert longest(None) == 48
    assert len(issue(full_name="a" * 48)) == 311
    assert longest("rp_" + "0" * 16) == 27
    # Bytes are what count: a Vietnamese name of 48 UTF-8 bytes fits as well.
    name = NAME_46 + " Y"
    assert len(name.encode()) == 48
    assert _qr_version(issue(full_name=name)) == 10
