"""The limits of limits.py, each under the abuse it is for, against a real
server, with a legitimate client served meanwhile: half-open streams,
streams per connection, request sizes per method, calls at once per worker,
the deadline cap, keepalive, idle connections and handshakes. (The password
admission has its own module: test_password_admission.py.)"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from grpc_health.v1 import health_pb2, health_pb2_grpc

from eid.v1 import identity_service_pb2 as pb
from eid.v1 import identity_service_pb2_grpc as pb_grpc
from eid_client.client import EidClient
from eid_client.errors import EidError, error_from_rpc_error
from eid_service.demo import demo_citizens
from eid_service.domain.citizen import Demographics
from eid_service.limits import Limits
from tests.integration.flows import PASSWORD, register, register_and_activate
from tests.integration.harness import ServerHarness
from tests.integration.raw_http2 import (
    ENHANCE_YOUR_CALM,
    GOAWAY,
    PING,
    SETTINGS_MAX_CONCURRENT_STREAMS,
    RawConnection,
)
from tests.polling import until

Start = Callable[[Limits], ServerHarness]
VERIFY = "/eid.v1.IdentityService/Verify"


def _adults() -> list[Demographics]:
    return [c for c in demo_citizens() if c.birth_date < date(2000, 1, 1)]


def _error(call: Callable[[], object]) -> EidError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return error_from_rpc_error(caught.value)


def _connection(target: str) -> grpc.Channel:
    """A channel on a connection of its own (channels to one target share
    one connection unless told not to)."""
    return grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])


def _healthy(target: str) -> bool:
    with _connection(target) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


HELD_SECONDS = 5.0  # how long a stream may wait for its request here


@contextlib.contextmanager
def _reading(connections: list[RawConnection], finished: Callable[[], bool]) -> Iterator[None]:
    """Reads each connection's frames as they come, on a thread, while the
    block runs and then until `finished()` holds (HELD_SECONDS + 10 at most)."""
    done = threading.Event()

    def read() -> None:
        give_up = time.monotonic() + HELD_SECONDS + 10
        with selectors.DefaultSelector() as ready:
            for c in connections:
                ready.register(c.sock, selectors.EVENT_READ, c)
            while time.monotonic() < give_up and not (done.is_set() and finished()):
                for key, _ in ready.select(timeout=0.05):
                    connection: RawConnection = key.data
                    connection.read_waiting()
                    if connection.closed:
                        ready.unregister(key.fileobj)

    reader = threading.Thread(target=read, name="attackers-reading")
    reader.start()
    try:
        yield
    finally:
        done.set()
        reader.join()


def _ended(connection: RawConnection) -> int:
    return len(connection.ended_streams())


def test_half_open_streams_no_longer_lock_everyone_out(start_server: Start) -> None:
    """Issue 15's attack: 20 connections opening 300 streams each and never
    sending a request. Each connection gets 100 (the rest are refused), the
    2000 held do not count as calls at work, so health, Register and Verify
    are served while they are held; then each held stream is ended."""
    harness = start_server(Limits(request_timeout_seconds=HELD_SECONDS))
    citizen, newcomer = _adults()[:2]
    _, key = harness.create_party("Bank")
    with (
        EidClient(harness.target) as app,
        EidClient(harness.target, api_key=key) as bank,
        contextlib.ExitStack() as stack,
    ):
        register_and_activate(harness, app, citizen)
        attackers = [stack.enter_context(RawConnection(harness.target)) for _ in range(20)]
        for attacker in attackers:
            assert attacker.handshake()[SETTINGS_MAX_CONCURRENT_STREAMS] == 100
        began = time.monotonic()
        for attacker in attackers:
            attacker.open_streams(300, VERIFY)
        # The attackers read as the frames come, so each frame is stamped
        # with (about) when the server sent it.
        with _reading(attackers, finished=lambda: all(_ended(a) == 300 for a in attackers)):
            refused = until(lambda: all(_ended(a) >= 200 for a in attackers), HELD_SECONDS / 2)
            assert refused, "the streams past 100 were not refused"
            assert _healthy(harness.target)
            assert register(app, newcomer).account.state == pb.ACCOUNT_STATE_PENDING
            assert bank.verify_password(personal_id=citizen.personal_id, password=PASSWORD).verified
            served = time.monotonic()
            assert served - began < HELD_SECONDS, "too slow to tell: held streams may have ended"
    # Served while every held stream was still held, none answered yet.
    held = [Counter(a.ended_streams(read_by=served).values()) for a in attackers]
    assert all(h == {"refused": 200} for h in held), held
    for attacker in attackers:
        assert Counter(attacker.ended_streams().values()) == {"refused": 200, "answered": 100}


def test_a_request_that_never_comes_is_answered(start_server: Start) -> None:
    harness = start_server(Limits(request_timeout_seconds=0.5))
    release = threading.Event()

    def nothing_yet() -> Iterator[bytes]:
        release.wait(10)
        yield from ()

    with grpc.insecure_channel(harness.target) as channel:
        # A client-streaming call to a unary method: the same bytes on the wire.
        check = channel.stream_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        began = time.monotonic()
        stalled = _error(lambda: check(nothing_yet(), timeout=30))
        waited = time.monotonic() - began
        release.set()
        empty = _error(lambda: check(iter(()), timeout=5))
    assert (stalled.code, stalled.reason) == (
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "REQUEST_NOT_RECEIVED",
    )
    assert 0.5 <= waited < 2.5
    assert (empty.code, empty.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_UNDECODABLE")


def test_each_method_takes_requests_of_its_own_size(start_server: Start) -> None:
    harness = start_server(Limits())
    citizen = _adults()[0]
    _, key = harness.create_party("Bank")
    as_bank = (("x-api-key", key),)
    oversized = pb.VerifyRequest(
        password=pb.PasswordCredential(personal_id=citizen.personal_id, password="x" * 100_000)
    )
    with (
        grpc.insecure_channel(harness.target) as channel,
        EidClient(harness.target) as app,
        EidClient(harness.target, api_key=key) as bank,
    ):
        register_and_activate(harness, app, citizen)
        stub = pb_grpc.IdentityServiceStub(channel)
        flood = [stub.Verify.future(oversized, metadata=as_bank, timeout=10) for _ in range(30)]
        assert bank.verify_password(personal_id=citizen.personal_id, password=PASSWORD).verified
        refusals = {error_from_rpc_error(call.exception()) for call in flood}  # type: ignore[arg-type]
        assert {(r.code, r.reason, r.metadata["max_bytes"]) for r in refusals} == {
            (grpc.StatusCode.RESOURCE_EXHAUSTED, "REQUEST_TOO_LARGE", "65536")
        }
        # Register takes a portrait's worth: refused for what it says, not for its size.
        portrait_sized = pb.RegisterRequest(
            personal_id=citizen.personal_id, full_name="x" * 900_000
        )
        taken = _error(lambda: stub.Register(portrait_sized, timeout=10))
        assert taken.code == grpc.StatusCode.INVALID_ARGUMENT
        # Beyond every method's size, the transport refuses it unread.
        huge = pb.RegisterRequest(full_name="x" * (2 << 20))
        with pytest.raises(grpc.RpcError) as caught:
            stub.Register(huge, timeout=10)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


Waiter = tuple[str, str]  # a party's key, and an approval request of that party


@pytest.fixture
def pending_approvals(start_server: Start) -> tuple[ServerHarness, list[Waiter]]:
    """A server with 6 calls at once, 4 per connection, a 1.5 s deadline cap;
    12 parties, each with an approval request nobody ever answers (QR
    requests nobody scans). One wait each: a party may hold only a share of
    the worker's calls in waits (approval_waits.py), one here."""
    harness = start_server(
        Limits(
            max_concurrent_rpcs=6,
            max_streams_per_connection=4,
            max_deadline_seconds=1.5,
            request_timeout_seconds=1.0,
        )
    )
    waiters = []
    for n in range(12):
        _, key = harness.create_party(f"Bank {n}")
        with EidClient(harness.target, api_key=key) as bank:
            waiters.append((key, bank.start_approval().approval_id))
    return harness, waiters


