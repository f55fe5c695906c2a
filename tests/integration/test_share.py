"""ShareViaQR and its redemption by a relying party: once, unaltered, in time."""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from eid.v1 import identity_service_pb2 as pb
from eid.v1 import identity_service_pb2_grpc as pb_grpc
from eid_client.client import EidClient
from eid_client.errors import EidError, error_from_rpc_error
from eid_service.domain.citizen import Demographics
from eid_service.domain.share import Attribute
from eid_service.security.keys import generate_key_ring
from eid_service.security.share_tokens import ShareClaims
from eid_service.use_cases.pages import next_page_token
from tests.integration.conftest import Party
from tests.integration.flows import PASSWORD, register_and_activate
from tests.integration.harness import ServerHarness
from tests.unit.test_security_share_tokens import signer_of

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def signed_in(harness: ServerHarness, citizen_app: EidClient, adult: Demographics) -> EidClient:
    register_and_activate(harness, citizen_app, adult)
    citizen_app.sign_in(personal_id=adult.personal_id, password=PASSWORD)
    return citizen_app


def share(client: EidClient, **kwargs: object) -> pb.ShareViaQRResponse:
    kwargs.setdefault("attributes", ["full_name", "birth_date"])
    return client.share_via_qr(**kwargs)  # type: ignore[arg-type]


def test_share_redeems_once_with_chosen_attributes(
    signed_in: EidClient, bank: Party, adult: Demographics
) -> None:
    issued = share(signed_in)
    assert issued.token.startswith("eid2.")
    assert issued.qr_png == b""  # no image unless asked: drawing it is the slow part
    assert issued.expire_time.seconds > 0
    result = bank.client.redeem_share(issued.token)
    assert result.verified is True
    assert result.method == pb.VERIFICATION_METHOD_QR_SHARE
    assert result.level == pb.ACCOUNT_LEVEL_1
    assert result.attributes == pb.CitizenAttributes(
        full_name=adult.full_name, birth_date=adult.birth_date.isoformat()
    )
    with pytest.raises(EidError) as caught:
        bank.client.redeem_share(issued.token)
    assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert caught.value.reason == "SHARE_ALREADY_REDEEMED"


@pytest.mark.parametrize("image", ["png", "svg"])
def test_a_qr_image_is_drawn_when_asked(signed_in: EidClient, image: str) -> None:
    issued = share(signed_in, image_format=image)
    if image == "png":
        assert issued.qr_png.startswith(PNG_SIGNATURE)
        assert issued.qr_svg == b""
    else:
        assert issued.qr_svg.startswith(b"<svg")
        assert issued.qr_png == b""


def test_concurrent_redemptions_succeed_exactly_once(signed_in: EidClient, bank: Party) -> None:
    token = share(signed_in).token

    def redeem(_: int) -> str:
        try:
            bank.client.redeem_share(token)
        except EidError as e:
            return e.reason or ""
        return "ok"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(redeem, range(8)))
    assert outcomes.count("ok") == 1
    assert set(outcomes) == {"ok", "SHARE_ALREADY_REDEEMED"}


def test_tampered_token_is_refused(signed_in: EidClient, bank: Party) -> None:
    token = share(signed_in).token
    head, payload, signature = token.split(".")
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    forged = base64.urlsafe_b64encode(decoded.replace(b'"exp":', b'"exp":9')).rstrip(b"=")
    # Another signature: the last two characters changed (1 in 256 tokens ends in "AA").
    resigned = token[:-2] + ("QA" if token.endswith("AA") else "AA")
    for bad, reason in (
        (f"{head}.{forged.decode()}.{signature}", "SHARE_SIGNATURE_INVALID"),
        (resigned, "SHARE_SIGNATURE_INVALID"),
        ("garbage", "SHARE_PAYLOAD_PREFIX_UNKNOWN"),
    ):
        with pytest.raises(EidError) as caught:
            bank.client.redeem_share(bad)
        assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert caught.value.reason == reason
    # The genuine token is still good: failed forgeries do not burn it.
    assert bank.client.redeem_share(token).verified


def test_token_signed_by_another_key_is_refused(signed_in: EidClient, bank: Party) -> None:
    issued = share(signed_in)
    now = datetime.now(UTC).replace(microsecond=0)
    foreign = signer_of(generate_key_ring()).issue(
        ShareClaims(
            share_id=issued.share_id,
            audience=None,
            issued_at=now,
            expires_at=now + timedelta(minutes=5),
        )
    )
    with pytest.raises(EidError) as caught:
        bank.client.redeem_share(foreign)
    assert caught.value.reason == "SHARE_KEY_UNKNOWN"


def test_expired_share_is_refused(
    harness: ServerHarness, signed_in: EidClient, bank: Party
) -> None:
    token = share(signed_in, ttl=timedelta(seconds=60)).token
    harness.clock.advance(timedelta(seconds=61))
    with pytest.raises(EidError) as caught:
        bank.client.redeem_share(token)
    assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert caught.value.reason == "SHARE_EXPIRED"


