"""Base45 (RFC 9285), fast enough to sit next to an Ed25519 verify.

The decoder does its per-character work in C: `bytes.translate` maps the
characters to their values, and the groups are combined in one pass of
big-integer arithmetic over 24-bit lanes, one lane per 3-character group
(`c + 45*d + 2025*e` is at most 91124 < 2**24, so lanes never carry into each
other). A lane above 65535 is refused, as RFC 9285 says.

It is stricter than the `base45` package in one documented way: that package
strips trailing newlines before decoding; this one refuses them like any other
character outside the alphabet.
"""

from __future__ import annotations

import sys
from array import array
from functools import lru_cache

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_INVALID = 0xFF
_VALUES = bytes(ALPHABET.find(chr(i)) if chr(i) in ALPHABET else _INVALID for i in range(256))
# The two low characters of a 16-bit word, indexed by word % 2025.
_LOW_PAIRS = tuple(ALPHABET[r % 45] + ALPHABET[r // 45] for r in range(2025))
_SWAP = sys.byteorder == "little"


@lru_cache(maxsize=64)
def _lane_masks(groups: int) -> tuple[int, int]:
    """The low byte and the high byte of every one of `groups` 24-bit lanes."""
    return int.from_bytes(b"\x00\x00\xff" * groups, "big"), int.from_bytes(
        b"\xff\x00\x00" * groups, "big"
    )


def b45decode(text: str) -> bytes:
    """The bytes `text` encodes; ValueError if it is not valid Base45."""
    if not text.isascii():
        raise ValueError("not Base45: a character outside the alphabet")
    values = text.encode("ascii").translate(_VALUES)
    if _INVALID in values:
        raise ValueError("not Base45: a character outside the alphabet")
    groups, rest = divmod(len(values), 3)
    if rest == 1:
        raise ValueError("not Base45: a length of 3n+1 characters")
    if groups:
        lanes = int.from_bytes(values[: 3 * groups] if rest else values, "big")
        low, high = _lane_masks(groups)
        words = (lanes >> 16 & low) + 45 * (lanes >> 8 & low) + 2025 * (lanes & low)
        if words & high:
            raise ValueError("not Base45: a group above 65535")
        out = bytearray(words.to_bytes(3 * groups, "big"))
        del out[0::3]  # the lanes' high bytes, zero: big-endian 16-bit words remain
    else:
        out = bytearray()
    if rest:
        last = values[-2] + 45 * values[-1]
        if last > 0xFF:
            raise ValueError("not Base45: a final pair above 255")
        out.append(last)
    return bytes(out)


def b45encode(data: bytes) -> str:
    """`data` in Base45 text."""
    pairs, odd = divmod(len(data), 2)
    words = array("H")
    words.frombytes(data[: 2 * pairs])
    if _SWAP:
        words.byteswap()
    parts = [_LOW_PAIRS[w % 2025] + ALPHABET[w // 2025] for w in words]
    if odd:
        parts.append(ALPHABET[data[-1] % 45] + ALPHABET[data[-1] // 45])
    return "".join(parts)
