"""Verify by the citizen's approval on their device, through a real server
with two real clients: the relying party (API key) and the citizen's app
(session). Approve, decline, wrong codes, expiry, the QR variant, waiting
Verify calls woken by the decision (also one made on another server), a
cancelled wait, 16 concurrent decisions, party isolation and a stranger
who learns nothing; and a party's waits at once, capped so that it cannot
hold every call of a worker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from eid.v1 import identity_service_pb2 as pb
from eid.v1 import identity_service_pb2_grpc as pb_grpc
from eid_client import qr
from eid_client.client import EidClient
from eid_client.errors import EidError, error_from_rpc_error
from eid_client.offline import KeySet
from eid_client.receipts import verify_receipt
from eid_service.demo import demo_citizens
from eid_service.domain.citizen import Demographics
from eid_service.limits import Limits
from tests.integration.conftest import Party
from tests.integration.flows import PASSWORD, register_and_activate
from tests.integration.harness import ServerHarness
from tests.polling import until

TWO_MINUTES = timedelta(minutes=2)


@pytest.fixture
def phone(harness: ServerHarness, citizen_app: EidClient, adult: Demographics) -> EidClient:
    """The citizen's app, signed in."""
    register_and_activate(harness, citizen_app, adult)
    citizen_app.sign_in(personal_id=adult.personal_id, password=PASSWORD, device_name="Phone")
    return citizen_app


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(16) as executor:
        yield executor


def _refused(call: Callable[[], object]) -> EidError:
    with pytest.raises(EidError) as caught:
        call()
    return caught.value


def _until(condition: Callable[[], bool]) -> None:
    assert until(condition, 10), "the server never got there"


def _as(party: Party) -> tuple[tuple[str, str], ...]:
    return (("x-api-key", party.api_key),)


def _waiters(harness: ServerHarness) -> int:
    return len(harness.runtime.context.approval_wakeups)


def test_the_party_waits_while_the_citizen_approves_on_their_phone(
    harness: ServerHarness,
    bank: Party,
    phone: EidClient,
    adult: Demographics,
    pool: ThreadPoolExecutor,
) -> None:
    started = bank.client.start_approval(
        adult.personal_id, requested_scopes=["basic"], message="Sign in to Test Bank"
    )
    [shown] = phone.list_approval_requests().approval_requests
    assert (shown.approval_id, shown.party_name, shown.verification_code, shown.message) == (
        started.approval_id,
        "Test Bank",
        started.verification_code,
        "Sign in to Test Bank",
    )
    assert list(shown.attributes) == [  # the basic scope (a foreigner's nationality too)
        pb.ATTRIBUTE_FULL_NAME,
        pb.ATTRIBUTE_BIRTH_DATE,
        pb.ATTRIBUTE_GENDER,
        pb.ATTRIBUTE_NATIONALITY,
    ]
    assert started.verification_code in shown.verification_code_choices

    waiting = pool.submit(bank.client.wait_for_approval, started.approval_id, request_id="w-1")
    _until(lambda: _waiters(harness) == 1)
    decided = phone.approve(started.approval_id, started.verification_code)
    assert decided.approval_request.state == pb.APPROVAL_STATE_APPROVED

    verified = waiting.result(timeout=30)
    assert verified.verified and verified.method == pb.VERIFICATION_METHOD_APPROVAL
    assert verified.attributes.full_name == adult.full_name
    assert verified.attributes.personal_id == ""  # not asked for
    keys = KeySet.from_jwks(bank.client.get_verification_keys().jwks_json)
    claims = verify_receipt(verified.receipt, keys, audience=bank.party.id)
    assert (claims.mode, claims.subject) == ("approval", verified.subject)

    assert phone.list_approval_requests().approval_requests == []
    again = bank.client.verify_approval(started.approval_id, request_id="w-1")
    assert again == verified  # a lost answer is not lost
    used = _refused(lambda: bank.client.verify_approval(started.approval_id))
    assert (used.code, used.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "APPROVAL_ALREADY_USED",
    )
    [record] = phone.list_access_history().records
    assert (record.method, record.verified) == (pb.VERIFICATION_METHOD_APPROVAL, True)
    assert _waiters(harness) == 0


