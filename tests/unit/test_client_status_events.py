"""Status events as a party's webhook checks them (eid_client.status_events):
the round trip, every refusal reason, any changed byte, replays, keys
revoked or retired, a receipt passed off as an event signature, header names
in any case, and an independent JOSE library (PyJWT) both ways."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from eid_client.offline import KeySet, VerificationKey
from eid_client.receipts import ReceiptClaims, sign_receipt
from eid_client.status_events import (
    MAX_BODY_BYTES,
    REASONS,
    SIGNATURE_HEADER,
    SIGNATURE_TYPE,
    StatusEventVerificationError,
    StatusEventVerifier,
    encode_status_event,
    sign_status_event,
    verify_status_event,
)

PRIVATE = Ed25519PrivateKey.generate()
OTHER = Ed25519PrivateKey.generate()
CHANGED = datetime(2026, 11, 25, 8, 30, 0, 123456, tzinfo=UTC)
SIGNED = datetime(2026, 11, 25, 8, 31, tzinfo=UTC)
PARTY = "rp_0123456789abcdef"
SUBJECT = "sub_" + "a" * 32


def _raw(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


KEYS = KeySet([VerificationKey("k1", _raw(PRIVATE))])
BODY = encode_status_event(
    event_id="evt_" + "0" * 32,
    type="account.locked",
    subject=SUBJECT,
    audience=PARTY,
    issuer="eid.vn",
    time=CHANGED,
)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _signed(
    body: bytes = BODY, key: Ed25519PrivateKey = PRIVATE, kid: str = "k1"
) -> dict[str, str]:
    return {SIGNATURE_HEADER: sign_status_event(body, kid, key, SIGNED)}


def _reason(body: bytes, headers: dict[str, str], keys: KeySet = KEYS, **options: object) -> str:
    options.setdefault("audience", PARTY)
    with pytest.raises(StatusEventVerificationError) as caught:
        verify_status_event(body, headers, keys, now=SIGNED, **options)  # type: ignore[arg-type]
    assert caught.value.reason in REASONS
    return caught.value.reason


def _header_signed(header: dict[str, object], body: bytes = BODY) -> dict[str, str]:
    """A signature with any protected header, made by the right key."""
    segment = _b64(json.dumps(header).encode())
    signature = PRIVATE.sign(f"{segment}.{_b64(body)}".encode())
    return {SIGNATURE_HEADER: f"{segment}..{_b64(signature)}"}


def test_a_signed_event_reads_back() -> None:
    event = verify_status_event(
        BODY, _signed(), KEYS, audience=PARTY, issuer="eid.vn", now=SIGNED + timedelta(minutes=4)
    )
    assert (event.id, event.type, event.subject) == ("evt_" + "0" * 32, "account.locked", SUBJECT)
    assert (event.audience, event.issuer, event.time) == (PARTY, "eid.vn", CHANGED)
    assert (event.signed_at, event.key_id) == (SIGNED, "k1")
    assert json.loads(BODY) == {
        "specversion": "1.0",
        "id": "evt_" + "0" * 32,
        "source": "eid.vn",
        "type": "account.locked",
        "subject": SUBJECT,
        "time": "2026-11-25T08:30:00.123456Z",
        "audience": PARTY,
    }


@pytest.mark.parametrize("name", ["x-eid-signature", "X-EID-SIGNATURE", "X-Eid-Signature"])
def test_the_header_is_found_in_any_case(name: str) -> None:
    (value,) = _signed().values()
    assert verify_status_event(
        BODY, {"Content-Type": "x", name: value}, KEYS, audience=PARTY, now=SIGNED
    )


def test_pyjwt_verifies_ours_and_we_verify_pyjwts() -> None:
    header, _, signature = _signed()[SIGNATURE_HEADER].split(".")
    attached = f"{header}.{_b64(BODY)}.{signature}"  # RFC 7515 appendix F: put the body back
    decoded = jwt.api_jws.decode_complete(attached, PRIVATE.public_key(), algorithms=["EdDSA"])
    assert decoded["payload"] == BODY
    assert decoded["header"] == {
        "alg": "EdDSA",
        "iat": int(SIGNED.timestamp()),
        "kid": "k1",
        "typ": SIGNATURE_TYPE,
    }
    theirs = jwt.api_jws.encode(
        BODY,
        PRIVATE,
        algorithm="EdDSA",
        headers={"kid": "k1", "typ": SIGNATURE_TYPE, "iat": int(SIGNED.timestamp())},
    )
    h, _, s = theirs.split(".")
    assert verify_status_event(
        BODY, {SIGNATURE_HEADER: f"{h}..{s}"}, KEYS, audience=PARTY, now=SIGNED
    )


def test_every_changed_byte_of_the_body_is_refused() -> None:
    headers = _signed()
    for i in range(len(BODY)):
        changed = BODY[:i] + bytes([BODY[i] ^ 0x01]) + BODY[i + 1 :]
        assert _reason(changed, headers) == "EVENT_SIGNATURE_INVALID"
    assert _reason(BODY + b" ", headers) == "EVENT_SIGNATURE_INVALID"
    assert _reason(BODY[:-1], headers) == "EVENT_SIGNATURE_INVALID"


def test_every_changed_character_of_the_signature_is_refused() -> None:
    (value,) = _signed().values()
    for i, char in enumerate(value):
        if char == ".":
            continue
        swapped = "B" if char == "A" else "A"
        changed = value[:i] + swapped + value[i + 1 :]
        assert _reason(BODY, {SIGNATURE_HEADER: changed}) != ""  # any reason, never accepted


@pytest.mark.parametrize(
    ("now", "reason"),
    [
        (SIGNED + timedelta(minutes=5, seconds=1), "EVENT_STALE"),  # a replay
        (SIGNED - timedelta(minutes=5, seconds=1), "EVENT_STALE"),  # signed "in the future"
    ],
)
def test_a_signature_far_from_the_receivers_clock_is_refused(now: datetime, reason: str) -> None:
    with pytest.raises(StatusEventVerificationError) as caught:
        verify_status_event(BODY, _signed(), KEYS, audience=PARTY, now=now)
    assert caught.value.reason == reason
    assert verify_status_event(
        BODY, _signed(), KEYS, audience=PARTY, now=now, tolerance=timedelta(minutes=6)
    )


def test_the_keys_decide() -> None:
    assert _reason(BODY, _signed(key=OTHER)) == "EVENT_SIGNATURE_INVALID"
    assert _reason(BODY, _signed(kid="k9")) == "EVENT_KEY_UNKNOWN"
    revoked = KeySet([VerificationKey("k1", _raw(PRIVATE), revoked=True)])
    assert _reason(BODY, _signed(), revoked) == "EVENT_KEY_REVOKED"
    retired = KeySet([VerificationKey("k1", _raw(PRIVATE), not_after=SIGNED - timedelta(1))])
    assert _reason(BODY, _signed(), retired) == "EVENT_SIGNED_AFTER_KEY_RETIRED"


def test_issuer_and_audience_are_checked_when_given() -> None:
    assert _reason(BODY, _signed(), audience="rp_other") == "EVENT_AUDIENCE_MISMATCH"
    assert _reason(BODY, _signed(), issuer="eid.example") == "EVENT_ISSUER_MISMATCH"


def test_a_receipt_is_no_event_signature() -> None:
    """Same keys, other purpose: a receipt's header cannot sign an event."""
    claims = ReceiptClaims("eid.vn", SUBJECT, PARTY, SIGNED, "v1", "password", "LEVEL_1", (), True)
    header, _, signature = sign_receipt(claims, "k1", PRIVATE).split(".")
    assert _reason(BODY, {SIGNATURE_HEADER: f"{header}..{signature}"}) == "EVENT_MALFORMED"


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "none", "iat": int(SIGNED.timestamp()), "kid": "k1", "typ": SIGNATURE_TYPE},
        {"alg": "EdDSA", "kid": "k1", "typ": SIGNATURE_TYPE},  # no signing time
        {"alg": "EdDSA", "iat": "1", "kid": "k1", "typ": SIGNATURE_TYPE},
        {"alg": "EdDSA", "iat": int(SIGNED.timestamp()), "kid": "k1", "typ": "JWT"},
        {"alg": "EdDSA", "iat": int(SIGNED.timestamp()), "kid": "", "typ": SIGNATURE_TYPE},
        {"alg": "EdDSA", "iat": 1, "kid": "k1", "typ": SIGNATURE_TYPE, "b64": False},
    ],
)
def test_headers_other_than_ours_are_refused(header: dict[str, object]) -> None:
    assert _reason(BODY, _header_signed(header)) == "EVENT_MALFORMED"


