"""Biometric Verify against the fake store: a level-2 citizen's own templates
verify (with scores and the attributes the scopes allow), others do not and
cost the guesser; only parties holding biometric_match may ask; a level-1
account is told LEVEL_2_REQUIRED, and nothing else tells an unknown ID number
from a template that missed."""

from __future__ import annotations

from dataclasses import astuple, replace

import pytest

from eid_client.receipts import verify_receipt
from eid_service.domain.account import AccountLevel, AccountState
from eid_service.domain.biometric_match import BiometricCapture, ProbeResult
from eid_service.domain.biometrics import Finger
from eid_service.domain.credential_policy import MAX_FAILURES_PER_SOURCE
from eid_service.domain.errors import (
    InvalidInput,
    PermissionDenied,
    PreconditionFailed,
    TooManyAttempts,
)
from eid_service.domain.party import (
    MAX_RATE_PER_MINUTE,
    Grant,
    RelyingParty,
    VerifyMode,
    new_party_id,
)
from eid_service.domain.share import Attribute
from eid_service.use_cases.mode_locks import ModeLockChange, change_mode_lock
from eid_service.use_cases.officer_auth import OfficerCall
from eid_service.use_cases.registration_office import (
    CaptureInput,
    Level2Registered,
    RegisterLevel2Command,
    register_level2,
)
from eid_service.use_cases.verified import Verification
from eid_service.use_cases.verify_biometric import BiometricCommand, verify_biometric
from tests.biometric_kit import adult, at_similarity, capture_of, enrolled_person
from tests.unit.use_case_kit import MINH, Citizen, World, as_seen, refused, unknown_id

NGOC = Citizen(adult(301), "0901234568")
PERSON = enrolled_person(NGOC.demographics, seed=31)
RIGHT, LEFT = Finger.RIGHT_INDEX, Finger.LEFT_INDEX
BIOMETRIC = frozenset({Grant.BIOMETRIC_MATCH})


def _input(capture: BiometricCapture) -> CaptureInput:
    return CaptureInput(
        capture.portrait.packed,
        tuple((f.value, t.packed) for f, t in capture.fingerprints.items()),
    )


async def _level_2(world: World, *, activate: bool = True) -> None:
    """NGOC, registered at a counter (both index fingers) and activated."""
    world.uow.run_now(lambda r: r.registry.put_person(PERSON))
    _, key = world.officer()
    d = NGOC.demographics
    cmd = RegisterLevel2Command(
        d.personal_id,
        d.full_name,
        d.birth_date.isoformat(),
        d.gender,
        NGOC.phone,
        "",
        _input(capture_of(PERSON, seed=1)),
    )
    reply = world.reply(Level2Registered, "register_level2", astuple(cmd), "")
    await register_level2(world.uow, world.ctx, OfficerCall(key), cmd, reply)
    if activate:
        await world.activate(NGOC)


def _party(
    world: World, grants: frozenset[Grant] = BIOMETRIC, scopes: frozenset[Attribute] | None = None
) -> RelyingParty:
    party = RelyingParty(
        new_party_id(),
        "Counter Bank",
        frozenset(Attribute) if scopes is None else scopes,
        rate_per_minute=MAX_RATE_PER_MINUTE,
        citizen_rate_per_minute=MAX_RATE_PER_MINUTE,
        grants=grants,
    )
    world.uow.run_now(lambda r: r.parties.create(party, world.clock()))
    return party


def _probe(seed: int, finger: Finger | None = None, pid: str = "") -> BiometricCommand:
    capture = capture_of(PERSON, seed, fingers=[] if finger is None else [finger])
    return BiometricCommand(
        pid or NGOC.personal_id,
        capture.portrait.packed,
        None if finger is None else finger.value,
        b"" if finger is None else capture.fingerprints[finger].packed,
    )


async def _verify(
    world: World,
    party: RelyingParty,
    cmd: BiometricCommand,
    request_id: str = "",
    requested: frozenset[Attribute] | None = None,
) -> Verification:
    reply = world.reply(Verification, "verify", astuple(cmd), request_id)
    return await verify_biometric(world.uow, world.ctx, party, cmd, reply, requested)


def _seen(v: Verification) -> tuple[object, ...]:
    """What tells two answers apart, without the per-call id and time."""
    return astuple(replace(v, verification_id="", at=v.at.replace(year=2000)))