def test_declined_wrong_codes_and_expired_are_told_apart(
    harness: ServerHarness, bank: Party, phone: EidClient, adult: Demographics
) -> None:
    declined, mistyped, ignored = (bank.client.start_approval(adult.personal_id) for _ in "abc")

    phone.decline(declined.approval_id)
    no = _refused(lambda: bank.client.verify_approval(declined.approval_id, wait=5))
    assert (no.code, no.reason) == (grpc.StatusCode.PERMISSION_DENIED, "APPROVAL_DECLINED")

    bad = f"{(int(mistyped.verification_code) + 1) % 10_000:04d}"
    wrong = _refused(lambda: phone.approve(mistyped.approval_id, bad))
    assert (wrong.code, wrong.reason, wrong.metadata["attempts_left"]) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "VERIFICATION_CODE_WRONG",
        "0",
    )
    # The right code after a wrong one: too late, the request is void.
    right = _refused(lambda: phone.approve(mistyped.approval_id, mistyped.verification_code))
    assert right.reason == "APPROVAL_ALREADY_DECIDED"
    void = _refused(lambda: bank.client.verify_approval(mistyped.approval_id))
    assert (void.code, void.reason) == (grpc.StatusCode.PERMISSION_DENIED, "APPROVAL_WRONG_CODE")

    flood = _refused(lambda: bank.client.start_approval(adult.personal_id))
    assert (flood.code, flood.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_REQUESTS")

    harness.clock.advance(TWO_MINUTES)
    late = _refused(lambda: phone.approve(ignored.approval_id, ignored.verification_code))
    assert (late.code, late.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "APPROVAL_EXPIRED")
    expired = _refused(lambda: bank.client.verify_approval(ignored.approval_id, wait=5))
    assert expired.reason == "APPROVAL_EXPIRED"
    outcomes = {r.verified for r in phone.list_access_history().records}
    assert outcomes == {False}


def test_one_party_cannot_keep_a_citizens_other_parties_out(
    harness: ServerHarness, bank: Party, citizen_app: EidClient, adult: Demographics
) -> None:
    """A party starts requests for a citizen as fast as its own limits let
    it for most of an hour; the citizen's bank still gets through. Before,
    one party spent the citizen's hour over all parties in 20 minutes (found
    by an attacker's pass)."""
    now = harness.clock()
    # Just past the hour: the hour windows hold the whole test.
    hour = now.replace(minute=0, second=1, microsecond=0) + timedelta(hours=1)
    harness.clock.advance(hour - now)
    register_and_activate(harness, citizen_app, adult)
    _, hostile = harness.create_party("Hostile shop")
    with grpc.insecure_channel(harness.target) as channel:
        stub = pb_grpc.IdentityServiceStub(channel)
        request = pb.StartApprovalRequest(personal_id=adult.personal_id)
        refusals = []
        for _ in range(10):  # 20 minutes
            for _ in range(3):  # its own limit: 3 per citizen every 2 minutes
                try:
                    stub.StartApproval(request, metadata=(("x-api-key", hostile),))
                except grpc.RpcError as refused:
                    refusals.append(error_from_rpc_error(refused).reason)
            harness.clock.advance(TWO_MINUTES)
    # The hostile party's own hour is spent.
    assert refusals and set(refusals) == {"TOO_MANY_REQUESTS"}
    assert bank.client.start_approval(adult.personal_id).approval_id


def test_locking_the_approval_mode_stops_prompts_already_queued(
    bank: Party, phone: EidClient, adult: Demographics
) -> None:
    """Push-bombing: a lock hides what was queued before it, refuses approving
    it, and an approval given just before the lock is not collected."""
    queued, approved = (bank.client.start_approval(adult.personal_id) for _ in "ab")
    phone.approve(approved.approval_id, approved.verification_code)
    phone.lock_verify_mode("approval")

    assert list(phone.list_approval_requests().approval_requests) == []
    no = _refused(lambda: phone.approve(queued.approval_id, queued.verification_code))
    assert (no.code, no.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "AUTH_MODE_LOCKED")
    told = _refused(lambda: bank.client.verify_approval(approved.approval_id))
    assert (told.code, told.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "AUTH_MODE_LOCKED")
    assert not any(r.verified for r in phone.list_access_history().records)


def test_the_qr_variant_is_claimed_by_the_app_that_scans_it(
    harness: ServerHarness, bank: Party, phone: EidClient, tmp_path: Path
) -> None:
    started = bank.client.start_approval(image_format="png")
    assert started.qr_token.startswith("eidapr1.") and started.qr_png.startswith(b"\x89PNG")
    image = tmp_path / "login.png"
    image.write_bytes(started.qr_png)
    [scanned] = qr.read_payloads(image)
    assert scanned == started.qr_token

    claimed = phone.claim_approval(scanned)
    assert (claimed.approval_request.approval_id, claimed.approval_request.party_name) == (
        started.approval_id,
        "Test Bank",
    )
    phone.approve(started.approval_id, started.verification_code)
    assert bank.client.verify_approval(started.approval_id).verified

    with EidClient(harness.target) as stranger:
        unknown = _refused(lambda: stranger.claim_approval(scanned, session_token="eids_x"))
    assert unknown.reason == "SESSION_INVALID"
    both = pb.StartApprovalRequest(personal_id="001190791514", image_format=pb.QR_IMAGE_FORMAT_PNG)
    with grpc.insecure_channel(harness.target) as channel, pytest.raises(grpc.RpcError) as bad:
        pb_grpc.IdentityServiceStub(channel).StartApproval(both, metadata=_as(bank))
    assert error_from_rpc_error(bad.value).reason == "IMAGE_FORMAT_NEEDS_QR"


def test_a_party_never_reads_another_partys_request_and_strangers_learn_nothing(
    harness: ServerHarness, bank: Party, phone: EidClient, adult: Demographics
) -> None:
    started = bank.client.start_approval(adult.personal_id)
    _, telco_key = harness.create_party("Telco")
    with EidClient(harness.target, api_key=telco_key) as telco:
        theirs = _refused(lambda: telco.verify_approval(started.approval_id))
        unknown = _refused(lambda: telco.verify_approval("apr_" + "0" * 24))
        # A stranger's requests: for an ID number nobody registered, answered alike.
        nobody = telco.start_approval("079080123456")
        somebody = telco.start_approval(adult.personal_id)
    assert (theirs.code, theirs.reason, theirs.message) == (
        unknown.code,
        unknown.reason,
        unknown.message,
    )
    assert theirs.code == grpc.StatusCode.NOT_FOUND
    assert [f.name for f, _ in nobody.ListFields()] == [f.name for f, _ in somebody.ListFields()]
    assert len(nobody.verification_code) == len(somebody.verification_code) == 4
    listed = {r.approval_id for r in phone.iter_approval_requests()}
    assert listed == {started.approval_id, somebody.approval_id}

    pending = _refused(lambda: bank.client.verify_approval(started.approval_id))
    assert (pending.code, pending.reason) == (grpc.StatusCode.UNAVAILABLE, "APPROVAL_PENDING")
    # No max_wait: the server answers before the call's own deadline. 2.5 s,
    # so that it keeps its whole 0.5 s margin for the answer (of a 0.5 s
    # deadline it kept 0.1 s, which a noisy machine can overrun).
    request = pb.VerifyRequest(approval=pb.ApprovalCredential(approval_id=started.approval_id))
    with grpc.insecure_channel(harness.target) as channel:
        stub = pb_grpc.IdentityServiceStub(channel)
        with pytest.raises(grpc.RpcError) as short:
            stub.Verify(request, timeout=2.5, metadata=_as(bank))
    answered = error_from_rpc_error(short.value)
    assert (answered.code, answered.reason) == (grpc.StatusCode.UNAVAILABLE, "APPROVAL_PENDING")


def test_a_cancelled_wait_leaves_nothing_behind(
    harness: ServerHarness, bank: Party, phone: EidClient, adult: Demographics
) -> None:
    started = bank.client.start_approval(adult.personal_id)
    request = pb.VerifyRequest(approval=pb.ApprovalCredential(approval_id=started.approval_id))
    with grpc.insecure_channel(harness.target) as channel:
        stub = pb_grpc.IdentityServiceStub(channel)
        call = stub.Verify.future(request, timeout=60, metadata=_as(bank))
        _until(lambda: _waiters(harness) == 1)
        call.cancel()  # type: ignore[no-untyped-call]  # untyped in grpc-stubs
        _until(lambda: _waiters(harness) == 0)
    phone.approve(started.approval_id, started.verification_code)
    assert bank.client.verify_approval(started.approval_id).verified


def test_sixteen_concurrent_decisions_have_one_outcome(
    harness: ServerHarness,
    bank: Party,
    phone: EidClient,
    adult: Demographics,
    pool: ThreadPoolExecutor,
) -> None:
    started = bank.client.start_approval(adult.personal_id)

    def approve() -> str:
        try:
            phone.approve(started.approval_id, started.verification_code)
        except EidError as e:
            return e.reason or e.code.name
        return "ok"

    outcomes = list(pool.map(lambda _: approve(), range(16)))
    assert outcomes.count("ok") == 1
    assert set(outcomes) == {"ok", "APPROVAL_ALREADY_DECIDED"}
    rows = harness.rows("SELECT action FROM audit_events WHERE action LIKE 'approval.%'")
    assert sorted(r[0] for r in rows) == ["approval.approved", "approval.started"]

    again = bank.client.start_approval(adult.personal_id)
    same = list(pool.map(lambda _: phone.decline(again.approval_id, request_id="d-1"), range(16)))
    assert all(s == same[0] for s in same)
    assert same[0].approval_request.state == pb.APPROVAL_STATE_DECLINED


def test_a_decision_made_on_another_server_wakes_the_wait(
    harness: ServerHarness,
    bank: Party,
    phone: EidClient,
    adult: Demographics,
    pool: ThreadPoolExecutor,
) -> None:
    """Another process shares only the database: the wait sees the decision
    by polling, with no in-process wake-up."""
    other = ServerHarness(harness.database_url, key_ring=harness.key_ring).start()
    try:
        started = bank.client.start_approval(adult.personal_id)
        waiting = pool.submit(bank.client.wait_for_approval, started.approval_id)
        _until(lambda: _waiters(harness) == 1)
        with EidClient(other.target, session_token=phone.session_token) as app_elsewhere:
            app_elsewhere.approve(started.approval_id, started.verification_code)
        assert waiting.result(timeout=30).verified
    finally:
        other.stop()


def _wait_call(
    stub: pb_grpc.IdentityServiceStub, key: str, approval_id: str, timeout: float = 30
) -> grpc.Future[pb.VerifyResponse]:
    """A Verify waiting up to 20 s for the decision, not yet answered."""
    wait = pb.ApprovalCredential(approval_id=approval_id, max_wait=Duration(seconds=20))
    return stub.Verify.future(
        pb.VerifyRequest(approval=wait), metadata=(("x-api-key", key),), timeout=timeout
    )


def _outcome(call: grpc.Future[pb.VerifyResponse]) -> tuple[grpc.StatusCode, str | None]:
    error = call.exception()
    assert isinstance(error, grpc.RpcError), error
    refused = error_from_rpc_error(error)
    return refused.code, refused.reason


def _waits_held(harness: ServerHarness) -> int:
    return len(harness.runtime.context.approval_waits)


def test_one_party_cannot_hold_every_call_slot_with_approval_waits(
    start_server: Callable[[Limits], ServerHarness],
) -> None:
    """Found by an attacker's pass: a party allowed 2 calls a minute held all
    8 calls of a worker with 8 waits on one request of its own, and another
    party's Verify was refused SERVER_BUSY."""
    harness = start_server(Limits(max_concurrent_rpcs=8))
    citizen = next(c for c in demo_citizens() if c.birth_date.year < 2000)
    _, hostile = harness.create_party("Hostile", rate=2, citizen_rate=2)
    _, bank = harness.create_party("Bank")
    with EidClient(harness.target) as app:
        register_and_activate(harness, app, citizen)
    options = [("grpc.use_local_subchannel_pool", 1)]
    with (
        grpc.insecure_channel(harness.target, options=options) as attacker_channel,
        grpc.insecure_channel(harness.target, options=options) as bank_channel,
    ):
        attacker = pb_grpc.IdentityServiceStub(attacker_channel)
        started = attacker.StartApproval(
            pb.StartApprovalRequest(personal_id=citizen.personal_id),
            metadata=(("x-api-key", hostile),),
        )
        waits = [_wait_call(attacker, hostile, started.approval_id) for _ in range(8)]
        until(lambda: sum(w.done() for w in waits) == 7, 5)  # refused at once
        claim = pb.DemographicCredential(
            personal_id=citizen.personal_id, full_name=citizen.full_name
        )
        try:
            answer = pb_grpc.IdentityServiceStub(bank_channel).Verify(
                pb.VerifyRequest(demographic=claim), metadata=(("x-api-key", bank),), timeout=5
            )
            refused = [_outcome(w) for w in waits if w.done()]
        finally:
            for w in waits:
                w.cancel()
    assert answer.verified
    # A tenth of 8 calls is less than one: a party waits in one at a time here.
    assert refused == [(grpc.StatusCode.RESOURCE_EXHAUSTED, "APPROVAL_WAITS_EXCEEDED")] * 7


def test_a_wait_gives_its_place_back_when_cancelled_or_out_of_time(
    start_server: Callable[[Limits], ServerHarness],
) -> None:
    """The party's one place (8 calls at once): refused while a wait holds
    it, free again once that wait is cancelled or its deadline comes."""
    harness = start_server(Limits(max_concurrent_rpcs=8))  # one wait a party
    _, key = harness.create_party("Bank")
    with (
        EidClient(harness.target, api_key=key) as bank,
        grpc.insecure_channel(harness.target) as channel,
    ):
        stub = pb_grpc.IdentityServiceStub(channel)
        approval_id = bank.start_approval().approval_id  # QR: nobody scans it
        held = _wait_call(stub, key, approval_id)
        _until(lambda: _waits_held(harness) == 1)
        over = _refused(lambda: bank.verify_approval(approval_id, wait=20))
        assert (over.code, over.reason) == (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "APPROVAL_WAITS_EXCEEDED",
        )
        assert over.metadata["max_waits"] == "1" and over.retry_delay is not None

        held.cancel()
        _until(lambda: _waits_held(harness) == 0)
        # Its deadline comes mid-wait: answered pending just before it (or,
        # on a slow machine, cut by it), the wait gives its place back.
        short = _wait_call(stub, key, approval_id, timeout=1.0)
        _until(lambda: _waits_held(harness) == 1)
        assert _outcome(short) in (
            (grpc.StatusCode.UNAVAILABLE, "APPROVAL_PENDING"),
            (grpc.StatusCode.DEADLINE_EXCEEDED, None),
        )
        _until(lambda: _waits_held(harness) == 0)
        held = _wait_call(stub, key, approval_id)
        _until(lambda: _waits_held(harness) == 1)
        held.cancel()
    _until(lambda: _waits_held(harness) == 0)