def test_share_bound_to_a_party_refuses_others(
    harness: ServerHarness, signed_in: EidClient, bank: Party
) -> None:
    other, other_key = harness.create_party("Other Telco")
    token = share(signed_in, audience_party_id=other.id).token
    with pytest.raises(EidError) as caught:
        bank.client.redeem_share(token)
    assert caught.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert caught.value.reason == "SHARE_AUDIENCE_MISMATCH"
    with EidClient(harness.target, api_key=other_key) as telco:
        assert telco.redeem_share(token).verified


def test_released_attributes_are_capped_by_party_scopes(
    harness: ServerHarness, signed_in: EidClient, adult: Demographics
) -> None:
    _, key = harness.create_party("Age Checker", scopes=[Attribute.BIRTH_DATE])
    token = share(signed_in, attributes=["full_name", "birth_date", "personal_id"]).token
    with EidClient(harness.target, api_key=key) as checker:
        result = checker.redeem_share(token)
    assert result.attributes == pb.CitizenAttributes(birth_date=adult.birth_date.isoformat())


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [((), "SESSION_MISSING"), ((("authorization", "Bearer eids_forged"),), "SESSION_INVALID")],
)
def test_share_needs_a_valid_session(
    harness: ServerHarness, metadata: tuple[tuple[str, str], ...], reason: str
) -> None:
    request = pb.ShareViaQRRequest(attributes=[pb.ATTRIBUTE_FULL_NAME])
    with grpc.insecure_channel(harness.target) as channel:
        stub = pb_grpc.IdentityServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.ShareViaQR(request, metadata=metadata, timeout=5)
    error = error_from_rpc_error(caught.value)
    assert error.code == grpc.StatusCode.UNAUTHENTICATED
    assert error.reason == reason


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"attributes": []}, "SHARE_ATTRIBUTES_EMPTY"),
        ({"ttl": timedelta(seconds=5)}, "SHARE_TTL_OUT_OF_RANGE"),
        ({"ttl": timedelta(days=2)}, "SHARE_TTL_OUT_OF_RANGE"),
    ],
)
def test_bad_share_requests_are_invalid(
    signed_in: EidClient, kwargs: dict[str, object], reason: str
) -> None:
    with pytest.raises(EidError) as caught:
        share(signed_in, **kwargs)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.reason == reason


def test_unknown_audience_is_not_found(signed_in: EidClient) -> None:
    with pytest.raises(EidError) as caught:
        share(signed_in, audience_party_id="rp_doesnotexist")
    assert caught.value.code == grpc.StatusCode.NOT_FOUND
    assert caught.value.reason == "AUDIENCE_PARTY_NOT_FOUND"


def test_wrong_password_sign_in_is_unauthenticated(
    harness: ServerHarness, citizen_app: EidClient, adult: Demographics
) -> None:
    register_and_activate(harness, citizen_app, adult)
    with pytest.raises(EidError) as caught:
        citizen_app.sign_in(personal_id=adult.personal_id, password="not the password")
    assert caught.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert caught.value.reason == "INVALID_CREDENTIALS"


def test_a_page_token_naming_another_citizens_share_tells_nothing(
    harness: ServerHarness, adults: list[Demographics]
) -> None:
    """A cursor is looked for among the caller's own rows: one naming another
    citizen's share lists nothing, as one naming no share does. Before, it
    listed the caller's shares older than that one, telling the caller the
    share existed and roughly when it was made (found by an attacker's pass)."""
    mine, theirs = adults[0], adults[1]
    with EidClient(harness.target) as me, EidClient(harness.target) as them:
        register_and_activate(harness, me, mine)
        register_and_activate(harness, them, theirs)
        me.sign_in(personal_id=mine.personal_id, password=PASSWORD)
        harness.clock.advance(timedelta(seconds=5))
        them.sign_in(personal_id=theirs.personal_id, password=PASSWORD)
        for _ in range(3):
            me.share_via_qr(attributes=["full_name"])
        harness.clock.advance(timedelta(seconds=5))
        their_share = them.share_via_qr(attributes=["full_name"]).share_id
        # Sessions too: theirs is newer than mine.
        their_account = harness.in_uow(lambda r: r.accounts.credential(theirs.personal_id))
        their_session = harness.rows(
            "SELECT id FROM sessions WHERE account_id = "  # noqa: S608 (an id of ours)
            f"'{their_account.account_id}'"
        )[0][0]
        nobody = next_page_token("shr_" + "0" * 32)
        assert list(me.list_shares(page_token=nobody).shares) == []
        assert list(me.list_shares(page_token=next_page_token(their_share)).shares) == []
        cursor = next_page_token(str(their_session))
        assert list(me.list_sessions(page_token=cursor).sessions) == []