async def test_the_citizens_own_templates_verify_with_scores_and_a_receipt(world: World) -> None:
    await _level_2(world)
    bank = _party(world, scopes=frozenset({Attribute.FULL_NAME}))

    v = await _verify(world, bank, _probe(2, RIGHT))

    assert (v.verified, v.method, v.level) == (True, VerifyMode.BIOMETRIC, AccountLevel.LEVEL_2)
    assert v.released == {Attribute.FULL_NAME: NGOC.demographics.full_name}
    assert v.biometric is not None and v.biometric.matched
    assert 0.95 < v.biometric.portrait_score <= 1 and 0.95 < v.biometric.fingerprint_score <= 1
    claims = verify_receipt(v.receipt, (await world.keys()).verification_keys)
    assert (claims.mode, claims.level, claims.attributes) == (
        "biometric",
        "LEVEL_2",
        ("full_name",),
    )
    assert world.history(NGOC)[-1] == ("verify.biometric", "verified", bank.id)

    face_only = await _verify(world, bank, _probe(3), requested=frozenset())
    assert face_only.verified and face_only.released == {}
    assert face_only.biometric is not None and face_only.biometric.fingerprint_score == 0


@pytest.mark.parametrize(
    ("face", "finger", "verified"),
    [(0.805, 0.99, True), (0.795, 0.99, False), (0.99, 0.805, True), (0.99, 0.795, False)],
)
async def test_the_thresholds_decide_from_either_side(
    world: World, face: float, finger: float, verified: bool
) -> None:
    """Against the templates enrolled at the counter (default thresholds 0.80)."""
    await _level_2(world)
    enrolled = world.uow.state.biometrics[next(iter(world.uow.state.biometrics))][0]
    cmd = BiometricCommand(
        NGOC.personal_id,
        at_similarity(enrolled.portrait, face, seed=4).packed,
        LEFT.value,
        at_similarity(enrolled.fingerprints[LEFT], finger, seed=5).packed,
    )
    v = await _verify(world, _party(world), cmd)
    assert v.verified is verified
    if not verified:
        assert v.biometric == ProbeResult(False)  # no score below the threshold


async def test_a_finger_not_enrolled_at_the_counter_does_not_verify(world: World) -> None:
    await _level_2(world)
    v = await _verify(world, _party(world), _probe(6, Finger.RIGHT_THUMB))
    assert not v.verified


async def test_without_the_biometric_match_scope_a_party_is_refused(world: World) -> None:
    await _level_2(world)
    plain = _party(world, grants=frozenset())
    refusal = await refused(_verify(world, plain, _probe(7)))
    assert isinstance(refusal, PermissionDenied) and refusal.reason == "SCOPE_NOT_ALLOWED"
    assert "biometric_match" in refusal.message
    assert world.history(NGOC)[-1][0] != "verify.biometric"


async def test_a_level_1_account_is_told_level_2_required_and_not_counted(world: World) -> None:
    minh = await world.active(MINH)
    bank = _party(world)
    cmd = _probe(8, pid=MINH.personal_id)
    for _ in range(MAX_FAILURES_PER_SOURCE + 1):
        refusal = await refused(_verify(world, bank, cmd))
        assert isinstance(refusal, PreconditionFailed) and refusal.reason == "LEVEL_2_REQUIRED"
    assert world.history(MINH)[-1] == ("verify.biometric", "level_2_required", bank.id)
    assert world.uow.state.party_failures == {}
    assert minh.level is AccountLevel.LEVEL_1


async def test_a_level_1_citizens_lock_on_the_mode_does_not_show(world: World) -> None:
    """Level 1 answers LEVEL_2_REQUIRED, locked or not: `verified: false` for
    a locked one told the party of a lock no proof had been given for."""
    await world.active(MINH)
    bank = _party(world)
    before = await refused(_verify(world, bank, _probe(8, pid=MINH.personal_id)))
    session = await world.sign_in(MINH)
    change = ModeLockChange(VerifyMode.BIOMETRIC, False, None)
    reply = world.reply(list, "mode_lock", change, "")
    await change_mode_lock(world.uow, world.ctx, session.tokens.access_token, change, reply)
    after = await refused(_verify(world, bank, _probe(9, pid=MINH.personal_id)))
    assert (type(after), after.reason, after.message) == (
        type(before),
        "LEVEL_2_REQUIRED",
        before.message,
    )


