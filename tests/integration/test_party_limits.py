"""Relying parties' rate limits through a real server: RESOURCE_EXHAUSTED
with RetryInfo, a party over its limit does not hold back another, a probed
citizen does not block the party's other citizens, one statement a call for
both buckets and none once a party is known to be over; and the audit entry
of a call carries its reason, request id and the caller's trace id."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import grpc
import pytest

from eid.v1 import identity_service_pb2 as pb
from eid.v1 import identity_service_pb2_grpc as pb_grpc
from eid_client.client import EidClient
from eid_client.errors import EidError, error_from_rpc_error
from eid_service.domain.citizen import Demographics
from eid_service.use_cases import parties
from eid_service.use_cases.party_cache import TTL_SECONDS
from tests.integration.conftest import Party
from tests.integration.flows import PASSWORD, register_and_activate
from tests.integration.harness import ServerHarness
from tests.polling import until

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture
def stub(harness: ServerHarness) -> Iterator[pb_grpc.IdentityServiceStub]:
    with grpc.insecure_channel(harness.target) as channel:
        yield pb_grpc.IdentityServiceStub(channel)


def _claim(
    stub: pb_grpc.IdentityServiceStub,
    key: str,
    citizen: Demographics,
    *,
    request_id: str = "",
    traceparent: str | None = None,
) -> pb.VerifyResponse | EidError:
    """A demographic Verify: no account needed (an ID number without one
    answers "no match"), so it is the cheapest call that touches a citizen."""
    request = pb.VerifyRequest(
        request_id=request_id,
        demographic=pb.DemographicCredential(
            personal_id=citizen.personal_id, full_name=citizen.full_name
        ),
    )
    metadata: tuple[tuple[str, str | bytes], ...] = (("x-api-key", key),)
    if traceparent is not None:
        metadata += (("traceparent", traceparent),)
    try:
        answer: pb.VerifyResponse = stub.Verify(request, metadata=metadata)
    except grpc.RpcError as e:
        return error_from_rpc_error(e)
    return answer


def _refusal(answer: pb.VerifyResponse | EidError) -> tuple[grpc.StatusCode, str | None]:
    assert isinstance(answer, EidError), answer
    return answer.code, answer.reason


def test_a_party_over_its_limit_is_told_when_to_retry_and_others_are_served(
    harness: ServerHarness, stub: pb_grpc.IdentityServiceStub, adults: list[Demographics]
) -> None:
    busy = harness.create_party("Busy", rate=3, citizen_rate=3)[1]
    other = harness.create_party("Other", rate=3, citizen_rate=3)[1]
    for citizen in adults[:3]:
        assert isinstance(_claim(stub, busy, citizen), pb.VerifyResponse)

    over = _claim(stub, busy, adults[3])
    assert _refusal(over) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "PARTY_RATE_LIMITED")
    assert isinstance(over, EidError) and over.retry_delay is not None
    # 3 a minute: the next token is 20 seconds after the first take, less
    # the moments the calls took; RetryInfo carries the fraction.
    assert timedelta(seconds=15) < over.retry_delay <= timedelta(seconds=20)
    assert over.retry_delay.microseconds != 0
    assert float(over.metadata["retry_after_seconds"]) == over.retry_delay.total_seconds()
    assert isinstance(_claim(stub, other, adults[3]), pb.VerifyResponse)

    harness.clock.advance(over.retry_delay)
    assert isinstance(_claim(stub, busy, adults[3]), pb.VerifyResponse)
    assert _refusal(_claim(stub, busy, adults[4]))[1] == "PARTY_RATE_LIMITED"


def test_a_probed_citizen_does_not_block_the_party_s_other_citizens(
    harness: ServerHarness, stub: pb_grpc.IdentityServiceStub, adults: list[Demographics]
) -> None:
    key = harness.create_party("Prober", rate=100, citizen_rate=2)[1]
    probed, other = adults[0], adults[1]
    _claim(stub, key, probed)
    _claim(stub, key, probed)

    refused = _claim(stub, key, probed)
    assert _refusal(refused) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "PARTY_CITIZEN_RATE_LIMITED")
    assert isinstance(refused, EidError) and refused.retry_delay is not None
    assert timedelta(seconds=25) < refused.retry_delay <= timedelta(seconds=30)
    assert isinstance(_claim(stub, key, other), pb.VerifyResponse)


def test_both_buckets_cost_one_statement_and_a_known_refusal_none(
    harness: ServerHarness, stub: pb_grpc.IdentityServiceStub, adults: list[Demographics]
) -> None:
    key = harness.create_party("Counted", rate=2, citizen_rate=2)[1]
    _claim(stub, key, adults[0])  # warm: signing keys and the party are cached
    seen: list[str] = []
    observe = harness.runtime.uow.observe
    harness.runtime.uow.observe = seen.append
    try:
        assert isinstance(_claim(stub, key, adults[0]), pb.VerifyResponse)
    finally:
        harness.runtime.uow.observe = observe
    # (The server's purge, which may run meanwhile, deletes; takes insert.)
    assert len([s for s in seen if s.startswith("INSERT INTO token_buckets")]) == 1

    assert _refusal(_claim(stub, key, adults[1]))[1] == "PARTY_RATE_LIMITED"
    seen.clear()
    harness.runtime.uow.observe = seen.append
    try:
        again = _claim(stub, key, adults[1], request_id="again")
    finally:
        harness.runtime.uow.observe = observe
    assert _refusal(again)[1] == "PARTY_RATE_LIMITED"
    # Refused by this process from memory: no statement of the call's (the
    # server's purge and delivery loops may run meanwhile).
    tables = ("token_buckets", "accounts", "audit_", "idempotency", "signing_keys")
    assert [s for s in seen if any(t in s for t in tables) and not s.startswith("DELETE")] == []


def test_the_audit_entry_keeps_reason_request_id_and_trace_id_and_no_personal_data(
    harness: ServerHarness, stub: pb_grpc.IdentityServiceStub, adults: list[Demographics]
) -> None:
    key = harness.create_party("Traced")[1]
    citizen = adults[0]
    _claim(stub, key, citizen, request_id="req-7", traceparent=TRACEPARENT)
    _claim(stub, key, citizen, request_id="req-8", traceparent="00-garbage-01")

    rows = harness.rows(
        "SELECT outcome, reason, request_id, trace_id FROM audit_events"
        " WHERE action = 'verify.demographic' ORDER BY created_at"
    )
    assert rows == [
        ("rejected", "ACCOUNT_NOT_ACTIVE", "req-7", TRACE_ID),
        ("rejected", "ACCOUNT_NOT_ACTIVE", "req-8", None),
    ]
    stored = " ".join(str(v) for row in harness.rows("SELECT * FROM audit_events") for v in row)
    assert citizen.personal_id not in stored and citizen.full_name not in stored


def test_changed_limits_are_counted_once_the_party_cache_lapses(
    harness: ServerHarness, stub: pb_grpc.IdentityServiceStub, adults: list[Demographics]
) -> None:
    party, key = harness.create_party("Growing", rate=2, citizen_rate=2)
    _claim(stub, key, adults[0])
    _claim(stub, key, adults[1])
    assert _refusal(_claim(stub, key, adults[2]))[1] == "PARTY_RATE_LIMITED"

    harness.run(parties.set_party_limits(harness.runtime.uow, party.id, 600, None))
    # Within the cache TTL the server still counts by the party it remembers.
    assert _refusal(_claim(stub, key, adults[2]))[1] == "PARTY_RATE_LIMITED"
    harness.clock.advance(timedelta(seconds=TTL_SECONDS + 1))
    # 11 seconds at 600 a minute refilled 110 tokens (a bucket holds up to 600).
    for citizen in adults[2:8]:
        assert isinstance(_claim(stub, key, citizen), pb.VerifyResponse)


def test_redemptions_and_claims_about_one_citizen_at_once_never_deadlock(
    harness: ServerHarness,
    stub: pb_grpc.IdentityServiceStub,
    citizen_app: EidClient,
    adult: Demographics,
    bank: Party,
) -> None:
    """Every Verify takes the party's buckets before the citizen's audit
    chain. A redemption took them the other way round, so on PostgreSQL one
    party's redemptions and claims about one citizen deadlocked (found by an
    attacker's pass: 21 of 48 calls STORE_BUSY, each after the server's 1 s
    deadlock timeout, holding one of its four writer threads meanwhile)."""
    register_and_activate(harness, citizen_app, adult)
    citizen_app.sign_in(personal_id=adult.personal_id, password=PASSWORD)
    token = citizen_app.share_via_qr(attributes=["full_name"], multi_use=True).token
    redeem = pb.VerifyRequest(qr_share=pb.QrShareCredential(token=token))
    metadata = (("x-api-key", bank.api_key),)

    def call(i: int) -> pb.VerifyResponse | EidError:
        if i % 2:
            return _claim(stub, bank.api_key, adult)
        try:
            answer: pb.VerifyResponse = stub.Verify(redeem, metadata=metadata)
        except grpc.RpcError as e:
            return error_from_rpc_error(e)
        return answer

    def deadlocks() -> int:
        if not harness.database_url.startswith("postgresql"):
            return 0
        query = "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
        return int(harness.rows(query)[0][0])

    before = deadlocks()
    with ThreadPoolExecutor(16) as pool:
        answers = [a for _ in range(3) for a in pool.map(call, range(16))]
    failed = [(a.code, a.reason) for a in answers if isinstance(a, EidError)]
    assert failed == []
    assert all(a.verified for a in answers if isinstance(a, pb.VerifyResponse))
    # None was resolved out of sight either (PostgreSQL counts them a moment later).
    assert not until(lambda: deadlocks() != before, 2)