@pytest.mark.parametrize(
    "document",
    [
        {"specversion": "1.0"},
        {**json.loads(BODY), "specversion": "0.3"},
        {**json.loads(BODY), "time": "yesterday"},
        {**json.loads(BODY), "time": "2026-11-25T08:30:00"},  # no zone
        # Valid ISO times whose UTC is out of datetime's range (OverflowError).
        {**json.loads(BODY), "time": "0001-01-01T00:00:00+01:00"},
        {**json.loads(BODY), "time": "9999-12-31T23:59:59-01:00"},
        {**json.loads(BODY), "subject": ""},
        {**json.loads(BODY), "id": 7},
    ],
)
def test_a_genuine_signature_over_a_body_not_ours_is_still_refused(
    document: dict[str, object],
) -> None:
    body = json.dumps(document).encode()
    assert _reason(body, _signed(body)) == "EVENT_MALFORMED"
    for raw in (b"[]", b"not json", b'{"id":"a","id":"b"}', "ä".encode("latin-1")):
        assert _reason(raw, _signed(raw)) == "EVENT_MALFORMED"


def test_new_event_types_and_fields_are_passed_on() -> None:
    body = json.dumps({**json.loads(BODY), "type": "account.renamed", "data": {}}).encode()
    event = verify_status_event(body, _signed(body), KEYS, audience=PARTY, now=SIGNED)
    assert event.type == "account.renamed"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "EVENT_SIGNATURE_MISSING"),
        ({SIGNATURE_HEADER: ""}, "EVENT_SIGNATURE_MISSING"),
        ({"x-eid-signature": "a..b", "X-Eid-Signature": "a..b"}, "EVENT_MALFORMED"),
        ({SIGNATURE_HEADER: "only.two"}, "EVENT_MALFORMED"),
        ({SIGNATURE_HEADER: "a.b.c"}, "EVENT_MALFORMED"),  # not detached
        ({SIGNATURE_HEADER: "a..b"}, "EVENT_MALFORMED"),
    ],
)
def test_missing_or_misshapen_signatures(headers: dict[str, str], reason: str) -> None:
    assert _reason(BODY, headers) == reason


