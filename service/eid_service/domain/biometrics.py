"""Biometric templates and how two of them are compared.

A template is a fixed-length feature vector of little-endian float32 values,
as a capture device's feature extractor produces it: 128 values for a face
(the portrait) and 64 for one fingerprint. Templates are compared by cosine
similarity, from -1 (opposite) to 1 (the same direction); a match is a
similarity at or above a configured threshold. Raw images never reach the
service, and a template never leaves it.
"""

from __future__ import annotations

import enum
import math
import struct
from dataclasses import dataclass, field

from eid_service.domain.errors import InvalidInput

FACE_DIMENSIONS = 128
FINGERPRINT_DIMENSIONS = 64
# Two fingerprints of one person at most ten; a counter usually takes two to ten.
MAX_FINGERPRINTS = 10


class Finger(enum.Enum):
    """Finger positions, numbered as ISO/IEC 19794-2 does (1 right thumb ... 10 left little)."""

    RIGHT_THUMB = 1
    RIGHT_INDEX = 2
    RIGHT_MIDDLE = 3
    RIGHT_RING = 4
    RIGHT_LITTLE = 5
    LEFT_THUMB = 6
    LEFT_INDEX = 7
    LEFT_MIDDLE = 8
    LEFT_RING = 9
    LEFT_LITTLE = 10


@dataclass(frozen=True)
class Template:
    """A checked feature vector: finite values, not all zero, packed as float32 LE."""

    # Biometric data: never in a repr or a log line.
    packed: bytes = field(repr=False)

    @property
    def dimensions(self) -> int:
        return len(self.packed) // 4

    def values(self) -> tuple[float, ...]:
        return struct.unpack(f"<{self.dimensions}f", self.packed)


def parse_template(raw: bytes, dimensions: int, field_name: str) -> Template:
    """A template from its wire form, or InvalidInput BIOMETRIC_TEMPLATE_INVALID."""
    if len(raw) != 4 * dimensions:
        raise _invalid(
            field_name,
            f"a template is {dimensions} float32 values ({4 * dimensions} bytes);"
            f" got {len(raw)} bytes",
        )
    values = struct.unpack(f"<{dimensions}f", raw)
    if not all(math.isfinite(v) for v in values):
        raise _invalid(field_name, "a template value is not a finite number")
    if not any(values):
        raise _invalid(field_name, "the template is all zeros")
    return Template(bytes(raw))


def template_of(values: list[float] | tuple[float, ...]) -> Template:
    """Packs values (for generated data and tests); ValueError if unusable."""
    packed = struct.pack(f"<{len(values)}f", *values)
    try:
        return parse_template(packed, len(values), "template")
    except InvalidInput:
        raise ValueError("not a usable template") from None


def cosine_similarity(a: Template, b: Template) -> float:
    """The cosine of the angle between two templates of equal length."""
    if a.dimensions != b.dimensions:
        raise ValueError("templates of different lengths")
    x, y = a.values(), b.values()
    dot = math.fsum(p * q for p, q in zip(x, y, strict=True))
    norms = math.sqrt(math.fsum(p * p for p in x)) * math.sqrt(math.fsum(q * q for q in y))
    # Clamped: rounding can carry an identical pair a hair past 1.
    return max(-1.0, min(1.0, dot / norms))


def _invalid(field_name: str, description: str) -> InvalidInput:
    return InvalidInput.of(field_name, "BIOMETRIC_TEMPLATE_INVALID", description)
