"""Our Base45 (eid_client._base45) against the reference `base45` package and
RFC 9285: the same text for any bytes, the same bytes back, and the same
refusals, except where ours is stricter on purpose (a trailing newline, which
the reference strips)."""

from __future__ import annotations

import base45  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eid_client._base45 import ALPHABET, b45decode, b45encode

_TIMES = settings(max_examples=500, deadline=None)


def _reference(text: str) -> bytes | None:
    try:
        return bytes(base45.b45decode(text))
    except ValueError:
        return None


def _ours(text: str) -> bytes | None:
    try:
        return b45decode(text)
    except ValueError:
        return None


@pytest.mark.parametrize(
    ("raw", "text"),
    [  # RFC 9285, section 4
        (b"AB", "BB8"),
        (b"Hello!!", "%69 VD92EX0"),
        (b"base-45", "UJCLQE7W581"),
        (b"ietf!", "QED8WEX0"),
        (b"", ""),
    ],
)
def test_rfc_9285_examples(raw: bytes, text: str) -> None:
    assert b45encode(raw) == text
    assert b45decode(text) == raw


@pytest.mark.parametrize(
    "text",
    ["GGW", ":::", "::", "A", "ABCD", "ab", "A\n", "BB8\n", "BB8=", "BB8é", "\x00\x00\x00"],
)
def test_invalid_text_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="Base45"):
        b45decode(text)


def test_the_largest_values_are_accepted() -> None:
    assert b45decode("FGW") == b"\xff\xff"  # 15 + 16*45 + 32*2025 = 65535
    assert b45decode("U5") == b"\xff"  # 30 + 5*45 = 255


@_TIMES
@given(st.binary(max_size=3000))
def test_encoding_matches_the_reference_and_decodes_back(raw: bytes) -> None:
    text = b45encode(raw)
    assert text == base45.b45encode(raw).decode("ascii")
    assert b45decode(text) == raw


@_TIMES
@given(st.text(alphabet=ALPHABET, max_size=600))
def test_decoding_alphabet_text_agrees_with_the_reference(text: str) -> None:
    assert _ours(text) == _reference(text)


@_TIMES
@given(st.text(alphabet=ALPHABET + "\nabcé\x00=", max_size=60))
def test_decoding_any_text_agrees_except_where_documented(text: str) -> None:
    ours, reference = _ours(text), _reference(text)
    if ours is not None:
        assert ours == reference  # never accepts what the reference refuses
    elif reference is not None:
        assert text.endswith("\n")  # the reference strips trailing newlines
        assert _ours(text.rstrip("\n")) == reference