def test_an_oversized_body_is_refused_unread() -> None:
    big = b" " * (MAX_BODY_BYTES + 1)
    assert _reason(big, _signed(big)) == "EVENT_TOO_LARGE"


def test_the_encoder_refuses_what_the_verifier_would() -> None:
    with pytest.raises(ValueError, match="aware"):
        encode_status_event(
            event_id="e", type="t", subject="s", audience="a", issuer="i", time=datetime(2026, 1, 1)
        )
    with pytest.raises(ValueError, match="non-empty"):
        encode_status_event(
            event_id="", type="t", subject="s", audience="a", issuer="i", time=SIGNED
        )
    with pytest.raises(ValueError, match="aware"):
        sign_status_event(BODY, "k1", PRIVATE, datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="key id"):
        sign_status_event(BODY, "", PRIVATE, SIGNED)


def test_the_audience_must_be_named() -> None:
    """An integrator cannot forget it: another party's event, re-posted to
    their webhook, would pass. Naming None (a hand check) is a choice."""
    with pytest.raises(TypeError, match="audience"):
        verify_status_event(BODY, _signed(), KEYS, now=SIGNED)  # type: ignore[call-arg]
    assert verify_status_event(BODY, _signed(), KEYS, audience=None, now=SIGNED).audience == PARTY


