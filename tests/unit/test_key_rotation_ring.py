"""What rotate-keys does to the key ring and to a running server's cipher: a
new active encryption key beside the old ones (HMAC and signing keys kept),
the file replaced whole, the old keys dropped only on request; a server's
cipher follows the file, at once when a blob names a key it lacks, and never
takes a ring with another HMAC key."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from eid_service.security.field_cipher import (
    DecryptionError,
    FieldCipher,
    blob_key_id,
    blob_prefix,
)
from eid_service.security.key_watch import KeyRingWatcher
from eid_service.security.keyed_hash import KeyedHasher
from eid_service.security.keys import (
    add_encryption_key,
    generate_key_ring,
    key_ring_to_json,
    replace_key_ring,
    retired_encryption_keys,
    save_key_ring,
    without_retired_encryption_keys,
)

CONTEXT = "account:acc_1:full_name"


def test_a_new_encryption_key_keeps_every_other_key() -> None:
    ring = generate_key_ring()
    rotated = add_encryption_key(ring)
    assert rotated.active_encryption_key_id not in ring.encryption_keys
    assert set(rotated.encryption_keys) == {*ring.encryption_keys, rotated.active_encryption_key_id}
    assert rotated.hmac_key == ring.hmac_key
    assert dict(rotated.signing_keys) == dict(ring.signing_keys)
    assert rotated.active_signing_key_id == ring.active_signing_key_id
    assert retired_encryption_keys(rotated) == [ring.active_encryption_key_id]
    trimmed = without_retired_encryption_keys(rotated)
    assert set(trimmed.encryption_keys) == {rotated.active_encryption_key_id}
    assert retired_encryption_keys(trimmed) == []


def test_the_ring_file_is_replaced_whole_and_private(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    ring = generate_key_ring()
    save_key_ring(ring, path)
    rotated = add_encryption_key(ring)
    replace_key_ring(rotated, path)
    assert path.read_text("utf-8") == key_ring_to_json(rotated)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["keys.json"]  # no temporary left


def test_reencrypt_keeps_the_plaintext_and_the_context() -> None:
    ring = generate_key_ring()
    old_blob = FieldCipher(ring).encrypt("Trần Thị Hà", context=CONTEXT)
    rotated = add_encryption_key(ring)
    cipher = FieldCipher(rotated)
    new_blob = cipher.reencrypt(old_blob, context=CONTEXT)
    assert blob_key_id(new_blob) == rotated.active_encryption_key_id
    assert new_blob.startswith(blob_prefix(rotated.active_encryption_key_id))
    only_new = FieldCipher(without_retired_encryption_keys(rotated))
    assert only_new.decrypt(new_blob, context=CONTEXT) == "Trần Thị Hà"
    with pytest.raises(DecryptionError):
        only_new.decrypt(new_blob, context="account:acc_2:full_name")
    with pytest.raises(DecryptionError):
        only_new.decrypt(old_blob, context=CONTEXT)  # its key has gone


def test_bulk_sealing_makes_ordinary_blobs() -> None:
    cipher = FieldCipher(generate_key_ring())
    seal = cipher.sealer()
    blobs = [seal(f"value {i}".encode(), CONTEXT.encode()) for i in range(100)]
    assert [cipher.decrypt(b, context=CONTEXT) for b in blobs] == [f"value {i}" for i in range(100)]
    assert len({b[-28:-16] for b in blobs}) == 100  # a nonce each
    with pytest.raises(ValueError, match="context"):
        seal(b"x", b"")


def test_a_server_follows_the_ring_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "keys.json"
    ring = generate_key_ring()
    save_key_ring(ring, path)
    cipher = FieldCipher(ring)
    watch = KeyRingWatcher(path, cipher, ring.hmac_key)
    assert not watch.check()  # unchanged
    rotated = add_encryption_key(ring)
    replace_key_ring(rotated, path)
    with caplog.at_level(logging.INFO, logger="eid.keys"):
        assert watch.check()
    assert cipher.active_key_id == rotated.active_encryption_key_id
    assert rotated.active_encryption_key_id in caplog.text
    assert cipher.key_ids == frozenset(rotated.encryption_keys)
    replace_key_ring(without_retired_encryption_keys(rotated), path)
    assert watch.check()
    assert cipher.key_ids == {rotated.active_encryption_key_id}


def test_a_blob_under_a_key_not_yet_loaded_reloads_the_ring_at_once(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    ring = generate_key_ring()
    save_key_ring(ring, path)
    cipher = FieldCipher(ring)
    watch = KeyRingWatcher(path, cipher, ring.hmac_key)
    cipher.on_unknown_key = watch.check
    rotated = add_encryption_key(ring)
    # Another process rotated and wrote under the new key before our next poll.
    replace_key_ring(rotated, path)
    blob = FieldCipher(rotated).encrypt("Lê Văn Nam", context=CONTEXT)
    assert cipher.decrypt(blob, context=CONTEXT) == "Lê Văn Nam"
    assert watch.reloads == 1
    stranger = FieldCipher(generate_key_ring()).encrypt("x", context=CONTEXT)
    with pytest.raises(DecryptionError):
        cipher.decrypt(stranger, context=CONTEXT)
    assert watch.reloads == 1  # nothing changed on disk: nothing reloaded


def test_a_ring_with_another_hmac_key_or_broken_is_not_taken(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "keys.json"
    ring = generate_key_ring()
    save_key_ring(ring, path)
    cipher = FieldCipher(ring)
    watch = KeyRingWatcher(path, cipher, ring.hmac_key)
    with caplog.at_level(logging.WARNING, logger="eid.keys"):
        replace_key_ring(generate_key_ring(), path)
        assert not watch.check()
        assert "HMAC key differs" in caplog.text
        path.write_text("{ not json", encoding="utf-8")
        os.utime(path, ns=(1, 1))
        assert not watch.check()
    assert cipher.active_key_id == ring.active_encryption_key_id
    # The file is the operator's to fix; meanwhile the server keeps its keys.


def test_the_bulk_digester_is_the_same_hmac() -> None:
    hasher = KeyedHasher(generate_key_ring().hmac_key)
    digest = hasher.digester("personal-id")
    for value in ("001190791514", "900000000042", "", "Nguyễn" * 30):
        assert digest(value.encode()) == hasher.blind_index(value)
    assert hasher.digester("passport")(b"KOR:M1") == hasher.digest("passport", "KOR:M1")
