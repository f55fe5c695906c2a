"""Templates: the wire form is checked exactly, and similarity is the cosine."""

from __future__ import annotations

import math
import struct

import pytest

from eid_service.domain.biometrics import (
    FACE_DIMENSIONS,
    cosine_similarity,
    parse_template,
    template_of,
)
from eid_service.domain.errors import InvalidInput


def _packed(values: list[float]) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        _packed([1.0] * (FACE_DIMENSIONS - 1)),
        _packed([1.0] * FACE_DIMENSIONS) + b"\x00",
        _packed([0.0] * FACE_DIMENSIONS),
        _packed([math.nan] + [1.0] * (FACE_DIMENSIONS - 1)),
        _packed([math.inf] + [1.0] * (FACE_DIMENSIONS - 1)),
    ],
)
def test_a_template_of_the_wrong_size_or_values_is_refused(raw: bytes) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_template(raw, FACE_DIMENSIONS, "portrait")
    assert info.value.reason == "BIOMETRIC_TEMPLATE_INVALID"
    assert info.value.violations[0].field == "portrait"


def test_similarity_is_the_cosine_whatever_the_scale() -> None:
    a = template_of([1.0, 0.0, 0.0, 0.0])
    assert cosine_similarity(a, template_of([5.0, 0.0, 0.0, 0.0])) == pytest.approx(1.0)
    assert cosine_similarity(a, template_of([0.0, 2.0, 0.0, 0.0])) == pytest.approx(0.0)
    assert cosine_similarity(a, template_of([-1.0, 0.0, 0.0, 0.0])) == pytest.approx(-1.0)
    assert cosine_similarity(a, template_of([1.0, 1.0, 0.0, 0.0])) == pytest.approx(0.5**0.5)


def test_a_template_never_shows_in_a_repr() -> None:
    t = parse_template(_packed([0.25] * FACE_DIMENSIONS), FACE_DIMENSIONS, "portrait")
    assert "0.25" not in repr(t) and str(t.packed) not in repr(t)
