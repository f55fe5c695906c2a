"""Relying parties in the domain: onboarding defaults, field checks, and the
scope and mode names an operator types."""

from __future__ import annotations

from datetime import timedelta

import pytest

from eid_service.domain.errors import InvalidInput
from eid_service.domain.party import (
    DEFAULT_MODES,
    PARTY_ID_PATTERN,
    Grant,
    PartyStatus,
    RelyingParty,
    Scope,
    VerifyMode,
    check_key_overlap,
    new_party,
    parse_modes,
    parse_scopes,
    scope_names,
)
from eid_service.domain.share import DOCUMENT_ATTRIBUTES, Attribute

BASIC = frozenset(
    {Attribute.FULL_NAME, Attribute.BIRTH_DATE, Attribute.GENDER, Attribute.NATIONALITY}
)
CONTACT = frozenset({Attribute.PHONE_NUMBER, Attribute.EMAIL})
DOCUMENT_SCOPES = [
    "documents.driving_licence",
    "documents.vehicle_registration",
    "documents.health_insurance",
    "documents.social_insurance",
    "documents.tax_code",
]
BASIC_AND_ID = BASIC | {Attribute.PERSONAL_ID}


def _refusal(call: object, *args: object, **kwargs: object) -> tuple[str, str, str]:
    assert callable(call)
    with pytest.raises(InvalidInput) as caught:
        call(*args, **kwargs)
    (violation,) = caught.value.violations
    return violation.field, violation.reason, violation.description


def test_the_mode_and_scope_names_are_the_published_ones() -> None:
    assert [m.value for m in VerifyMode] == [
        "password",
        "one_time_code",
        "approval",
        "demographic",
        "qr_share",
        "biometric",
    ]
    assert [g.value for g in Grant] == ["biometric_match"]
    assert Scope.BASIC.attributes == BASIC
    assert Scope.ID_NUMBER.attributes == {Attribute.PERSONAL_ID}
    assert Scope.CONTACT.attributes == CONTACT
    assert [s.value for s in Scope] == ["basic", "id_number", "contact", *DOCUMENT_SCOPES]
    # Every attribute is in exactly one scope.
    assert sorted(a.value for s in Scope for a in s.attributes) == sorted(
        a.value for a in Attribute
    )


def test_a_new_party_is_active_with_every_mode_but_password_and_default_limits() -> None:
    party = new_party("  Demo Bank ", BASIC, contact=" it@demobank.vn ")
    assert PARTY_ID_PATTERN.fullmatch(party.id) and party.id.startswith("rp_")
    assert (party.name, party.contact, party.scopes) == ("Demo Bank", "it@demobank.vn", BASIC)
    assert party.status is PartyStatus.ACTIVE
    # Biometric Verify is allowed by the biometric_match scope, not as a mode.
    assert party.modes == DEFAULT_MODES
    assert frozenset(VerifyMode) - {VerifyMode.PASSWORD, VerifyMode.BIOMETRIC} == DEFAULT_MODES
    assert (party.rate_per_minute, party.citizen_rate_per_minute) == (600, 10)
    assert new_party("Tax", BASIC, modes=frozenset({VerifyMode.PASSWORD})).modes == {
        VerifyMode.PASSWORD
    }


def test_older_constructors_keep_working() -> None:
    party = RelyingParty("rp_1", "Bank", BASIC)
    assert party.modes == frozenset(VerifyMode)
    assert (party.status, party.contact) == (PartyStatus.ACTIVE, "")


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"name": ""}, "name", "PARTY_NAME_INVALID"),
        ({"name": "   "}, "name", "PARTY_NAME_INVALID"),
        ({"name": "x" * 201}, "name", "PARTY_NAME_INVALID"),
        ({"name": "Bank\x00"}, "name", "PARTY_NAME_INVALID"),
        ({"contact": "c" * 201}, "contact", "PARTY_CONTACT_INVALID"),
        ({"contact": "line\nbreak"}, "contact", "PARTY_CONTACT_INVALID"),
        ({"modes": frozenset()}, "modes", "MODES_EMPTY"),
        ({"rate_per_minute": 0}, "rate_per_minute", "RATE_LIMIT_INVALID"),
        ({"rate_per_minute": 100_001}, "rate_per_minute", "RATE_LIMIT_INVALID"),
        ({"citizen_rate_per_minute": 0}, "citizen_rate_per_minute", "CITIZEN_RATE_LIMIT_INVALID"),
        (
            {"rate_per_minute": 5, "citizen_rate_per_minute": 6},
            "citizen_rate_per_minute",
            "CITIZEN_RATE_LIMIT_INVALID",
        ),
    ],
)
def test_each_bad_field_is_named(changes: dict[str, object], field: str, reason: str) -> None:
    fields: dict[str, object] = {"name": "Bank", **changes}
    name = fields.pop("name")
    assert _refusal(new_party, name, BASIC, **fields)[:2] == (field, reason)