def _waits(
    channel: grpc.Channel, waiters: list[Waiter], seconds: float, **call: Any
) -> list[grpc.Future[Any]]:
    """A Verify call for each of `waiters`, waiting up to `seconds` for a decision."""
    stub = pb_grpc.IdentityServiceStub(channel)
    longest = Duration()
    longest.FromNanoseconds(int(seconds * 1e9))
    return [
        stub.Verify.future(
            pb.VerifyRequest(
                approval=pb.ApprovalCredential(approval_id=approval, max_wait=longest)
            ),
            metadata=(("x-api-key", key),),
            **call,
        )
        for key, approval in waiters
    ]


def _reasons(calls: list[grpc.Future[Any]]) -> Counter[str]:
    return Counter(error_from_rpc_error(c.exception()).reason or "" for c in calls)  # type: ignore[arg-type]


def test_one_connection_holds_its_streams_and_no_more(
    pending_approvals: tuple[ServerHarness, list[Waiter]],
) -> None:
    harness, waiters = pending_approvals
    with _connection(harness.target) as channel:
        waits = _waits(channel, waiters[:8], 0.5, timeout=10)
        time.sleep(0.1)
        began = time.monotonic()
        assert _healthy(harness.target)
        assert time.monotonic() - began < 0.4, "served while the 8 waits queue, 4 at a time"
        # Queued by the client, not refused: each waited its turn.
        assert _reasons(waits) == {"APPROVAL_PENDING": 8}


