"""The SDK's approval calls against a fake server: what they send, how
wait_for_approval keeps one request id while the citizen has not decided,
and the arguments refused before anything is sent."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2  # type: ignore[import-untyped, unused-ignore]
from grpc_status import rpc_status

from eid.v1 import identity_service_pb2 as pb
from eid_client import AsyncEidClient, EidClient
from eid_client import _approval_requests as areq
from eid_client.errors import EidError
from tests.unit.test_client_calls import VERIFIED, FakeEid

APPROVAL_ID = "apr_0123456789abcdef01234567"


def _pending(times: int) -> Any:
    """Verify answering APPROVAL_PENDING `times` times, then verified."""
    answered = 0

    def verify(request: pb.VerifyRequest, context: grpc.ServicerContext) -> pb.VerifyResponse:
        nonlocal answered
        answered += 1
        if answered <= times:
            info = any_pb2.Any()
            info.Pack(error_details_pb2.ErrorInfo(reason="APPROVAL_PENDING", domain="eid.v1"))
            status = status_pb2.Status(
                code=code_pb2.UNAVAILABLE, message="not decided yet", details=[info]
            )
            context.abort_with_status(rpc_status.to_status(status))
        return VERIFIED

    return verify


def test_wait_for_approval_polls_with_one_request_id_until_decided() -> None:
    fake = FakeEid(Verify=_pending(2))
    with fake.serve() as target, EidClient(target, api_key="k") as party:
        verified = party.wait_for_approval(APPROVAL_ID, requested_scopes="basic", poll=0.5)
    assert verified.verified
    requests = [c.request for c in fake.calls]
    assert len(requests) == 3 and len({r.request_id for r in requests}) == 1
    for r in requests:
        assert r.approval.approval_id == APPROVAL_ID
        assert r.approval.max_wait.ToTimedelta().total_seconds() <= 0.5
        assert list(r.requested_scopes) == [pb.SCOPE_BASIC]
    assert all(c.metadata["x-api-key"] == "k" for c in fake.calls)


async def test_the_async_wait_gives_up_with_the_last_pending_answer() -> None:
    fake = FakeEid(Verify=_pending(10**6))
    with fake.serve() as target:
        async with AsyncEidClient(target, api_key="k") as party:
            with pytest.raises(EidError) as pending:
                await party.wait_for_approval(APPROVAL_ID, within=0.3, poll=0.2)
    assert pending.value.reason == "APPROVAL_PENDING"
    # The server answered at once instead of waiting: the client paused (up to
    # the RetryInfo second) rather than asking again in a tight loop.
    assert len(fake.calls) == 1


def test_a_wait_is_sent_as_max_wait() -> None:
    request = areq.approval_verify_request(
        APPROVAL_ID, wait=2.5, requested_scopes=(), request_id="r"
    )
    assert (request.approval.max_wait.seconds, request.approval.max_wait.nanos) == (2, 500_000_000)
    assert not areq.approval_verify_request(
        APPROVAL_ID, wait=None, requested_scopes=(), request_id=None
    ).approval.HasField("max_wait")


@pytest.mark.parametrize(
    ("build", "complaint"),
    [
        (
            lambda: areq.approval_verify_request("", wait=0, requested_scopes=(), request_id=None),
            "approval_id",
        ),
        (
            lambda: areq.approval_verify_request(
                APPROVAL_ID, wait=-1, requested_scopes=(), request_id=None
            ),
            "wait=",
        ),
        (
            lambda: areq.approval_verify_request(
                APPROVAL_ID, wait=float("nan"), requested_scopes=(), request_id=None
            ),
            "wait=",
        ),
        (
            lambda: areq.approval_verify_request(
                APPROVAL_ID, wait=121, requested_scopes=(), request_id=None
            ),
            "wait=",
        ),
        (
            lambda: areq.decide_approval_request(
                APPROVAL_ID, approve=True, verification_code="", request_id=None
            ),
            "verification_code=",
        ),
        (lambda: areq.claim_approval_request("", None), "token"),
        (lambda: areq.list_approval_requests_request(-1, ""), "page_size"),
        (
            lambda: areq.start_approval_request(
                personal_id="001190791514",
                requested_scopes=(),
                message="",
                image_format="png",
                request_id=None,
            ),
            "personal_id",
        ),
    ],
)
def test_arguments_refused_before_sending(build: Any, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        build()


def test_declining_sends_no_code() -> None:
    request = areq.decide_approval_request(
        APPROVAL_ID, approve=False, verification_code="1234", request_id="d"
    )
    assert (request.decision, request.verification_code) == (pb.APPROVAL_DECISION_DECLINE, "")
