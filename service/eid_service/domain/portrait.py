"""The level-1 portrait check: the face the app captured against the portrait
the population registry enrolled.

The app sends a face feature vector (biometrics.FACE_DIMENSIONS float32
values, as its extractor renders the captured face); it matches when its
cosine similarity with the enrolled vector reaches the threshold. At level 1
the capture is a check, not an enrolment: it is compared and forgotten.

The default threshold, 0.60, is the operating point commonly published for
128-value face embeddings of the FaceNet family (a cosine distance of 0.40,
as the DeepFace library uses for Facenet): two captures of one face score
well above it, two people's faces usually below it. Unrelated vectors of 128
values score about 0 (standard deviation 1/sqrt(128), about 0.09), so a
random vector reaches 0.60 with odds below one in a billion. The right value
depends on the capture device's extractor, hence the setting
(EID_PORTRAIT_MATCH_THRESHOLD); values below 0.30 are refused, because
there impostors pass for most extractors, and 1 would need the capture to be
the enrolled vector itself, which no camera gives.
"""

from __future__ import annotations

from dataclasses import dataclass

from eid_service.domain.biometrics import (
    FACE_DIMENSIONS,
    Template,
    cosine_similarity,
    parse_template,
    template_of,
)
from eid_service.domain.errors import InvalidInput

DEFAULT_PORTRAIT_MATCH_THRESHOLD = 0.60
MIN_PORTRAIT_MATCH_THRESHOLD = 0.30

# Compared with when there is nothing enrolled, so that the work done (and the
# time taken) does not tell whether the registry holds a portrait.
_DECOY = template_of([1.0] * FACE_DIMENSIONS)


@dataclass(frozen=True)
class PortraitPolicy:
    """How close a captured portrait must be to the enrolled one."""

    threshold: float = DEFAULT_PORTRAIT_MATCH_THRESHOLD

    def __post_init__(self) -> None:
        if not MIN_PORTRAIT_MATCH_THRESHOLD <= self.threshold < 1.0:
            raise ValueError(
                f"the portrait match threshold must be at least {MIN_PORTRAIT_MATCH_THRESHOLD:g}"
                " and below 1"
            )

    def matches(self, capture: Template, enrolled: Template | None) -> bool:
        """Whether `capture` is the enrolled face. The comparison runs even
        when nothing usable is enrolled (against a decoy, never a match)."""
        usable = enrolled is not None and enrolled.dimensions == capture.dimensions
        against = enrolled if usable and enrolled is not None else _DECOY
        score = cosine_similarity(capture, against)
        return usable and score >= self.threshold


def parse_portrait(raw: bytes, field: str = "portrait") -> Template:
    """The captured face vector, or InvalidInput: PORTRAIT_REQUIRED when
    missing, BIOMETRIC_TEMPLATE_INVALID when malformed."""
    if not raw:
        raise InvalidInput.of(
            field,
            "PORTRAIT_REQUIRED",
            f"a portrait is required: {FACE_DIMENSIONS} little-endian float32 values"
            f" ({4 * FACE_DIMENSIONS} bytes) from the app's face capture",
        )
    return parse_template(raw, FACE_DIMENSIONS, field)
