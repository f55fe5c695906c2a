"""Register at level 1 against the fake store: the portrait check and the
foreigner's path (passport in, assigned number out)."""

from __future__ import annotations

from dataclasses import astuple, replace
from typing import Any

import pytest

from eid_service.demo import demo_foreigners, portrait_capture
from eid_service.domain import portrait as portrait_module
from eid_service.domain.account import AccountState
from eid_service.domain.biometrics import Template, cosine_similarity
from eid_service.domain.errors import InvalidInput, PreconditionFailed
from eid_service.domain.portrait import PortraitPolicy
from eid_service.domain.registry_person import RegistryPerson
from eid_service.domain.share import Attribute
from eid_service.use_cases.register import (
    PassportDeclaration,
    RegisterCommand,
    Registered,
    register,
)
from tests.unit.use_case_kit import LAN, MINH, STRANGER, World, as_seen, refused

KIM = demo_foreigners()[0]
KIM_ID = KIM.demographics.personal_id


def _stored(world: World) -> tuple[int, int, int]:
    s = world.uow.state
    return len(s.accounts), len(s.codes), len(s.outbox)


def kim_command(**changes: Any) -> RegisterCommand:
    d, p = KIM.demographics, KIM.passport
    assert p is not None
    declared = PassportDeclaration(p.number, p.nationality, p.issue_date.isoformat(), p.issue_place)
    edits = changes.pop("passport", {})
    passport = None if edits is None else replace(declared, **edits)
    cmd = RegisterCommand(
        personal_id="",
        full_name=d.full_name,
        birth_date=d.birth_date.isoformat(),
        gender=d.gender,
        phone_number="0912000111",
        email="",
        portrait=portrait_capture(KIM_ID),
        passport=passport,
    )
    return replace(cmd, **changes)


async def run(world: World, cmd: RegisterCommand) -> Registered:
    reply = world.reply(Registered, "register", astuple(cmd), "")
    return await register(world.uow, world.ctx, cmd, reply)


@pytest.fixture
def with_kim(world: World) -> World:
    world.uow.run_now(lambda r: r.registry.put_person(KIM))
    return world


# ---- the portrait --------------------------------------------------------------


async def test_the_threshold_is_inclusive_from_the_context(world: World) -> None:
    world.ctx = replace(world.ctx, portrait_policy=PortraitPolicy(0.75))
    below = await refused(world.register(LAN, portrait=portrait_capture(LAN.personal_id, 0.749)))
    assert isinstance(below, PreconditionFailed) and below.reason == "REGISTRY_MISMATCH"
    assert _stored(world) == (0, 0, 0)
    done = await world.register(LAN, portrait=portrait_capture(LAN.personal_id, 0.751))
    assert done.account.state is AccountState.PENDING


async def test_missing_and_malformed_portraits_are_refused_before_any_transaction(
    world: World,
) -> None:
    missing = await refused(world.register(LAN, portrait=b""))
    assert isinstance(missing, InvalidInput) and missing.reason == "PORTRAIT_REQUIRED"
    assert [v.field for v in missing.violations] == ["portrait"]
    short = await refused(world.register(LAN, portrait=b"\x01" * 100))
    assert isinstance(short, InvalidInput) and short.reason == "BIOMETRIC_TEMPLATE_INVALID"
    both = await refused(world.register(LAN, portrait=b"", phone_number="12345"))
    assert isinstance(both, InvalidInput) and both.reason == "INVALID_FIELDS"
    assert {v.field for v in both.violations} == {"portrait", "phone_number"}
    assert world.uow.transactions == 0


async def test_nobody_enrolled_means_no_level_1_registration(world: World) -> None:
    world.uow.run_now(lambda r: r.registry.put_person(RegistryPerson(STRANGER.demographics)))
    error = await refused(world.register(STRANGER))
    assert error.reason == "REGISTRY_MISMATCH"
    assert _stored(world) == (0, 0, 0)


