"""Biometric templates as the eid API carries them: little-endian float32
feature vectors, 128 values for a portrait (face) and 64 for a fingerprint,
from a capture device's feature extractor (never images).

:func:`pack_template` packs a vector of floats; every call that takes a
template also takes the packed ``bytes`` as they are. Fingers are named as
ISO/IEC 19794-2 numbers them: ``"right_thumb"`` (1) ... ``"left_little"``
(10), ``"FINGER_RIGHT_INDEX"`` or the number."""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence

from eid.v1 import identity_service_pb2 as pb

PORTRAIT_DIMENSIONS = 128
FINGERPRINT_DIMENSIONS = 64

Template = bytes | Sequence[float]
Finger = str | int


def pack_template(values: Template, dimensions: int | None = None) -> bytes:
    """``values`` as little-endian float32 (bytes are taken as they are);
    with ``dimensions``, a vector of another length is refused here."""
    if isinstance(values, bytes | bytearray):
        return bytes(values)
    floats = [float(v) for v in values]
    if dimensions is not None and len(floats) != dimensions:
        raise ValueError(f"a template here is {dimensions} values, not {len(floats)}")
    if not all(math.isfinite(v) for v in floats):
        raise ValueError("a template's values must be finite numbers")
    return struct.pack(f"<{len(floats)}f", *floats)


def parse_finger(value: Finger) -> pb.Finger.ValueType:
    """``"right_index"``, ``"FINGER_RIGHT_INDEX"`` or 2."""
    if isinstance(value, int):
        if value not in pb.Finger.values() or value == pb.FINGER_UNSPECIFIED:
            raise ValueError(f"unknown finger {value}: 1 (right thumb) to 10 (left little)")
        return pb.Finger.ValueType(value)
    name = value.strip().upper()
    name = name if name.startswith("FINGER_") else f"FINGER_{name}"
    names = pb.Finger.keys()
    if name not in names or name == "FINGER_UNSPECIFIED":
        known = ", ".join(n.removeprefix("FINGER_").lower() for n in names[1:])
        raise ValueError(f"unknown finger {value!r}: use {known}")
    return pb.Finger.Value(name)


def fingerprint_pb(finger: Finger, template: Template) -> pb.FingerprintTemplate:
    return pb.FingerprintTemplate(
        finger=parse_finger(finger), template=pack_template(template, FINGERPRINT_DIMENSIONS)
    )


def fingerprints_pb(fingerprints: Mapping[Finger, Template]) -> list[pb.FingerprintTemplate]:
    """One message per finger, in the order given."""
    return [fingerprint_pb(finger, template) for finger, template in fingerprints.items()]