def test_the_limits_of_each_field_are_allowed() -> None:
    party = new_party(
        "Ngân hàng " + "x" * 190,
        BASIC,
        contact="c" * 200,
        rate_per_minute=100_000,
        citizen_rate_per_minute=100_000,
    )
    assert len(party.name) == 200
    assert new_party("B", BASIC, rate_per_minute=1, citizen_rate_per_minute=1).rate_per_minute == 1


def test_scopes_are_scope_names_and_attribute_names() -> None:
    assert parse_scopes("basic,id_number") == BASIC_AND_ID
    assert parse_scopes(" Basic , personal_id ") == BASIC_AND_ID
    assert parse_scopes("basic,id_number,contact") == frozenset(Attribute) - DOCUMENT_ATTRIBUTES
    assert parse_scopes("contact") == CONTACT
    assert parse_scopes("basic,email") == BASIC | {Attribute.EMAIL}
    assert parse_scopes("birth_date") == {Attribute.BIRTH_DATE}
    assert parse_scopes("basic,full_name,basic") == BASIC


@pytest.mark.parametrize(
    ("text", "reason", "named"),
    [
        ("", "SCOPES_EMPTY", "at least one"),
        (" , ", "SCOPES_EMPTY", "at least one"),
        ("basic,documents", "SCOPE_UNKNOWN", "'documents'"),
        ("documents", "SCOPE_UNKNOWN", "basic, id_number, contact"),
    ],
)
def test_a_bad_scope_list_is_explained(text: str, reason: str, named: str) -> None:
    field, got, description = _refusal(parse_scopes, text)
    assert (field, got) == ("scopes", reason)
    assert named in description
    if reason == "SCOPE_UNKNOWN":
        assert "personal_id" in description  # the attribute names are offered too


def test_scope_names_show_whole_scopes_then_loose_attributes() -> None:
    assert scope_names(frozenset(Attribute)) == ["basic", "id_number", "contact", *DOCUMENT_SCOPES]
    assert scope_names(BASIC_AND_ID) == ["basic", "id_number"]
    assert scope_names(BASIC | {Attribute.PHONE_NUMBER}) == ["basic", "phone_number"]
    assert scope_names(BASIC) == ["basic"]
    assert scope_names(frozenset({Attribute.PERSONAL_ID, Attribute.BIRTH_DATE})) == [
        "id_number",
        "birth_date",
    ]
    assert scope_names(frozenset()) == []


def test_modes_are_parsed_with_precise_errors() -> None:
    assert parse_modes("qr_share, ONE_TIME_CODE") == {VerifyMode.QR_SHARE, VerifyMode.ONE_TIME_CODE}
    assert _refusal(parse_modes, "")[:2] == ("modes", "MODES_EMPTY")
    field, reason, description = _refusal(parse_modes, "qr_share,sms")
    assert (field, reason) == ("modes", "MODE_UNKNOWN")
    assert "'sms'" in description and "one_time_code" in description


def test_a_key_overlap_is_0_to_30_days() -> None:
    assert check_key_overlap(timedelta(0)) == timedelta(0)
    assert check_key_overlap(timedelta(days=30)) == timedelta(days=30)
    for bad in (timedelta(days=30, seconds=1), timedelta(seconds=-1)):
        assert _refusal(check_key_overlap, bad)[:2] == ("overlap", "KEY_OVERLAP_INVALID")


def test_documents_are_granted_by_their_scopes_only() -> None:
    assert parse_scopes("documents.tax_code, Documents.Driving_Licence") == {
        Attribute.TAX_CODE,
        Attribute.DRIVING_LICENCE,
    }
    with pytest.raises(InvalidInput) as loose:
        parse_scopes("basic,tax_code")
    assert loose.value.reason == "SCOPE_UNKNOWN" and "documents.tax_code" in loose.value.message
    assert scope_names(BASIC | {Attribute.HEALTH_INSURANCE}) == [
        "basic",
        "documents.health_insurance",
    ]
