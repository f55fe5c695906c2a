"""The clients' dependant calls send the right requests and the session, sync and async."""

from __future__ import annotations

from datetime import date
from typing import Any

import grpc
import pytest

from eid.v1 import identity_service_pb2 as pb
from eid_client import AsyncEidClient, EidClient
from tests.unit.test_client_calls import FakeEid

ACCOUNT = pb.Account(account_id="acc_1", state=pb.ACCOUNT_STATE_DEPENDANT, guardian_account_id="g")
REGISTERED = pb.RegisterDependantResponse(dependant=pb.Dependant(account=ACCOUNT))


def paged_dependants(total: int) -> Any:
    """ListDependants over ``total`` dependants, page tokens being the next offset."""

    def list_dependants(request: pb.ListDependantsRequest, context: grpc.ServicerContext) -> Any:
        start = int(request.page_token or 0)
        end = min(total, start + (request.page_size or 2))
        found = [pb.Dependant(account=pb.Account(account_id=f"acc_{i}")) for i in range(start, end)]
        return pb.ListDependantsResponse(
            dependants=found, next_page_token=str(end) if end < total else ""
        )

    return list_dependants


def test_register_dependant_sends_the_child_an_idempotency_key_and_the_session() -> None:
    fake = FakeEid(RegisterDependant=REGISTERED)
    with fake.serve() as target, EidClient(target, session_token="access-1") as client:
        answer = client.register_dependant(
            personal_id="079211000001",
            full_name="Phạm Minh Khang",
            birth_date=date(2011, 3, 10),
            gender="male",
        )
        client.register_dependant(
            personal_id="079211000001",
            full_name="Phạm Minh Khang",
            birth_date="2011-03-10",
            gender="GENDER_MALE",
            request_id="dep-1",
            session_token="other",
        )
        with pytest.raises(ValueError, match="gender"):
            client.register_dependant(
                personal_id="1", full_name="x", birth_date="2011-03-10", gender="child"
            )
    assert answer.dependant.account.guardian_account_id == "g"
    auto, given = fake.calls
    assert auto.request == pb.RegisterDependantRequest(
        request_id=auto.request.request_id,
        personal_id="079211000001",
        full_name="Phạm Minh Khang",
        birth_date="2011-03-10",
        gender=pb.GENDER_MALE,
    )
    assert len(auto.request.request_id) == 36
    assert auto.metadata["authorization"] == "Bearer access-1"
    assert (given.request.request_id, given.metadata["authorization"]) == ("dep-1", "Bearer other")


def test_list_and_iter_dependants_follow_the_pages() -> None:
    fake = FakeEid(ListDependants=paged_dependants(5))
    with fake.serve() as target, EidClient(target, session_token="access-9") as client:
        page = client.list_dependants(page_size=3, page_token="1")
        ids = [d.account.account_id for d in client.iter_dependants()]
        with pytest.raises(ValueError, match="page_size"):
            client.list_dependants(page_size=-1)
    assert [d.account.account_id for d in page.dependants] == ["acc_1", "acc_2", "acc_3"]
    assert ids == [f"acc_{i}" for i in range(5)]
    assert {c.metadata["authorization"] for c in fake.calls} == {"Bearer access-9"}
    with EidClient("127.0.0.1:1") as anonymous, pytest.raises(ValueError, match="sign_in"):
        anonymous.iter_dependants()


def test_a_guardian_names_the_dependant_in_shares_and_history() -> None:
    fake = FakeEid(
        ShareViaQR=pb.ShareViaQRResponse(share_id="shr_1"),
        ListAccessHistory=pb.ListAccessHistoryResponse(),
    )
    with fake.serve() as target, EidClient(target, session_token="access-1") as client:
        client.share_via_qr(attributes=["full_name"], dependant_account_id="acc_7")
        client.list_access_history(dependant_account_id="acc_7")
    assert fake.only("ShareViaQR").request.dependant_account_id == "acc_7"
    assert fake.only("ListAccessHistory").request.dependant_account_id == "acc_7"


async def test_async_dependant_calls() -> None:
    fake = FakeEid(RegisterDependant=REGISTERED, ListDependants=paged_dependants(3))
    with fake.serve() as target:
        async with AsyncEidClient(target, session_token="access-1") as client:
            answer = await client.register_dependant(
                personal_id="079211000001",
                full_name="Phạm Minh Khang",
                birth_date="2011-03-10",
                gender="male",
                request_id="dep-1",
            )
            ids = [d.account.account_id async for d in client.iter_dependants()]
        async with AsyncEidClient(target) as anonymous:
            with pytest.raises(ValueError, match="sign_in"):
                anonymous.iter_dependants()
    assert answer.dependant.account.account_id == "acc_1"
    assert ids == ["acc_0", "acc_1", "acc_2"]
    assert fake.only("RegisterDependant").request.request_id == "dep-1"
    assert {c.metadata["authorization"] for c in fake.calls} == {"Bearer access-1"}
