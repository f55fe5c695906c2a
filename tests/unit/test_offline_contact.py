"""The contact attributes in offline credentials: phone (Claim 169 key 12,
E.164) and email (key 11), issued, read back, read by the claim169 reference
decoder, and refused when ill-formed (helpers: test_offline_credential.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cbor2
import claim169  # type: ignore[import-untyped]
import pytest

from eid_client import qr
from eid_client.cli import main
from eid_client.offline import verify_offline
from tests.unit.test_offline_credential import (
    DURING,
    KEYS,
    PUBLIC,
    cwt,
    issue,
    reason,
    sign1,
    unwrap,
    wrap,
)

PHONE = "+84912345678"
EMAIL = "lan.nguyen@example.vn"
GENUINE_C169 = {1: "079203001234", 9: 2}


def test_phone_and_email_round_trip_under_their_claim_169_keys() -> None:
    text = issue(phone_number=PHONE, email=EMAIL)

    credential = verify_offline(text, KEYS, now=DURING)

    assert (credential.phone_number, credential.email) == (PHONE, EMAIL)
    assert credential.personal_id == "079203001234"  # the others are still there
    c169 = cbor2.loads(unwrap(text).value[2])[169]
    assert (c169[12], c169[11]) == (PHONE, EMAIL)


def test_without_them_the_map_has_neither_key() -> None:
    text = issue(phone_number=PHONE)
    c169 = cbor2.loads(unwrap(text).value[2])[169]
    assert 12 in c169 and 11 not in c169
    assert verify_offline(text, KEYS, now=DURING).email is None
    assert verify_offline(issue(), KEYS, now=DURING).phone_number is None


def test_the_claim169_reference_decoder_reads_phone_and_email() -> None:
    text = issue(phone_number=PHONE, email=EMAIL)

    decoded = claim169.decode_with_ed25519(text, PUBLIC, validate_timestamps=False)

    assert decoded.is_verified()
    person = decoded.claim169
    assert (person.phone, person.email, person.id) == (PHONE, EMAIL, "079203001234")


@pytest.mark.parametrize(
    "change",
    [
        {"phone_number": "0912345678"},  # national form, not E.164
        {"phone_number": "+84 912 345 678"},
        {"phone_number": "+0912345678"},
        {"email": "lan.example.vn"},
        {"email": "lan@localhost"},
        {"email": "lan @example.vn"},
        {"email": "a" * 250 + "@example.vn"},
    ],
)
def test_issuing_refuses_a_malformed_phone_or_email(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"phone_number E\.164, email an address"):
        issue(**change)


@pytest.mark.parametrize(
    "c169",
    [
        {**GENUINE_C169, 12: 84912345678},  # a number, not text
        {**GENUINE_C169, 12: "0912345678"},
        {**GENUINE_C169, 11: "no-at-sign"},
        {**GENUINE_C169, 11: b"lan@example.vn"},
        {**GENUINE_C169, 13: "Korea"},  # nationality: not ISO 3166-1 alpha-3
        {**GENUINE_C169, 13: 410},  # nationality: a number, not text
        {**GENUINE_C169, 14: 1},  # marital status: a key we do not issue
    ],
)
def test_a_genuine_credential_with_an_ill_formed_contact_is_refused(
    c169: dict[int, Any],
) -> None:
    assert reason(wrap(sign1(cwt(c169=c169)))) == "SHARE_PAYLOAD_MALFORMED"


def test_a_genuine_credential_with_a_well_formed_contact_is_read() -> None:
    text = wrap(sign1(cwt(c169={**GENUINE_C169, 11: EMAIL, 12: PHONE})))
    credential = verify_offline(text, KEYS, now=DURING)
    assert (credential.phone_number, credential.email, credential.gender) == (
        PHONE,
        EMAIL,
        "female",
    )


def test_eid_verify_qr_prints_and_emits_the_contact_attributes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    now = datetime.now(UTC).replace(microsecond=0)
    text = issue(
        issued_at=now, expires_at=now + timedelta(minutes=5), phone_number=PHONE, email=EMAIL
    )
    image, keys = tmp_path / "share.png", tmp_path / "keys.json"
    qr.write_image(text, image)
    keys.write_text(KEYS.to_json())
    nowhere = ["--target", "127.0.0.1:1"]  # nothing listens there: checked offline

    assert main([*nowhere, "verify-qr", str(image), "--keys", str(keys)]) == 0
    out = capsys.readouterr().out
    for expected in ("Phone number", PHONE, "Email", EMAIL):
        assert expected in out
    assert main([*nowhere, "--json", "verify-qr", str(image), "--keys", str(keys)]) == 0
    attributes = json.loads(capsys.readouterr().out)["attributes"]
    assert (attributes["phone_number"], attributes["email"]) == (PHONE, EMAIL)
