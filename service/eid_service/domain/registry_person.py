"""One person as the national population registry records them.

Citizens are found by their 12-digit ID number. Foreigners living in Viet Nam
also hold a 12-digit identification number, which the registry assigns; they
are found by their passport too (nationality and passport number), because
that is what they declare when they register. The registry also holds the
portrait and fingerprint templates enrolled when the ID card or residence
card was issued, the guardians of children, and the documents issued to a
person (driver's licence, vehicle registration, insurance cards, tax code).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import date

from eid_service.domain.biometrics import Finger, Template
from eid_service.domain.citizen import Demographics

# ISO 3166-1 alpha-3, upper case ("KOR", "USA"); "VNM" is not a foreign nationality.
NATIONALITY_PATTERN = re.compile(r"[A-Z]{3}")
# ICAO 9303: the document number field holds up to 9 letters and digits.
PASSPORT_NUMBER_PATTERN = re.compile(r"[A-Z0-9]{6,9}")


class PersonKind(enum.Enum):
    CITIZEN = "citizen"
    FOREIGNER = "foreigner"


@dataclass(frozen=True)
class Passport:
    """A foreigner's passport (or other international travel document)."""

    number: str = field(repr=False)
    nationality: str
    issue_date: date = field(repr=False)
    issue_place: str = field(repr=False)


class DocumentType(enum.Enum):
    """Documents a level-2 account may link (the guidance's list)."""

    DRIVING_LICENCE = "driving_licence"
    VEHICLE_REGISTRATION = "vehicle_registration"
    HEALTH_INSURANCE = "health_insurance"
    SOCIAL_INSURANCE = "social_insurance"
    TAX_CODE = "tax_code"


@dataclass(frozen=True)
class RegistryDocument:
    """A document the issuing registry recorded for a person."""

    doc_type: DocumentType
    number: str = field(repr=False)
    issuer: str
    valid_from: date
    # None: valid without end (a tax code).
    valid_until: date | None


@dataclass(frozen=True)
class RegistryPerson:
    """Everything the registry holds on one person. `demographics.personal_id`
    is the ID number (the assigned one for a foreigner)."""

    demographics: Demographics
    kind: PersonKind = PersonKind.CITIZEN
    passport: Passport | None = None
    portrait: Template | None = field(default=None, repr=False)
    fingerprints: dict[Finger, Template] = field(default_factory=dict, repr=False)
    # ID numbers of the parents or guardians the registry records (children).
    guardians: tuple[str, ...] = field(default=(), repr=False)
    documents: tuple[RegistryDocument, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if (self.kind is PersonKind.FOREIGNER) != (self.passport is not None):
            raise ValueError("a foreigner has a passport, a citizen none")
