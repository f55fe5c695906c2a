"""Matching counter captures against the registry and relying parties'
probes against an enrolment: thresholds from either side, every captured
finger counts, scores only on a match, and the checks of a capture's shape."""

from __future__ import annotations

import pytest

from eid_service.domain.biometric_match import (
    DECOY_ENROLMENT,
    BiometricCapture,
    BiometricProbe,
    MatchThresholds,
    ProbeResult,
    capture_matches,
    check_counter_fingers,
    match_probe,
    parse_finger,
)
from eid_service.domain.biometrics import FINGERPRINT_DIMENSIONS, Finger
from eid_service.domain.errors import InvalidInput
from tests.biometric_kit import adult, at_similarity, capture_of, enrolled_person, random_template

PERSON = enrolled_person(adult(101), seed=11)
STRANGER = enrolled_person(adult(102), seed=12)
T = MatchThresholds(face=0.80, fingerprint=0.85)
RIGHT, LEFT = Finger.RIGHT_INDEX, Finger.LEFT_INDEX


def _registry_match(capture: BiometricCapture) -> bool:
    return capture_matches(capture, PERSON.portrait, PERSON.fingerprints, T)


def test_a_capture_of_the_person_matches_and_of_someone_else_does_not() -> None:
    assert _registry_match(capture_of(PERSON, seed=1))
    assert _registry_match(capture_of(PERSON, seed=2, fingers=list(Finger)))
    assert not _registry_match(capture_of(STRANGER, seed=3))


@pytest.mark.parametrize(("face", "matched"), [(0.805, True), (0.795, False)])
def test_the_face_threshold_from_either_side(face: float, matched: bool) -> None:
    assert PERSON.portrait is not None
    capture = capture_of(PERSON, seed=4)
    moved = BiometricCapture(at_similarity(PERSON.portrait, face, seed=5), capture.fingerprints)
    assert _registry_match(moved) is matched


@pytest.mark.parametrize(("finger", "matched"), [(0.855, True), (0.845, False)])
def test_every_captured_finger_must_reach_its_threshold(finger: float, matched: bool) -> None:
    capture = capture_of(PERSON, seed=6, fingers=[RIGHT, LEFT, Finger.LEFT_THUMB])
    prints = dict(capture.fingerprints)
    prints[LEFT] = at_similarity(PERSON.fingerprints[LEFT], finger, seed=7)
    assert _registry_match(BiometricCapture(capture.portrait, prints)) is matched


def test_nothing_enrolled_never_matches() -> None:
    capture = capture_of(PERSON, seed=8)
    assert not capture_matches(capture, None, PERSON.fingerprints, T)
    no_left = {f: t for f, t in PERSON.fingerprints.items() if f is not LEFT}
    assert not capture_matches(capture, PERSON.portrait, no_left, T)


def test_a_probe_matches_with_scores_and_misses_without() -> None:
    enrolment = capture_of(PERSON, seed=9, fingers=list(Finger))
    probe = capture_of(PERSON, seed=10)
    face_only = match_probe(BiometricProbe(probe.portrait), enrolment, T)
    assert face_only.matched and 0.95 < face_only.portrait_score <= 1
    assert face_only.fingerprint_score == 0
    with_finger = match_probe(
        BiometricProbe(probe.portrait, (RIGHT, probe.fingerprints[RIGHT])), enrolment, T
    )
    assert with_finger.matched and 0.95 < with_finger.fingerprint_score <= 1
    # Scores are rounded: no more precision than a verdict needs.
    assert with_finger.portrait_score == round(with_finger.portrait_score, 4)

    wrong_finger = BiometricProbe(probe.portrait, (LEFT, probe.fingerprints[RIGHT]))
    assert match_probe(wrong_finger, enrolment, T) == ProbeResult(False)
    stranger = capture_of(STRANGER, seed=11)
    assert match_probe(BiometricProbe(stranger.portrait), enrolment, T) == ProbeResult(False)


def test_a_finger_the_counter_did_not_enrol_never_matches() -> None:
    enrolment = capture_of(PERSON, seed=12)  # the two index fingers
    probe = capture_of(PERSON, seed=13, fingers=[Finger.RIGHT_THUMB])
    thumb = (Finger.RIGHT_THUMB, probe.fingerprints[Finger.RIGHT_THUMB])
    assert not match_probe(BiometricProbe(probe.portrait, thumb), enrolment, T).matched


def test_the_decoy_matches_no_one() -> None:
    for seed in range(20):
        probe = BiometricProbe(random_template(seed))
        assert not match_probe(probe, DECOY_ENROLMENT, T).matched


def test_a_counter_takes_two_to_ten_different_fingers() -> None:
    check_counter_fingers([RIGHT, LEFT], "f")
    check_counter_fingers(list(Finger), "f")
    for fingers in ([RIGHT], [], [*Finger, RIGHT]):
        with pytest.raises(InvalidInput) as caught:
            check_counter_fingers(fingers, "f")
        assert caught.value.reason == "FINGERPRINT_COUNT_INVALID"
    with pytest.raises(InvalidInput) as twice:
        check_counter_fingers([RIGHT, RIGHT], "f")
    assert twice.value.reason == "FINGER_INVALID"


@pytest.mark.parametrize("value", [0, 11, -1])
def test_a_finger_is_one_of_the_ten(value: int) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_finger(value, "fingerprint.finger")
    assert caught.value.violations[0].field == "fingerprint.finger"
    assert caught.value.reason == "FINGER_INVALID"
    assert parse_finger(2, "f") is RIGHT


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.01, float("nan")])
def test_thresholds_are_cosines_above_zero(bad: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        MatchThresholds(face=bad)
    with pytest.raises(ValueError, match="threshold"):
        MatchThresholds(fingerprint=bad)
    assert MatchThresholds(face=1.0).face == 1.0


def test_templates_stay_out_of_reprs() -> None:
    capture = capture_of(PERSON, seed=14)
    shown = repr(capture) + repr(BiometricProbe(capture.portrait))
    assert capture.portrait.packed.hex()[:16] not in shown
    assert str(capture.portrait.values()[0])[:6] not in shown
    assert len(random_template(1, FINGERPRINT_DIMENSIONS).packed) == 256
