"""Keyed hashes: blind indexes, domain separation, constant-time match, secret tokens."""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest

from eid_service.security.keyed_hash import KeyedHasher, new_secret_token

KEY = bytes(range(32))


@pytest.fixture
def hasher() -> KeyedHasher:
    return KeyedHasher(KEY)


def test_blind_index_is_stable_across_releases(hasher: KeyedHasher) -> None:
    # Pinned values: changing the construction would orphan every stored index and hash.
    assert hasher.blind_index("001203012345").hex() == (
        "2b1e03edf445b2b3162bda35ec3b250276c86ce26b53c653aab5cccfee175568"
    )
    assert hasher.digest("api-key", "eidk_test").hex() == (
        "fab465e00eb3fa1878008411b00b58d93e92c459cd6d4c83b113b2e8bb0a8a50"
    )


@pytest.mark.parametrize("value", ["", "x", "Nguyễn Văn An", "ab" * 3000])
def test_digest_is_hmac_sha256_with_the_purpose_key(hasher: KeyedHasher, value: str) -> None:
    purpose_key = hmac.new(KEY, b"eid/keyed-hash/audit", hashlib.sha256).digest()
    expected = hmac.new(purpose_key, value.encode(), hashlib.sha256).digest()
    assert hasher.digest("audit", value) == expected
    assert hasher.digester("audit")(value.encode()) == expected


def test_blind_index_is_the_personal_id_purpose(hasher: KeyedHasher) -> None:
    assert hasher.blind_index("001203012345") == hasher.digest("personal-id", "001203012345")
    assert hasher.blind_index("001203012345") != hasher.blind_index("001203012346")


def test_same_value_hashes_differently_per_purpose(hasher: KeyedHasher) -> None:
    value = "123456"
    digests = {
        hasher.digest(purpose, value)
        for purpose in ("personal-id", "activation-code", "api-key", "session", "request")
    }

    assert len(digests) == 5


def test_digest_depends_on_the_key() -> None:
    other = KeyedHasher(bytes(32))

    assert other.blind_index("001203012345") != KeyedHasher(KEY).blind_index("001203012345")


def test_matches_accepts_only_the_same_value_and_purpose(hasher: KeyedHasher) -> None:
    stored = hasher.digest("activation-code", "482913")

    assert hasher.matches(stored, "activation-code", "482913")
    assert not hasher.matches(stored, "activation-code", "482914")
    assert not hasher.matches(stored, "api-key", "482913")
    assert not hasher.matches(b"", "activation-code", "482913")


@pytest.mark.parametrize("purpose", ["", "Personal-ID", "personal id", "a\x00b", "x" * 65])
def test_invalid_purpose_is_rejected(hasher: KeyedHasher, purpose: str) -> None:
    with pytest.raises(ValueError, match="purpose"):
        hasher.digest(purpose, "value")


def test_short_key_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        KeyedHasher(b"k" * 31)


def test_repr_does_not_reveal_the_key(hasher: KeyedHasher) -> None:
    assert KEY.hex() not in repr(hasher)
    assert repr(KEY) not in repr(hasher)


def test_secret_token_shape() -> None:
    token = new_secret_token("eidk")

    # 32 random bytes -> 43 url-safe base64 characters without padding.
    assert re.fullmatch(r"eidk_[A-Za-z0-9_-]{43}", token)


def test_secret_token_length_follows_nbytes() -> None:
    assert len(new_secret_token("eids", nbytes=48)) == len("eids_") + 64


def test_secret_tokens_are_unique() -> None:
    assert len({new_secret_token("eids") for _ in range(200)}) == 200


@pytest.mark.parametrize(("prefix", "nbytes"), [("", 32), ("ei_dk", 32), ("EIDK", 32), ("eidk", 8)])
def test_secret_token_rejects_bad_arguments(prefix: str, nbytes: int) -> None:
    with pytest.raises(ValueError, match="token"):
        new_secret_token(prefix, nbytes)
