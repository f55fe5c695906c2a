"""Verify by QR share: released once, to its audience, before it expires."""

from __future__ import annotations

from datetime import timedelta

from eid_service.domain.account import AccountLevel, AccountState
from eid_service.domain.errors import InvalidInput, NotFound, PermissionDenied, PreconditionFailed
from eid_service.domain.party import VerifyMode
from eid_service.domain.share import DEFAULT_SHARE_TTL, Attribute
from eid_service.domain.share_grant import ShareGrant
from eid_service.security.keys import generate_key_ring
from eid_service.security.share_tokens import ShareClaims
from tests.unit.test_security_share_tokens import signer_of
from tests.unit.use_case_kit import LAN, World, refused

A = Attribute
SHARED: list[Attribute | None] = [A.FULL_NAME, A.GENDER, A.PERSONAL_ID]
BANK_SCOPES = frozenset({A.FULL_NAME, A.BIRTH_DATE, A.PERSONAL_ID})


def _grant(world: World, token: str) -> ShareGrant:
    share_id = world.uow.run_now(lambda r: world.keys_now(r)).read(token).share_id
    grant = world.uow.run_now(lambda r: r.shares.get(share_id))
    assert grant is not None
    return grant


def _refusals(world: World) -> list[tuple[str, str, str | None]]:
    return [e for e in world.history(LAN) if e[0] == "verify.qr_share"]


async def test_a_share_releases_what_was_shared_and_the_party_may_read(world: World) -> None:
    await world.active(LAN)
    bank = world.party("Bank", BANK_SCOPES)
    issued = await world.shared_by(LAN, SHARED)

    v = await world.redeem(bank, issued.token)

    assert (v.verified, v.method, v.level) == (True, VerifyMode.QR_SHARE, AccountLevel.LEVEL_1)
    assert v.released == {A.FULL_NAME: "Nguyễn Thị Lan", A.PERSONAL_ID: LAN.personal_id}
    assert _grant(world, issued.token).redeemed_at == world.clock()
    assert world.history(LAN)[-1] == ("verify.qr_share", "verified", bank.id)


async def test_a_share_works_once(world: World) -> None:
    await world.active(LAN)
    bank, telco = world.party("Bank"), world.party("Telco")
    issued = await world.shared_by(LAN, SHARED)
    await world.redeem(bank, issued.token)

    for party in (bank, telco):
        error = await refused(world.redeem(party, issued.token))
        assert isinstance(error, PreconditionFailed) and error.reason == "SHARE_ALREADY_REDEEMED"
    assert _refusals(world)[-2:] == [
        ("verify.qr_share", "share_already_redeemed", bank.id),
        ("verify.qr_share", "share_already_redeemed", telco.id),
    ]


async def test_a_share_for_one_party_is_refused_to_another_and_kept(world: World) -> None:
    await world.active(LAN)
    bank, telco = world.party("Bank"), world.party("Telco")
    issued = await world.shared_by(LAN, SHARED, audience=bank.id)

    error = await refused(world.redeem(telco, issued.token))

    assert isinstance(error, PermissionDenied) and error.reason == "SHARE_AUDIENCE_MISMATCH"
    assert _refusals(world)[-1] == ("verify.qr_share", "share_audience_mismatch", telco.id)
    assert _grant(world, issued.token).redeemed_at is None
    assert (await world.redeem(bank, issued.token)).verified


async def test_an_expired_token_is_refused_and_the_citizen_sees_it(world: World) -> None:
    await world.active(LAN)
    bank = world.party()
    issued = await world.shared_by(LAN, SHARED)
    world.clock.advance(DEFAULT_SHARE_TTL)

    error = await refused(world.redeem(bank, issued.token))

    assert isinstance(error, PreconditionFailed) and error.reason == "SHARE_EXPIRED"
    assert _refusals(world)[-1] == ("verify.qr_share", "share_expired", bank.id)
    assert world.uow.state.shares[issued.grant.id].redeemed_at is None


