"""Matching biometric templates (domain/biometrics.py) for level 2.

At a registration office the counter captures the citizen's portrait and 2 to
10 fingerprints; the capture matches when the portrait and every captured
finger reach their thresholds against the templates the population registry
enrolled. The capture is then kept on the account (sealed) as its enrolment.

Biometric Verify compares a relying party's probe (a portrait, optionally one
fingerprint) with that enrolment. Scores leave the service only on a match:
below the threshold, a score would tell a forger which way to change the
next attempt (a hill-climbing attack), and it would tell an ID number
without an enrolment (no score to give) from one whose template missed.

Every comparison of a capture or probe is made whatever the outcome of the
others, so the work does not depend on where a mismatch is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from eid_service.domain.biometrics import (
    FACE_DIMENSIONS,
    FINGERPRINT_DIMENSIONS,
    MAX_FINGERPRINTS,
    Finger,
    Template,
    cosine_similarity,
    template_of,
)
from eid_service.domain.errors import InvalidInput

MIN_COUNTER_FINGERPRINTS = 2
# Defaults for the synthetic feature vectors this service ships with (random
# directions in 128 or 64 dimensions are at a cosine of about 0 +- 0.1 from
# each other); a deployment calibrates them to its extractor's error rates.
DEFAULT_FACE_THRESHOLD = 0.80
DEFAULT_FINGERPRINT_THRESHOLD = 0.80
SCORE_DECIMALS = 4


@dataclass(frozen=True)
class MatchThresholds:
    """The lowest cosine similarity that matches, per modality (0 to 1]."""

    face: float = DEFAULT_FACE_THRESHOLD
    fingerprint: float = DEFAULT_FINGERPRINT_THRESHOLD

    def __post_init__(self) -> None:
        for name, value in (("face", self.face), ("fingerprint", self.fingerprint)):
            if not (math.isfinite(value) and 0 < value <= 1):
                raise ValueError(f"the {name} threshold must be more than 0 and at most 1")


@dataclass(frozen=True)
class BiometricCapture:
    """A portrait and fingerprints captured at a counter: checked against the
    registry, then an account's enrolment."""

    portrait: Template = field(repr=False)
    fingerprints: dict[Finger, Template] = field(repr=False)


@dataclass(frozen=True)
class BiometricProbe:
    """What a relying party captured to verify a citizen."""

    portrait: Template = field(repr=False)
    fingerprint: tuple[Finger, Template] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ProbeResult:
    matched: bool
    # Cosine similarities, rounded; 0 unless matched.
    portrait_score: float = 0.0
    fingerprint_score: float = 0.0


def parse_finger(value: int, field_name: str) -> Finger:
    """A finger position (1-10, ISO/IEC 19794-2), or InvalidInput FINGER_INVALID."""
    try:
        return Finger(value)
    except ValueError:
        raise InvalidInput.of(
            field_name, "FINGER_INVALID", "name the finger: 1 (right thumb) to 10 (left little)"
        ) from None


def check_counter_fingers(fingers: Sequence[Finger | None], field_name: str) -> None:
    """A counter captures 2 to 10 fingerprints, each of another finger
    (None: a fingerprint whose finger was refused already)."""
    if not MIN_COUNTER_FINGERPRINTS <= len(fingers) <= MAX_FINGERPRINTS:
        raise InvalidInput.of(
            field_name,
            "FINGERPRINT_COUNT_INVALID",
            f"capture {MIN_COUNTER_FINGERPRINTS} to {MAX_FINGERPRINTS} fingerprints;"
            f" got {len(fingers)}",
        )
    named = [f for f in fingers if f is not None]
    if len(set(named)) != len(named):
        raise InvalidInput.of(field_name, "FINGER_INVALID", "a finger is given twice")


def _similarity(a: Template, b: Template | None) -> float:
    """-1 when nothing was enrolled to compare with: never a match."""
    return -1.0 if b is None else cosine_similarity(a, b)


def capture_matches(
    capture: BiometricCapture,
    enrolled_portrait: Template | None,
    enrolled_fingerprints: dict[Finger, Template],
    thresholds: MatchThresholds,
) -> bool:
    """Whether a counter capture is the registry's person: the portrait and
    every captured finger at or above their thresholds (a finger the registry
    did not enrol cannot match)."""
    face = _similarity(capture.portrait, enrolled_portrait)
    fingers = [
        _similarity(template, enrolled_fingerprints.get(finger))
        for finger, template in capture.fingerprints.items()
    ]
    return face >= thresholds.face and all(s >= thresholds.fingerprint for s in fingers)


def match_probe(
    probe: BiometricProbe, enrolled: BiometricCapture, thresholds: MatchThresholds
) -> ProbeResult:
    """A relying party's probe against an account's enrolment: the portrait,
    and the fingerprint if one was sent, must reach their thresholds."""
    face = _similarity(probe.portrait, enrolled.portrait)
    finger = 1.0
    if probe.fingerprint is not None:
        which, template = probe.fingerprint
        finger = _similarity(template, enrolled.fingerprints.get(which))
    if face < thresholds.face or finger < thresholds.fingerprint:
        return ProbeResult(False)
    fingerprint_score = 0.0 if probe.fingerprint is None else round(finger, SCORE_DECIMALS)
    return ProbeResult(True, round(face, SCORE_DECIMALS), fingerprint_score)


def _decoy(dimensions: int, seed: int) -> Template:
    return template_of([math.sin(seed + i * 0.7) for i in range(dimensions)])


# Compared with when an ID number has no enrolment, so that case costs what a
# real comparison does; its verdict is then discarded.
DECOY_ENROLMENT = BiometricCapture(
    _decoy(FACE_DIMENSIONS, 1),
    {finger: _decoy(FINGERPRINT_DIMENSIONS, finger.value + 1) for finger in Finger},
)