async def test_every_failed_match_is_told_the_same(world: World, with_kim: World) -> None:
    answers = [
        await refused(world.register(LAN, portrait=portrait_capture(MINH.personal_id))),
        await refused(world.register(LAN, full_name="Nguyễn Thị Lâm")),
        await refused(world.register(STRANGER)),
        await refused(run(world, kim_command(passport={"issue_place": "Busan"}))),
        await refused(run(world, kim_command(portrait=portrait_capture(LAN.personal_id)))),
    ]
    assert all(as_seen(a) == as_seen(answers[0]) for a in answers)
    assert answers[0].reason == "REGISTRY_MISMATCH"
    assert _stored(world) == (0, 0, 0)


async def test_the_portrait_is_compared_whatever_else_failed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same work for each outcome: no timing tells a stranger from a
    wrong face or a wrong name."""
    compared: list[int] = []

    def counted(a: Template, b: Template) -> float:
        compared.append(1)
        return cosine_similarity(a, b)

    monkeypatch.setattr(portrait_module, "cosine_similarity", counted)
    await refused(world.register(STRANGER))
    await refused(world.register(LAN, full_name="Nguyễn Thị Lâm"))
    await refused(world.register(LAN, portrait=portrait_capture(MINH.personal_id)))
    await world.register(LAN)
    assert len(compared) == 4


# ---- foreigners ------------------------------------------------------------------


async def test_a_foreigner_is_found_by_passport_and_keyed_by_the_assigned_number(
    with_kim: World,
) -> None:
    world = with_kim
    done = await run(world, kim_command(passport={"number": " m12345678 "}))
    account = done.account
    assert account.demographics.personal_id == KIM_ID
    assert account.nationality == "KOR"
    stored = world.uow.run_now(lambda r: r.accounts.find_by_personal_id(KIM_ID))
    assert stored is not None and stored.id == account.id
    view = world.uow.run_now(lambda r: r.accounts.view(account.id, frozenset(Attribute)))
    assert view is not None and view.values[Attribute.NATIONALITY] == "KOR"
    # The code goes to the phone; activation and sign-in use the assigned number.
    await world.activate(
        replace(LAN, demographics=KIM.demographics, phone="0912000111"),
    )
    signed_in = await world.sign_in(KIM_ID)
    assert signed_in.account.id == account.id


async def test_a_citizen_has_no_nationality_to_release(world: World) -> None:
    done = await world.register(LAN)
    assert done.account.nationality is None
    view = world.uow.run_now(lambda r: r.accounts.view(done.account.id, frozenset(Attribute)))
    assert view is not None and Attribute.NATIONALITY not in view.values


@pytest.mark.parametrize(
    "changes",
    [
        {"passport": {"number": "M12345670"}},
        {"passport": {"nationality": "CHN"}},
        {"passport": {"issue_date": "2019-03-05"}},
        {"passport": {"issue_place": "Incheon"}},
        {"full_name": "Kim Min-seo"},
        {"birth_date": "1988-07-20"},
    ],
)
async def test_passport_details_must_all_match(with_kim: World, changes: dict[str, Any]) -> None:
    error = await refused(run(with_kim, kim_command(**changes)))
    assert error.reason == "REGISTRY_MISMATCH"
    assert _stored(with_kim) == (0, 0, 0)


async def test_the_assigned_number_alone_does_not_register_a_foreigner(with_kim: World) -> None:
    error = await refused(run(with_kim, kim_command(personal_id=KIM_ID, passport=None)))
    assert error.reason == "REGISTRY_MISMATCH"


async def test_an_id_number_and_a_passport_together_are_refused(with_kim: World) -> None:
    error = await refused(run(with_kim, kim_command(personal_id=LAN.personal_id)))
    assert isinstance(error, InvalidInput) and error.reason == "PERSONAL_ID_AND_PASSPORT"
    assert [v.field for v in error.violations] == ["passport"]
    assert with_kim.uow.transactions == 0


async def test_a_foreign_child_cannot_register_either(world: World) -> None:
    error = await refused(run(world, kim_command(birth_date="2020-01-01")))
    assert error.reason == "PASSPORT_ISSUE_DATE_INVALID"  # issued before the birth
    error = await refused(
        run(world, kim_command(birth_date="2020-01-01", passport={"issue_date": "2021-01-01"}))
    )
    assert error.reason == "AGE_BELOW_MINIMUM"
