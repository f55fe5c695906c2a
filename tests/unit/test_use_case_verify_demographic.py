"""Verify by demographic data: per-attribute match or no match, nothing
released, and no way to tell an unknown or inactive ID number from a wrong claim."""

from __future__ import annotations

from datetime import date

import pytest

from eid_client.receipts import verify_receipt
from eid_service.domain.account import AccountState
from eid_service.domain.citizen import Gender
from eid_service.domain.demographic import (
    AttributeMatch,
    DemographicClaim,
    NameMatchStrategy,
    parse_claimed_birth_date,
)
from eid_service.domain.errors import InvalidInput
from eid_service.domain.party import RelyingParty, VerifyMode
from eid_service.use_cases.verified import Verification
from eid_service.use_cases.verify_demographic import DemographicCommand, verify_demographic
from tests.unit.use_case_kit import LAN, MINH, World, unknown_id

MATCH, NO_MATCH, NOT_CLAIMED = (
    AttributeMatch.MATCH,
    AttributeMatch.NO_MATCH,
    AttributeMatch.NOT_CLAIMED,
)


async def _verify(
    world: World, party: RelyingParty, pid: str, claim: DemographicClaim, request_id: str = ""
) -> Verification:
    cmd = DemographicCommand(pid, claim)
    reply = world.reply(Verification, "verify", (pid, claim), request_id)
    return await verify_demographic(world.uow, world.ctx, party, cmd, reply)


def _lan_claim(**changes: object) -> DemographicClaim:
    fields: dict[str, object] = {
        "full_name": "Nguyễn Thị Lan",
        "birth_date": parse_claimed_birth_date("1990-05-17"),
        "gender": Gender.FEMALE,
    }
    fields.update(changes)
    return DemographicClaim(**fields)  # type: ignore[arg-type]


async def test_a_true_claim_verifies_and_releases_nothing(world: World) -> None:
    await world.active(LAN)
    bank = world.party()

    v = await _verify(world, bank, LAN.personal_id, _lan_claim())

    assert (v.verified, v.method, v.released) == (True, VerifyMode.DEMOGRAPHIC, {})
    assert v.demographic is not None
    assert (v.demographic.name, v.demographic.birth_date, v.demographic.gender) == (
        MATCH,
        MATCH,
        MATCH,
    )
    claims = verify_receipt(v.receipt, (await world.keys()).verification_keys)
    assert (claims.mode, claims.attributes, claims.subject) == ("demographic", (), v.subject)
    assert world.history(LAN)[-1] == ("verify.demographic", "verified", bank.id)


async def test_each_attribute_gets_its_own_verdict(world: World) -> None:
    await world.active(LAN)
    bank = world.party()

    v = await _verify(
        world,
        bank,
        LAN.personal_id,
        _lan_claim(birth_date=parse_claimed_birth_date("1991"), gender=None),
    )

    assert not v.verified and v.released == {} and v.receipt == ""
    assert v.demographic is not None
    assert (v.demographic.name, v.demographic.birth_date, v.demographic.gender) == (
        MATCH,
        NO_MATCH,
        NOT_CLAIMED,
    )
    assert world.history(LAN)[-1] == ("verify.demographic", "rejected", bank.id)


async def test_a_partial_name_match_reports_its_score(world: World) -> None:
    await world.active(LAN)
    bank = world.party()
    claim = DemographicClaim(
        full_name="lan nguyen thi", name_strategy=NameMatchStrategy.PARTIAL, name_threshold=90
    )

    v = await _verify(world, bank, LAN.personal_id, claim)

    assert v.verified and v.demographic is not None
    assert (v.demographic.name, v.demographic.name_score) == (MATCH, 100)


async def test_unknown_pending_and_locked_look_like_a_wrong_claim(world: World) -> None:
    await world.active(LAN)
    await world.register(MINH)  # pending, with a true claim below
    bank = world.party()
    minh_claim = DemographicClaim(full_name="Trần Văn Minh", gender=Gender.MALE)

    wrong = await _verify(world, bank, LAN.personal_id, _lan_claim(full_name="Lê Thị Hoa"))
    unknown = await _verify(world, bank, unknown_id(7), _lan_claim(full_name="Lê Thị Hoa"))
    pending = await _verify(world, bank, MINH.personal_id, minh_claim)
    world.set_state(LAN, AccountState.LOCKED)
    locked = await _verify(world, bank, LAN.personal_id, _lan_claim())

    for v in (unknown, pending, locked):
        assert not v.verified and v.demographic is not None
        claimed = [v.demographic.name, v.demographic.birth_date, v.demographic.gender]
        assert NOT_CLAIMED in claimed or set(claimed) == {NO_MATCH}
        assert MATCH not in claimed and v.demographic.name_score == 0
    assert wrong.demographic is not None and wrong.demographic.name is NO_MATCH


async def test_bad_claims_are_refused_all_together(world: World) -> None:
    bank = world.party()
    claim = DemographicClaim(
        full_name="Lan\x00", birth_date=parse_claimed_birth_date(f"{date.today().year + 1}")
    )

    with pytest.raises(InvalidInput) as refused:
        await _verify(world, bank, "12", claim)

    fields = {v.field for v in refused.value.violations}
    assert fields == {"demographic.personal_id", "demographic.full_name", "demographic.birth_date"}


async def test_an_empty_claim_is_refused(world: World) -> None:
    bank = world.party()
    with pytest.raises(InvalidInput) as refused:
        await _verify(world, bank, LAN.personal_id, DemographicClaim())
    assert refused.value.reason == "DEMOGRAPHIC_CLAIM_EMPTY"


@pytest.mark.parametrize(
    "claim",
    [
        DemographicClaim(gender=Gender.FEMALE),
        DemographicClaim(birth_date=parse_claimed_birth_date("1990")),
        DemographicClaim(birth_date=parse_claimed_birth_date("1990"), gender=Gender.FEMALE),
    ],
    ids=["gender", "birth-year", "both"],
)
async def test_a_claim_of_only_what_the_id_number_encodes_is_refused(
    world: World, claim: DemographicClaim
) -> None:
    """Lan's number (0011 90 ...) itself says female, born 1990: such a claim
    always matched an active account and failed for a number without one, so
    one call told whether the number had an account, and a match cost no
    failure (found by an attacker's pass). Refused before any lookup, alike
    for an account and for none, with no audit entry, failure or receipt."""
    await world.active(LAN)
    bank = world.party()
    before = world.history(LAN)

    for pid in (LAN.personal_id, unknown_id(7)):
        with pytest.raises(InvalidInput) as refused:
            await _verify(world, bank, pid, claim)
        assert refused.value.reason == "DEMOGRAPHIC_CLAIM_TOO_WEAK"
        assert [(v.field, v.reason) for v in refused.value.violations] == [
            ("demographic", "DEMOGRAPHIC_CLAIM_TOO_WEAK")
        ]

    assert world.history(LAN) == before
    assert world.uow.state.receipts == {}
    assert world.uow.state.party_failures == {}


@pytest.mark.parametrize(
    "claim",
    [
        DemographicClaim(full_name="Nguyễn Thị Lan"),
        DemographicClaim(birth_date=parse_claimed_birth_date("1990-05-17")),
        _lan_claim(birth_date=parse_claimed_birth_date("1990")),
    ],
    ids=["name", "full-birth-date", "name-with-year-and-gender"],
)
async def test_a_name_or_a_full_birth_date_is_more_than_the_number_tells(
    world: World, claim: DemographicClaim
) -> None:
    await world.active(LAN)
    assert (await _verify(world, world.party(), LAN.personal_id, claim)).verified
