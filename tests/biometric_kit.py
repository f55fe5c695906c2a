"""Synthetic biometric templates for tests: people the registry enrolled
(a portrait and ten fingerprints), captures of them (the enrolment plus small
noise, as a second capture of the same face is), and captures at an exact
cosine similarity to an enrolment, to test the thresholds from either side."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from datetime import date

from eid_service.demo import enrolled_portrait
from eid_service.domain.biometric_match import BiometricCapture
from eid_service.domain.biometrics import (
    FACE_DIMENSIONS,
    FINGERPRINT_DIMENSIONS,
    Finger,
    Template,
    template_of,
)
from eid_service.domain.citizen import Demographics, Gender
from eid_service.domain.personal_id import make_personal_id
from eid_service.domain.registry_person import RegistryPerson

# What the counter captures unless a test says otherwise.
INDEX_FINGERS = (Finger.RIGHT_INDEX, Finger.LEFT_INDEX)


def _unit(values: list[float]) -> list[float]:
    norm = math.sqrt(math.fsum(v * v for v in values))
    return [v / norm for v in values]


def _direction(rng: random.Random, dimensions: int) -> list[float]:
    return _unit([rng.gauss(0.0, 1.0) for _ in range(dimensions)])


def random_template(seed: int, dimensions: int = FACE_DIMENSIONS) -> Template:
    return template_of(_direction(random.Random(seed), dimensions))


def noisy(enrolled: Template, seed: int, noise: float = 0.1) -> Template:
    """Another capture of the same trait: Gaussian noise of `noise` times the
    vector's length, spread over its values (cosine similarity about
    1/sqrt(1 + noise**2): 0.995 at the default)."""
    rng = random.Random(seed)
    values = enrolled.values()
    norm = math.sqrt(math.fsum(v * v for v in values))
    sigma = noise * norm / math.sqrt(len(values))
    return template_of([v + rng.gauss(0.0, sigma) for v in values])


def at_similarity(enrolled: Template, similarity: float, seed: int) -> Template:
    """A template whose cosine similarity with `enrolled` is `similarity`
    (to float32 precision, far finer than the 0.01 the tests step by)."""
    x = _unit(list(enrolled.values()))
    r = _direction(random.Random(seed), len(x))
    along = math.fsum(a * b for a, b in zip(r, x, strict=True))
    o = _unit([b - along * a for a, b in zip(x, r, strict=True)])
    across = math.sqrt(1 - similarity * similarity)
    return template_of([similarity * a + across * b for a, b in zip(x, o, strict=True)])


def enrolled_person(demographics: Demographics, seed: int) -> RegistryPerson:
    """A person with a portrait and all ten fingerprints enrolled. The portrait
    is the demo registry's for the ID number, so the app's level-1 Register
    (flows.register, World.register) matches it too."""
    return RegistryPerson(
        demographics,
        portrait=enrolled_portrait(demographics.personal_id),
        fingerprints={
            finger: random_template(seed * 100 + finger.value, FINGERPRINT_DIMENSIONS)
            for finger in Finger
        },
    )


def capture_of(
    person: RegistryPerson, seed: int, fingers: Iterable[Finger] = INDEX_FINGERS
) -> BiometricCapture:
    """What a counter captures of the person: their templates plus noise."""
    assert person.portrait is not None
    return BiometricCapture(
        noisy(person.portrait, seed),
        {f: noisy(person.fingerprints[f], seed + f.value) for f in fingers},
    )


def adult(
    serial: int, name: str = "Võ Thị Bích Ngọc", gender: Gender = Gender.FEMALE
) -> Demographics:
    """A synthetic adult (born 1988) with its own ID number; not in the demo registry."""
    born = date(1988, 3, 14)
    return Demographics(make_personal_id("048", born, gender, serial).value, name, born, gender)
