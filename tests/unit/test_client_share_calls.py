"""The clients' share and key calls send the right requests and metadata, sync and async."""

from __future__ import annotations

import inspect
from typing import Any

import grpc
import pytest

from eid.v1 import identity_service_pb2 as pb
from eid_client import AsyncEidClient, EidClient
from eid_client._share_calls import AsyncShareCalls, ShareCalls
from tests.unit.test_client_calls import FakeEid

SHARED = pb.ShareViaQRResponse(share_id="shr_1", token="6BF...", mode=pb.SHARE_MODE_OFFLINE)
KEYS = pb.GetVerificationKeysResponse(issuer="eid.vn", jwks_json='{"keys": []}')


def paged_shares(total: int, page_size_default: int = 2) -> Any:
    """ListShares over ``total`` shares, page tokens being the next offset."""

    def list_shares(request: pb.ListSharesRequest, context: grpc.ServicerContext) -> Any:
        size = request.page_size or page_size_default
        start = int(request.page_token or "0")
        end = min(start + size, total)
        shares = [pb.Share(share_id=f"shr_{i}") for i in range(start, end)]
        return pb.ListSharesResponse(shares=shares, next_page_token=str(end) if end < total else "")

    return list_shares


def test_both_share_mixins_have_the_same_methods_and_arguments() -> None:
    def public(cls: type) -> dict[str, inspect.Signature]:
        return {
            name: inspect.signature(member)
            for name, member in vars(cls).items()
            if callable(member) and not name.startswith("_")
        }

    sync, asynchronous = public(ShareCalls), public(AsyncShareCalls)
    assert sync.keys() == asynchronous.keys()
    for name, signature in sync.items():
        assert list(signature.parameters) == list(asynchronous[name].parameters), name
    assert {"share_via_qr", "iter_shares", "revoke_share", "get_verification_keys"} <= sync.keys()
    assert issubclass(EidClient, ShareCalls) and issubclass(AsyncEidClient, AsyncShareCalls)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("offline", pb.SHARE_MODE_OFFLINE),
        ("OFFLINE", pb.SHARE_MODE_OFFLINE),
        ("SHARE_MODE_ONLINE", pb.SHARE_MODE_ONLINE),
        (pb.SHARE_MODE_OFFLINE, pb.SHARE_MODE_OFFLINE),
    ],
)
def test_share_via_qr_sends_the_mode_and_multi_use(mode: str | int, expected: int) -> None:
    fake = FakeEid(ShareViaQR=SHARED)
    with fake.serve() as target, EidClient(target, session_token="access-1") as client:
        client.share_via_qr(attributes=["full_name"], mode=mode, multi_use=True)
    request = fake.only("ShareViaQR").request
    assert (request.mode, request.multi_use) == (expected, True)
    assert request.image_format == pb.QR_IMAGE_FORMAT_NONE  # the image stays opt-in


def test_share_via_qr_defaults_to_a_single_use_online_share() -> None:
    fake = FakeEid(ShareViaQR=SHARED)
    with fake.serve() as target, EidClient(target, session_token="access-1") as client:
        client.share_via_qr(attributes=["full_name"])
    request = fake.only("ShareViaQR").request
    assert (request.mode, request.multi_use) == (pb.SHARE_MODE_ONLINE, False)


@pytest.mark.parametrize("mode", ["hybrid", "", 0, 3])
def test_unknown_share_mode_is_rejected_before_calling(mode: str | int) -> None:
    fake = FakeEid(ShareViaQR=SHARED)
    with (
        fake.serve() as target,
        EidClient(target, session_token="s") as client,
        pytest.raises(ValueError, match="share mode"),
    ):
        client.share_via_qr(attributes=["full_name"], mode=mode)
    assert fake.calls == []


def test_list_shares_sends_the_page_and_the_session() -> None:
    fake = FakeEid(ListShares=paged_shares(5))
    with fake.serve() as target, EidClient(target, session_token="access-9") as client:
        page = client.list_shares(page_size=3, page_token="1")
        with pytest.raises(ValueError, match="page_size"):
            client.list_shares(page_size=-1)
    assert [s.share_id for s in page.shares] == ["shr_1", "shr_2", "shr_3"]
    assert page.next_page_token == "4"
    call = fake.only("ListShares")
    assert (call.request.page_size, call.request.page_token) == (3, "1")
    assert call.metadata["authorization"] == "Bearer access-9"