@pytest.mark.parametrize(
    ("headers", "now", "retryable"),
    [
        (_signed(kid="k2"), SIGNED, True),  # a key newer than the receiver's: fetch, then pass
        (_signed(), SIGNED + timedelta(minutes=6), True),  # signed afresh on the next attempt
        (_signed(key=OTHER), SIGNED, False),
        ({SIGNATURE_HEADER: "a..b"}, SIGNED, False),
        ({}, SIGNED, False),
    ],
)
def test_a_refusal_says_whether_a_genuine_event_may_pass_when_sent_again(
    headers: dict[str, str], now: datetime, retryable: bool
) -> None:
    """eid sends again only on 408, 429 and 5xx: a receiver answering 400 to
    an event signed by a key it has not fetched yet loses that event."""
    with pytest.raises(StatusEventVerificationError) as caught:
        verify_status_event(BODY, headers, KEYS, audience=PARTY, now=now)
    assert caught.value.retryable is retryable


class _Published:
    """eid's GetVerificationKeys, counting the calls."""

    def __init__(self, *keys: VerificationKey) -> None:
        self.keys = KeySet(keys)
        self.calls = 0

    def __call__(self) -> KeySet:
        self.calls += 1
        return self.keys


class _Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def test_the_verifier_fetches_a_key_rotated_since_once_and_no_more_for_forged_ones() -> None:
    published = _Published(VerificationKey("k1", _raw(PRIVATE)))
    clock = _Clock(SIGNED)
    verifier = StatusEventVerifier(published, audience=PARTY, clock=clock)
    assert verifier.verify(BODY, _signed()).key_id == "k1"
    assert published.calls == 1

    # eid rotates to k2 and signs the next event with it.
    published.keys = KeySet([*published.keys.values(), VerificationKey("k2", _raw(OTHER))])
    assert verifier.verify(BODY, _signed(key=OTHER, kid="k2")).key_id == "k2"
    assert published.calls == 2

    # Forged key ids cannot make the receiver call eid for each request.
    for n in range(50):
        with pytest.raises(StatusEventVerificationError) as caught:
            verifier.verify(BODY, _signed(kid=f"k-forged-{n}"))
        assert (caught.value.reason, caught.value.retryable) == ("EVENT_KEY_UNKNOWN", True)
    assert published.calls == 2  # none within a minute of the last such fetch
    clock.at += timedelta(seconds=61)
    with pytest.raises(StatusEventVerificationError):
        verifier.verify(BODY, _signed(kid="k-forged"))
    assert published.calls == 3


def test_the_verifier_learns_of_a_revoked_key_within_the_hour() -> None:
    published = _Published(VerificationKey("k1", _raw(PRIVATE)))
    clock = _Clock(SIGNED)
    verifier = StatusEventVerifier(published, audience=PARTY, clock=clock)
    assert verifier.verify(BODY, _signed())
    published.keys = KeySet([VerificationKey("k1", _raw(PRIVATE), revoked=True)])
    clock.at += timedelta(hours=1, seconds=1)
    late = {SIGNATURE_HEADER: sign_status_event(BODY, "k1", PRIVATE, clock.at)}
    with pytest.raises(StatusEventVerificationError) as caught:
        verifier.verify(BODY, late)
    assert (caught.value.reason, caught.value.retryable) == ("EVENT_KEY_REVOKED", False)
    assert published.calls == 2


def test_the_verifier_checks_the_audience_and_refuses_what_no_key_could_save_unfetched() -> None:
    published = _Published(VerificationKey("k1", _raw(PRIVATE)))
    verifier = StatusEventVerifier(published, audience="rp_other", clock=_Clock(SIGNED))
    with pytest.raises(StatusEventVerificationError) as caught:
        verifier.verify(BODY, _signed())
    assert caught.value.reason == "EVENT_AUDIENCE_MISMATCH"
    for headers in ({}, {SIGNATURE_HEADER: "a..b"}):
        with pytest.raises(StatusEventVerificationError):
            verifier.verify(BODY, headers)
    assert published.calls == 1
