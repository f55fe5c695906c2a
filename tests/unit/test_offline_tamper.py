"""Damaged and hostile offline payloads: every single-character change of a
genuine payload, every truncation, additions, and generated text. Each is
refused with an OfflineVerificationError (never another exception), and nothing
but the genuine payload is ever accepted."""

from __future__ import annotations

import zlib

import base45  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eid_client._base45 import ALPHABET, b45encode
from eid_client.offline import (
    REASONS,
    OfflineVerificationError,
    _stored_zlib,
    verify_offline,
)
from tests.unit.test_offline_credential import DURING, KEYS, issue

GENUINE = issue(audience="rp_bank")
ZLIB_HEADS = sorted(b45encode(bytes([0x78, f])) for f in range(256) if (0x7800 + f) % 31 == 0)


def _outcome(payload: str) -> str:
    """'accepted' or the reason; any other exception fails the test."""
    try:
        verify_offline(payload, KEYS, now=DURING, audience="rp_bank")
    except OfflineVerificationError as refused:
        return refused.reason
    return "accepted"


def _refused(payload: str) -> str:
    """The reason `payload` is refused; fails if it is accepted."""
    outcome = _outcome(payload)
    assert outcome in REASONS, f"{outcome}: {payload!r}"
    return outcome


def test_the_genuine_payload_is_accepted() -> None:
    assert verify_offline(GENUINE, KEYS, now=DURING, audience="rp_bank").audience == "rp_bank"


def _substitutes(c: str) -> set[str]:
    """Every other alphabet character, a lower-case letter, and each one-bit flip
    of the character's code."""
    following = ALPHABET[(ALPHABET.index(c) + 1) % len(ALPHABET)]
    flips = {chr(ord(c) ^ (1 << bit)) for bit in range(8)}
    return (set(ALPHABET) | {"a", "z", following} | flips) - {c}


def test_every_single_character_change_is_refused() -> None:
    reasons: dict[str, int] = {}
    changes = 0
    for i, c in enumerate(GENUINE):
        for other in sorted(_substitutes(c)):
            why = _refused(GENUINE[:i] + other + GENUINE[i + 1 :])
            reasons[why] = reasons.get(why, 0) + 1
            changes += 1
    assert changes > 45 * len(GENUINE)
    # The damage is caught by the structure checks (canonical zlib, Adler-32), the
    # classification for the first characters, or the signature.
    assert set(reasons) <= {
        "SHARE_PAYLOAD_MALFORMED",
        "SHARE_PAYLOAD_PREFIX_UNKNOWN",
        "SHARE_SIGNATURE_INVALID",
        "SHARE_KEY_UNKNOWN",
        "SHARE_PAYLOAD_TOO_LARGE",
    }
    assert reasons["SHARE_PAYLOAD_MALFORMED"] > 40 * len(GENUINE)


def test_every_truncation_is_refused() -> None:
    for n in range(len(GENUINE)):
        _refused(GENUINE[:n])
        _refused(GENUINE[n + 1 :])


@pytest.mark.parametrize(
    "extra", ["0", ":", " ", "00", "000", "A" * 30, "\n", "a", "\ud800", "\x00", "é"]
)
def test_appended_characters_are_refused(extra: str) -> None:
    assert _refused(GENUINE + extra) == "SHARE_PAYLOAD_MALFORMED"
    _refused(extra + GENUINE)


def test_every_byte_change_of_the_compressed_stream_is_refused() -> None:
    """The issue's wording: every byte position, flipped (each of its 8 bits)."""
    compressed = base45.b45decode(GENUINE)
    for i in range(len(compressed)):
        for bit in range(8):
            changed = bytearray(compressed)
            changed[i] ^= 1 << bit
            _refused(b45encode(bytes(changed)))


def _zlib_rule(data: bytes) -> bool:
    """The rule as the spec words it: inflates completely (bounded), nothing
    after, and zlib.compress(output, 0) gives the received bytes back."""
    inflate = zlib.decompressobj()
    try:
        out = inflate.decompress(data, 4096)
    except zlib.error:
        return False
    complete = inflate.eof and not inflate.unused_data and not inflate.unconsumed_tail
    return complete and zlib.compress(out, 0) == data


def _our_rule(data: bytes) -> bool:
    return len(data[7:-4]) <= 4096 and _stored_zlib(data[7:-4]) == data


@pytest.mark.parametrize("size", [0, 1, 2, 23, 24, 200, 255, 256, 1000, 4095, 4096])
def test_the_stored_block_is_what_zlib_compress_level_0_makes(size: int) -> None:
    data = bytes((i * 7 + 3) % 256 for i in range(size))
    assert _stored_zlib(data) == zlib.compress(data, 0)
    assert _our_rule(_stored_zlib(data)) and _zlib_rule(_stored_zlib(data))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_the_canonical_check_agrees_with_the_zlib_rule_on_random_bytes(data: bytes) -> None:
    assert _our_rule(data) == _zlib_rule(data)
    stored = zlib.compress(data, 0)
    assert _our_rule(stored) and _zlib_rule(stored)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_the_canonical_check_agrees_with_the_zlib_rule_on_damaged_streams(
    data: st.DataObject,
) -> None:
    stream = bytearray(base45.b45decode(GENUINE))
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(stream) - 1))
        stream[i] = data.draw(st.integers(0, 255))
    assert _our_rule(bytes(stream)) == _zlib_rule(bytes(stream))


_FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FUZZ
@given(st.text(max_size=5000))
def test_any_text_is_refused_with_our_error(text: str) -> None:
    _refused(text)


@_FUZZ
@given(st.sampled_from(ZLIB_HEADS), st.text(alphabet=ALPHABET, max_size=600))
def test_base45_text_behind_a_zlib_header_is_refused_with_our_error(head: str, rest: str) -> None:
    _refused(head + rest)


@_FUZZ
@given(st.binary(max_size=400))
def test_stored_blocks_of_any_bytes_are_refused_with_our_error(cose: bytes) -> None:
    _refused(b45encode(zlib.compress(cose, 0)))


@_FUZZ
@given(st.data())
def test_mutated_genuine_payloads_are_refused_unless_unchanged(data: st.DataObject) -> None:
    text = list(GENUINE)
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["replace", "insert", "delete", "swap"]))
        i = data.draw(st.integers(0, len(text) - 1))
        char = data.draw(st.sampled_from(ALPHABET) | st.characters())
        if kind == "replace":
            text[i] = char
        elif kind == "insert":
            text.insert(i, char)
        elif kind == "delete" and len(text) > 1:
            del text[i]
        else:
            j = data.draw(st.integers(0, len(text) - 1))
            text[i], text[j] = text[j], text[i]
    mutated = "".join(text)
    outcome = _outcome(mutated)
    assert outcome != "accepted" or mutated == GENUINE