async def test_an_unknown_id_number_looks_like_a_template_that_missed(world: World) -> None:
    await _level_2(world)
    bank = _party(world)
    stranger = enrolled_person(adult(302), seed=32)
    missed = await _verify(
        world,
        bank,
        BiometricCommand(NGOC.personal_id, capture_of(stranger, 9, fingers=[]).portrait.packed),
    )
    unknown = await _verify(world, bank, _probe(10, pid=unknown_id(42)))
    # A level-1 account that is not active says nothing more.
    await world.register(MINH)
    pending_level_1 = await _verify(world, bank, _probe(11, pid=MINH.personal_id))

    assert not missed.verified
    assert _seen(missed) == _seen(unknown) == _seen(pending_level_1)
    assert sum(world.uow.state.party_failures.values()) == 3


async def test_misses_cost_the_guesser_not_the_citizen(world: World) -> None:
    await _level_2(world)
    guesser, other = _party(world), _party(world)
    stranger = capture_of(enrolled_person(adult(303), seed=33), 12, fingers=[]).portrait.packed
    miss = BiometricCommand(NGOC.personal_id, stranger)
    for _ in range(MAX_FAILURES_PER_SOURCE):
        assert not (await _verify(world, guesser, miss)).verified
    slowed = await refused(_verify(world, guesser, _probe(13)))
    assert isinstance(slowed, TooManyAttempts) and slowed.reason == "TOO_MANY_FAILED_ATTEMPTS"
    assert int(slowed.metadata["retry_after_seconds"]) > 0
    # Another party, and the same party's passwords, are not held up.
    assert (await _verify(world, other, _probe(14))).verified
    assert (await world.verify(guesser, NGOC.personal_id, "correct horse battery staple")).verified


async def test_a_match_on_an_account_that_cannot_be_verified_is_told_why(world: World) -> None:
    await _level_2(world, activate=False)
    bank = _party(world)
    pending = await refused(_verify(world, bank, _probe(15)))
    assert pending.reason == "ACCOUNT_NOT_ACTIVE"
    await world.activate(NGOC)
    world.set_state(NGOC, AccountState.LOCKED)
    locked = await refused(_verify(world, bank, _probe(16)))
    assert locked.reason == "ACCOUNT_LOCKED"


async def test_the_citizen_can_lock_the_biometric_mode(world: World) -> None:
    await _level_2(world)
    session = await world.sign_in(NGOC)
    change = ModeLockChange(VerifyMode.BIOMETRIC, False, None)
    reply = world.reply(list, "mode_lock", change, "")
    await change_mode_lock(world.uow, world.ctx, session.tokens.access_token, change, reply)
    bank = _party(world)

    matched = await refused(_verify(world, bank, _probe(17)))
    assert isinstance(matched, PreconditionFailed) and matched.reason == "AUTH_MODE_LOCKED"
    stranger = enrolled_person(adult(304), seed=34)
    other = BiometricCommand(NGOC.personal_id, capture_of(stranger, 18, fingers=[]).portrait.packed)
    assert not (await _verify(world, bank, other)).verified


async def test_a_retry_is_answered_alike_and_counted_once(world: World) -> None:
    await _level_2(world)
    bank = _party(world)
    first = await _verify(world, bank, _probe(19), request_id="bio-1")
    again = await _verify(world, bank, _probe(19), request_id="bio-1")
    assert again == first
    assert [h for h in world.history(NGOC) if h[0] == "verify.biometric"] == [
        ("verify.biometric", "verified", bank.id)
    ]


async def test_bad_templates_are_refused_field_by_field(world: World) -> None:
    bank = _party(world)
    cmd = BiometricCommand(NGOC.personal_id, b"\x00" * 512, 0, b"\x01" * 10)
    refusal = await refused(_verify(world, bank, cmd))
    assert isinstance(refusal, InvalidInput) and refusal.reason == "INVALID_FIELDS"
    assert [(v.field, v.reason) for v in refusal.violations] == [
        ("biometric.portrait", "BIOMETRIC_TEMPLATE_INVALID"),
        ("biometric.fingerprint.finger", "FINGER_INVALID"),
        ("biometric.fingerprint.template", "BIOMETRIC_TEMPLATE_INVALID"),
    ]
    assert as_seen(refusal)[0] == "InvalidInput"
