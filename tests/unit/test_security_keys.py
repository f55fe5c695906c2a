"""Key ring: validation, JSON round trip, file storage and rotation."""

from __future__ import annotations

import base64
import json
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from eid_service.security.keys import (
    KeyRing,
    generate_key_ring,
    key_ring_from_json,
    key_ring_to_json,
    load_key_ring,
    rotate,
    save_key_ring,
)


def _ring(**overrides: Any) -> KeyRing:
    fields: dict[str, Any] = {
        "hmac_key": b"h" * 32,
        "encryption_keys": {"k1": b"e" * 32},
        "active_encryption_key_id": "k1",
        "signing_keys": {"k1": Ed25519PrivateKey.generate()},
        "active_signing_key_id": "k1",
    }
    fields.update(overrides)
    return KeyRing(**fields)


def test_generated_ring_has_one_active_key_of_each_kind() -> None:
    ring = generate_key_ring()

    assert len(ring.hmac_key) == 32
    assert list(ring.encryption_keys) == [ring.active_encryption_key_id]
    assert len(ring.encryption_keys[ring.active_encryption_key_id]) == 32
    assert list(ring.signing_keys) == [ring.active_signing_key_id]
    assert re.fullmatch(r"k-\d{8}-[0-9a-f]{6}", ring.active_encryption_key_id)


def test_generated_rings_do_not_share_keys() -> None:
    first, second = generate_key_ring(), generate_key_ring()

    assert first.hmac_key != second.hmac_key
    assert first.active_encryption_key_id != second.active_encryption_key_id


def test_repr_shows_key_ids_but_no_key_material() -> None:
    ring = generate_key_ring()
    text = repr(ring)
    encryption_key = ring.encryption_keys[ring.active_encryption_key_id]

    assert ring.active_encryption_key_id in text
    for secret in (ring.hmac_key, encryption_key):
        assert secret.hex() not in text
        assert base64.b64encode(secret).decode() not in text
        assert repr(secret) not in text


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"hmac_key": b"h" * 16}, "hmac_key"),
        ({"encryption_keys": {}}, "no encryption keys"),
        ({"encryption_keys": {"k1": b"e" * 16}}, "wrong type or size"),
        ({"active_encryption_key_id": "k2"}, "not in the key ring"),
        ({"signing_keys": {}}, "no signing keys"),
        ({"signing_keys": {"k1": b"s" * 32}}, "wrong type or size"),
        ({"active_signing_key_id": "k2"}, "not in the key ring"),
        (
            {"encryption_keys": {"bad id!": b"e" * 32}, "active_encryption_key_id": "bad id!"},
            "invalid encryption key id",
        ),
    ],
)
def test_invalid_rings_are_rejected(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message) as excinfo:
        _ring(**overrides)

    assert "eeee" not in str(excinfo.value)  # no key bytes in the message


def test_ring_is_not_changed_by_mutating_the_callers_dict() -> None:
    keys = {"k1": b"e" * 32}
    ring = _ring(encryption_keys=keys)

    keys["k2"] = b"x" * 32

    assert list(ring.encryption_keys) == ["k1"]


def test_json_round_trip_preserves_every_key() -> None:
    ring = rotate(generate_key_ring())

    restored = key_ring_from_json(key_ring_to_json(ring))

    assert restored.hmac_key == ring.hmac_key
    assert dict(restored.encryption_keys) == dict(ring.encryption_keys)
    assert restored.active_encryption_key_id == ring.active_encryption_key_id
    assert restored.active_signing_key_id == ring.active_signing_key_id
    assert restored.signing_keys.keys() == ring.signing_keys.keys()
    for key_id, key in ring.signing_keys.items():
        # A signature by the original key verifies with the restored key's public half.
        restored.signing_keys[key_id].public_key().verify(key.sign(b"msg"), b"msg")


def test_json_document_is_versioned_base64() -> None:
    ring = generate_key_ring()

    document = json.loads(key_ring_to_json(ring))

    assert document["version"] == 1
    assert base64.b64decode(document["hmac_key"]) == ring.hmac_key
    assert len(base64.b64decode(document["signing_keys"][ring.active_signing_key_id])) == 32


def _document_with(**changes: Any) -> str:
    document = json.loads(key_ring_to_json(generate_key_ring()))
    document.update(changes)
    return json.dumps(document)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("not json {", id="not-json"),
        pytest.param("[]", id="not-an-object"),
        pytest.param(_document_with(version=2), id="future-version"),
        pytest.param(_document_with(hmac_key="!!not base64!!"), id="bad-base64"),
        pytest.param(_document_with(hmac_key=None), id="missing-hmac-key"),
        pytest.param(_document_with(encryption_keys=[]), id="keys-not-an-object"),
        pytest.param(_document_with(active_signing_key_id=7), id="active-id-not-a-string"),
        pytest.param(
            _document_with(signing_keys={"k1": base64.b64encode(b"s" * 31).decode()}),
            id="short-signing-key",
        ),
    ],
)
def test_invalid_json_is_rejected_with_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="key ring"):
        key_ring_from_json(text)


def test_parse_errors_do_not_echo_key_material() -> None:
    text = _document_with(hmac_key="c2VjcmV0LWtleS1ieXRlcw==!")

    with pytest.raises(ValueError, match="key ring") as excinfo:
        key_ring_from_json(text)

    assert "c2VjcmV0" not in str(excinfo.value)
    assert excinfo.value.__cause__ is None


def test_save_then_load_round_trips(tmp_path: Path) -> None:
    ring = generate_key_ring()
    path = tmp_path / "secrets" / "nested" / "keys.json"

    save_key_ring(ring, path)
    loaded = load_key_ring(path)

    assert loaded.hmac_key == ring.hmac_key
    assert dict(loaded.encryption_keys) == dict(ring.encryption_keys)


def test_saved_file_is_private_and_no_temp_file_is_left(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"

    save_key_ring(generate_key_ring(), path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["keys.json"]


def test_save_refuses_to_overwrite_an_existing_ring(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    original = generate_key_ring()
    save_key_ring(original, path)
    before = path.read_bytes()

    with pytest.raises(FileExistsError):
        save_key_ring(generate_key_ring(), path)

    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keys.json"]


def test_save_does_not_clobber_a_file_created_after_the_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process writes the ring between our existence check and our write.
    path = tmp_path / "keys.json"
    path.write_text("the other writer's ring")
    monkeypatch.setattr(Path, "exists", lambda self: False)

    with pytest.raises(FileExistsError):
        save_key_ring(generate_key_ring(), path)

    assert path.read_text() == "the other writer's ring"
    assert [p.name for p in tmp_path.iterdir()] == ["keys.json"]


def test_rotate_adds_new_active_keys_and_keeps_the_old_ones() -> None:
    ring = generate_key_ring()

    rotated = rotate(ring)

    assert rotated.active_encryption_key_id != ring.active_encryption_key_id
    assert rotated.active_signing_key_id != ring.active_signing_key_id
    old_id = ring.active_encryption_key_id
    assert rotated.encryption_keys[old_id] == ring.encryption_keys[old_id]
    assert ring.active_signing_key_id in rotated.signing_keys
    assert rotated.hmac_key == ring.hmac_key  # blind indexes must stay valid
    assert len(rotated.encryption_keys) == 2
    assert len(ring.encryption_keys) == 1  # the input ring is unchanged


def test_repeated_rotation_keeps_every_key() -> None:
    ring = generate_key_ring()
    for _ in range(3):
        ring = rotate(ring)

    assert len(ring.encryption_keys) == 4
    assert len(ring.signing_keys) == 4
