"""Documents linked to a level-2 account: a driver's licence, a vehicle
registration, health and social insurance, a tax code, as the registry of
the issuing agency records them (domain/registry_person.py).

Only level 2 links documents, as the guidance says: the citizen "at home"
(LinkDocument) or an officer at the counter (LinkDocumentForCitizen), by
type and number. The number must be one the registry records for this
citizen; a number that does not exist and someone else's get the same
answer (DOCUMENT_NOT_FOUND), so linking is no oracle of who holds what. A
linked document keeps the registry's record as it was when linked; a
relying party sees it only under the matching documents.* scope."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

from eid_service.domain.account import AccountLevel
from eid_service.domain.errors import (
    AlreadyExists,
    InvalidInput,
    NotFound,
    PreconditionFailed,
)
from eid_service.domain.registry_person import DocumentType, RegistryDocument
from eid_service.domain.share import Attribute

# As the registries record numbers (registry_tools/records.py).
_NUMBER = re.compile(r"[A-Z0-9]{4,20}")
# What people write between the characters of a number ("29A-123.45").
_SEPARATORS = re.compile(r"[\s.\-]")

# Who linked a document, when it was not an officer (whose id it is then).
LINKED_BY_CITIZEN = "citizen"

DOCUMENT_ATTRIBUTE = {t: Attribute(t.value) for t in DocumentType}
ATTRIBUTE_DOCUMENT = {a: t for t, a in DOCUMENT_ATTRIBUTE.items()}


@dataclass(frozen=True)
class LinkedDocument:
    """A document linked to an account: the registry's record when linked."""

    doc_type: DocumentType
    number: str = field(repr=False)
    issuer: str = field(repr=False)
    valid_from: date
    # None: valid without end.
    valid_until: date | None
    linked_at: datetime
    # LINKED_BY_CITIZEN, or the id of the officer who linked it.
    linked_by: str = LINKED_BY_CITIZEN

    @property
    def attribute(self) -> Attribute:
        return DOCUMENT_ATTRIBUTE[self.doc_type]


def parse_document_type(value: DocumentType | None, field_name: str = "type") -> DocumentType:
    """The document type sent; None stands for unspecified (or unknown)."""
    if value is None:
        raise InvalidInput.of(
            field_name,
            "DOCUMENT_TYPE_UNSPECIFIED",
            "type must be DRIVING_LICENCE, VEHICLE_REGISTRATION, HEALTH_INSURANCE,"
            " SOCIAL_INSURANCE or TAX_CODE",
        )
    return value


def parse_document_number(raw: str, field_name: str = "number") -> str:
    """A document number as registries record it: capital letters and
    digits, 4 to 20 of them; case, spaces, hyphens and dots are ignored."""
    number = _SEPARATORS.sub("", raw[:64]).upper() if len(raw) <= 64 else ""
    if not _NUMBER.fullmatch(number):
        raise InvalidInput.of(
            field_name,
            "DOCUMENT_NUMBER_INVALID",
            "a document number is 4 to 20 letters and digits (spaces, hyphens and dots aside)",
        )
    return number


def require_level_2(level: AccountLevel) -> None:
    if level < AccountLevel.LEVEL_2:
        raise PreconditionFailed(
            reason="LEVEL_2_REQUIRED",
            message="only a level-2 account links documents: the citizen is registered at"
            " level 2 at a registration office first",
        )


def document_not_found() -> NotFound:
    """One answer for a number that does not exist and one held by someone else."""
    return NotFound(
        reason="DOCUMENT_NOT_FOUND",
        message="the issuing agency's registry records no such document for this citizen",
    )


def already_linked() -> AlreadyExists:
    return AlreadyExists(
        reason="DOCUMENT_ALREADY_LINKED", message="this document is linked to the account already"
    )


def linked_document_not_found() -> NotFound:
    return NotFound(
        reason="LINKED_DOCUMENT_NOT_FOUND",
        message="no document of this type and number is linked to your account",
    )


def link(
    found: RegistryDocument, today: date, now: datetime, linked_by: str = LINKED_BY_CITIZEN
) -> LinkedDocument:
    """The registry's document, linked now; an expired one is refused."""
    if found.valid_until is not None and found.valid_until < today:
        raise PreconditionFailed(
            reason="DOCUMENT_EXPIRED",
            message="the document's validity has ended: link the renewed one",
        )
    return LinkedDocument(
        doc_type=found.doc_type,
        number=found.number,
        issuer=found.issuer,
        valid_from=found.valid_from,
        valid_until=found.valid_until,
        linked_at=now,
        linked_by=linked_by,
    )
