"""A citizen's access history: who verified them, how, what was released,
with the receipt the party got; newest first, in pages, theirs only.
Also the pairwise subject: stable per party, different across parties."""

from __future__ import annotations

from datetime import timedelta

import pytest

from eid_service.domain.errors import InvalidInput, Unauthenticated
from eid_service.domain.party import VerifyMode
from eid_service.domain.share import Attribute
from eid_service.use_cases.access_history import AccessPage, list_access_history
from tests.unit.use_case_kit import LAN, MINH, PASSWORD, WRONG_PASSWORD, World

A = Attribute


async def _history(world: World, token: str | None, size: int = 0, page: str = "") -> AccessPage:
    return await list_access_history(world.uow, world.ctx, token, size, page)


async def test_the_citizen_reads_who_verified_them_newest_first(world: World) -> None:
    await world.active(LAN)
    bank = world.party("Bank", frozenset({A.FULL_NAME}))
    telco = world.party("Telco", frozenset({A.GENDER}))
    first = await world.verify(bank, LAN.personal_id, PASSWORD)
    world.clock.advance(timedelta(seconds=1))
    await world.verify(telco, LAN.personal_id, WRONG_PASSWORD)
    world.clock.advance(timedelta(seconds=1))
    last = await world.verify(telco, LAN.personal_id, PASSWORD)
    session = await world.sign_in(LAN)

    page = await _history(world, session.tokens.access_token)

    rows = [(r.party_name, r.method, r.verified, r.attributes) for r in page.records]
    assert rows == [
        ("Telco", VerifyMode.PASSWORD, True, frozenset({A.GENDER})),
        ("Telco", VerifyMode.PASSWORD, False, frozenset()),
        ("Bank", VerifyMode.PASSWORD, True, frozenset({A.FULL_NAME})),
    ]
    assert page.records[0].receipt == last.receipt
    assert page.records[2].receipt == first.receipt
    assert page.records[1].receipt == ""
    assert page.next_page_token == ""


async def test_pages_cover_everything_once(world: World) -> None:
    await world.active(LAN)
    bank = world.party()
    made = []
    for _ in range(5):
        made.append((await world.verify(bank, LAN.personal_id, PASSWORD)).verification_id)
        world.clock.advance(timedelta(seconds=1))
    token = (await world.sign_in(LAN)).tokens.access_token

    seen: list[str] = []
    page = await _history(world, token, size=2)
    while True:
        seen += [r.verification_id for r in page.records]
        if not page.next_page_token:
            break
        page = await _history(world, token, size=2, page=page.next_page_token)

    assert seen == list(reversed(made))


async def test_a_citizen_sees_only_their_own_history(world: World) -> None:
    await world.active(LAN)
    await world.active(MINH)
    bank = world.party()
    await world.verify(bank, LAN.personal_id, PASSWORD)

    page = await _history(world, (await world.sign_in(MINH)).tokens.access_token)

    assert page.records == []


async def test_without_a_session_there_is_no_history(world: World) -> None:
    with pytest.raises(Unauthenticated):
        await _history(world, None)
    with pytest.raises(Unauthenticated):
        await _history(world, "eids_not-a-session")


async def test_a_forged_page_token_is_refused(world: World) -> None:
    await world.active(LAN)
    token = (await world.sign_in(LAN)).tokens.access_token
    with pytest.raises(InvalidInput) as refused:
        await _history(world, token, page="bm90LWFuLWV2ZW50")
    assert refused.value.reason == "PAGE_TOKEN_INVALID"


async def test_the_pairwise_subject_is_stable_per_party_and_differs_across_parties(
    world: World,
) -> None:
    await world.active(LAN)
    await world.active(MINH)
    bank, telco = world.party("Bank"), world.party("Telco")

    lan_bank = [(await world.verify(bank, LAN.personal_id, PASSWORD)).subject for _ in range(2)]
    lan_telco = (await world.verify(telco, LAN.personal_id, PASSWORD)).subject
    minh_bank = (await world.verify(bank, MINH.personal_id, PASSWORD)).subject

    assert lan_bank[0] == lan_bank[1]
    assert len({lan_bank[0], lan_telco, minh_bank}) == 3
    assert LAN.personal_id not in lan_bank[0]