async def test_a_grant_that_expired_before_its_token_is_refused(world: World) -> None:
    account = await world.active(LAN)
    bank = world.party()
    now = world.clock()
    grant = ShareGrant(
        "shr_early", account.id, frozenset({A.FULL_NAME}), None, now, now + timedelta(minutes=1)
    )
    world.uow.run_now(lambda r: r.shares.add(grant))
    token = (await world.keys()).issue_online(
        ShareClaims("shr_early", None, now, now + timedelta(minutes=10))
    )
    world.clock.advance(timedelta(minutes=2))

    error = await refused(world.redeem(bank, token))

    assert error.reason == "SHARE_EXPIRED"
    assert _refusals(world)[-1] == ("verify.qr_share", "share_expired", bank.id)


async def test_a_retried_redemption_gets_the_same_attributes(world: World) -> None:
    await world.active(LAN)
    bank = world.party("Bank", BANK_SCOPES)
    issued = await world.shared_by(LAN, SHARED)
    first = await world.redeem(bank, issued.token, request_id="redeem-1")

    again = await world.redeem(bank, issued.token, request_id="redeem-1")

    assert again == first
    assert world.history(LAN).count(("verify.qr_share", "verified", bank.id)) == 1


async def test_a_retried_redemption_after_the_token_expired_gets_the_same_attributes(
    world: World,
) -> None:
    """The answer is kept 24 hours for retries (use_cases/verify_share.py), so a
    response lost just before the share expired can still be fetched, and
    the citizen is not told that a redeemed share was refused as expired."""
    await world.active(LAN)
    bank = world.party("Bank", BANK_SCOPES)
    issued = await world.shared_by(LAN, SHARED)
    world.clock.advance(DEFAULT_SHARE_TTL - timedelta(seconds=1))
    first = await world.redeem(bank, issued.token, request_id="redeem-1")
    world.clock.advance(timedelta(seconds=2))

    again = await world.redeem(bank, issued.token, request_id="redeem-1")

    assert again == first
    assert _refusals(world)[-1] == ("verify.qr_share", "verified", bank.id)


async def test_a_locked_account_share_is_refused_and_not_used_up(world: World) -> None:
    await world.active(LAN)
    bank = world.party()
    issued = await world.shared_by(LAN, SHARED)
    world.set_state(LAN, AccountState.LOCKED)

    error = await refused(world.redeem(bank, issued.token))

    assert isinstance(error, PreconditionFailed) and error.reason == "ACCOUNT_LOCKED"
    assert _grant(world, issued.token).redeemed_at is None
    assert _refusals(world)[-1] == ("verify.qr_share", "account_locked", bank.id)
    world.set_state(LAN, AccountState.ACTIVE)
    assert (await world.redeem(bank, issued.token)).verified


async def test_a_tampered_or_foreign_token_is_invalid_and_not_audited(world: World) -> None:
    await world.active(LAN)
    bank = world.party()
    issued = await world.shared_by(LAN, SHARED)
    flipped = "A" if issued.token[20] != "A" else "B"
    tampered = issued.token[:20] + flipped + issued.token[21:]  # inside the payload
    now = world.clock()
    foreign = signer_of(generate_key_ring()).issue(
        ShareClaims(issued.grant.id, None, now, now + DEFAULT_SHARE_TTL)
    )
    unknown = (await world.keys()).issue_online(
        ShareClaims("shr_nobody", None, now, now + DEFAULT_SHARE_TTL)
    )
    events = len(world.history(LAN))

    for token, reasons in (
        # Which check a changed character trips depends on the character.
        (tampered, {"SHARE_SIGNATURE_INVALID", "SHARE_PAYLOAD_MALFORMED"}),
        (foreign, {"SHARE_KEY_UNKNOWN"}),
        ("not a token", {"SHARE_PAYLOAD_PREFIX_UNKNOWN"}),
    ):
        error = await refused(world.redeem(bank, token))
        assert isinstance(error, InvalidInput) and error.reason in reasons
    nobody = await refused(world.redeem(bank, unknown))
    assert isinstance(nobody, NotFound) and nobody.reason == "SHARE_NOT_FOUND"

    assert len(world.history(LAN)) == events
    assert _grant(world, issued.token).redeemed_at is None