def test_a_worker_refuses_calls_beyond_its_limit_at_once(
    pending_approvals: tuple[ServerHarness, list[Waiter]],
) -> None:
    harness, waiters = pending_approvals
    channels = [_connection(harness.target) for _ in range(3)]
    try:
        ended: dict[int, float] = {}
        began = time.monotonic()
        # Waits of 1 s: the 12 calls arrive within it even on a loaded machine
        # (with 0.5 s, three came after the first waits had ended, and got in).
        waits = [
            w
            for i, c in enumerate(channels)
            for w in _waits(c, waiters[4 * i : 4 * i + 4], 1.0, timeout=10)
        ]

        def note_end(i: int) -> Callable[[grpc.Future[Any]], None]:
            def note(_: grpc.Future[Any]) -> None:
                ended.setdefault(i, time.monotonic())

            return note

        for i, call in enumerate(waits):
            call.add_done_callback(note_end(i))
        time.sleep(0.2)
        asked = time.monotonic()
        with EidClient(harness.target) as other:
            # Refused SERVER_BUSY while the worker is full, the SDK retries
            # after the RetryInfo's second, when the waits are over.
            assert other.get_verification_keys().keys
        assert time.monotonic() - asked >= 1.0
        reasons = _reasons(waits)
        assert reasons == {"APPROVAL_PENDING": 6, "SERVER_BUSY": 6}
        refused = [
            i
            for i, w in enumerate(waits)
            if error_from_rpc_error(w.exception()).reason == "SERVER_BUSY"  # type: ignore[arg-type]
        ]
        assert max(ended[i] for i in refused) - began < 0.5
        busy = error_from_rpc_error(waits[refused[0]].exception())  # type: ignore[arg-type]
        assert busy.code == grpc.StatusCode.UNAVAILABLE
        assert busy.retry_delay is not None and busy.retry_delay.total_seconds() == 1
    finally:
        for channel in channels:
            channel.close()


def test_calls_without_a_deadline_are_served_with_the_cap(
    pending_approvals: tuple[ServerHarness, list[Waiter]],
) -> None:
    """Verify waits as long as the call may last: asked for 60 s of waiting
    and no deadline at all, it answers within the 1.5 s cap."""
    harness, waiters = pending_approvals
    with grpc.insecure_channel(harness.target) as channel:
        began = time.monotonic()
        waits = _waits(channel, waiters[:3], 60)
        assert _reasons(waits) == {"APPROVAL_PENDING": 3}
        assert time.monotonic() - began < 3.0


def test_connections_that_neglect_or_abuse_the_link_are_closed(start_server: Start) -> None:
    harness = start_server(
        Limits(
            keepalive_time_seconds=0.5,
            keepalive_timeout_seconds=0.5,
            max_connection_idle_seconds=2.0,
            handshake_timeout_seconds=1.0,
        )
    )
    host, port = harness.target.rsplit(":", 1)
    opened = time.monotonic()
    with (
        socket.create_connection((host, int(port)), timeout=5) as mute,  # never says a word
        RawConnection(harness.target, answer_pings=False) as gone,
        RawConnection(harness.target) as idle,
        RawConnection(harness.target) as pinger,
        EidClient(harness.target) as client,
    ):
        for connection in (gone, idle, pinger):
            connection.handshake()
        began = time.monotonic()
        pinger.ping(5)
        assert client.get_verification_keys().keys

        calm_down = pinger.wait_for(lambda f: f.kind == GOAWAY, timeout=2)
        assert calm_down is not None and calm_down.error_code == ENHANCE_YOUR_CALM
        assert b"too_many_pings" in calm_down.payload

        assert gone.wait_for(lambda f: f.kind == PING, timeout=2) is not None
        gone.read(3)
        assert gone.closed, "a peer that never answers the server's pings is dropped"

        while mute.recv(4096):  # the server's SETTINGS, then the end
            pass
        assert time.monotonic() - began < 3, "a connection that never speaks is closed"

        idle_goaway = idle.wait_for(lambda f: f.kind == GOAWAY, timeout=5)
        # Idle since it was opened (its handshake is no call).
        assert idle_goaway is not None and time.monotonic() - opened >= 1.6
        # The client's own connection went idle too: it reconnects and is served.
        assert client.get_verification_keys().keys