def test_iter_shares_follows_next_page_token() -> None:
    fake = FakeEid(ListShares=paged_shares(5))
    with fake.serve() as target, EidClient(target, session_token="access-9") as client:
        ids = [s.share_id for s in client.iter_shares()]
        ids_by_3 = [s.share_id for s in client.iter_shares(page_size=3, session_token="t")]
    assert ids == ids_by_3 == [f"shr_{i}" for i in range(5)]
    assert [c.request.page_token for c in fake.calls] == ["", "2", "4", "", "3"]
    assert [c.metadata["authorization"] for c in fake.calls] == ["Bearer access-9"] * 3 + [
        "Bearer t"
    ] * 2


def test_iter_shares_without_a_session_fails_at_once() -> None:
    with EidClient("127.0.0.1:1") as client, pytest.raises(ValueError, match="sign_in"):
        client.iter_shares()


def test_revoke_share_sends_an_idempotency_key_and_the_session() -> None:
    revoked = pb.RevokeShareResponse(share=pb.Share(share_id="shr_1", state=pb.SHARE_STATE_REVOKED))
    fake = FakeEid(RevokeShare=revoked)
    with fake.serve() as target, EidClient(target, session_token="access-1") as client:
        assert client.revoke_share("shr_1").share.state == pb.SHARE_STATE_REVOKED
        client.revoke_share("shr_1", request_id="rv-1", session_token="other")
        with pytest.raises(ValueError, match="share_id"):
            client.revoke_share("")
    auto, given = fake.calls
    assert (auto.request.share_id, len(auto.request.request_id)) == ("shr_1", 36)
    assert auto.metadata["authorization"] == "Bearer access-1"
    assert (given.request.request_id, given.metadata["authorization"]) == ("rv-1", "Bearer other")


def test_a_guardian_names_the_dependant_whose_shares_to_list_or_withdraw() -> None:
    fake = FakeEid(
        ListShares=paged_shares(3),
        RevokeShare=pb.RevokeShareResponse(share=pb.Share(share_id="shr_1")),
    )
    child = "acc_4a1f0c2e9b7d4e6f8a3c5b1d2e"
    with fake.serve() as target, EidClient(target, session_token="access-1") as client:
        ids = [s.share_id for s in client.iter_shares(page_size=2, dependant_account_id=child)]
        client.revoke_share("shr_1", dependant_account_id=child)
        client.list_shares()
    assert ids == ["shr_0", "shr_1", "shr_2"]
    named = [c.request.dependant_account_id for c in fake.calls]
    assert named == [child, child, child, ""]


def test_get_verification_keys_sends_no_credentials() -> None:
    fake = FakeEid(GetVerificationKeys=KEYS)
    with (
        fake.serve() as target,
        EidClient(target, api_key="rp", session_token="s") as client,
    ):
        assert client.get_verification_keys().issuer == "eid.vn"
    metadata = fake.only("GetVerificationKeys").metadata
    assert not {"authorization", "x-api-key", "x-officer-key"} & metadata.keys()


async def test_async_share_calls() -> None:
    revoked = pb.RevokeShareResponse(share=pb.Share(share_id="shr_1", state=pb.SHARE_STATE_REVOKED))
    fake = FakeEid(
        ShareViaQR=SHARED, ListShares=paged_shares(3), RevokeShare=revoked, GetVerificationKeys=KEYS
    )
    with fake.serve() as target:
        async with AsyncEidClient(target, session_token="access-1") as client:
            issued = await client.share_via_qr(attributes=["birth_date"], mode="offline")
            ids = [s.share_id async for s in client.iter_shares()]
            await client.revoke_share(issued.share_id, request_id="rv-1")
            child = "acc_4a1f0c2e9b7d4e6f8a3c5b1d2e"
            async for _ in client.iter_shares(page_size=3, dependant_account_id=child):
                pass
            await client.revoke_share("shr_2", dependant_account_id=child)
            keys = await client.get_verification_keys()
        async with AsyncEidClient(target) as anonymous:
            with pytest.raises(ValueError, match="sign_in"):
                anonymous.iter_shares()  # fails at once, not at the first __anext__()
    assert ids == ["shr_0", "shr_1", "shr_2"]
    assert keys.issuer == "eid.vn"
    assert fake.only("ShareViaQR").request.mode == pb.SHARE_MODE_OFFLINE
    revoke, for_child = [c for c in fake.calls if c.method == "RevokeShare"]
    assert (revoke.request.share_id, revoke.request.request_id) == ("shr_1", "rv-1")
    assert (for_child.request.share_id, for_child.request.dependant_account_id) == ("shr_2", child)
    listed = [c.request.dependant_account_id for c in fake.calls if c.method == "ListShares"]
    assert listed == ["", "", child]
    assert revoke.metadata["authorization"] == "Bearer access-1"
