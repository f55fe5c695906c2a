"""The limits of limits.py, each under the abuse it is for, against a real
server, with a legitimate client served meanwhile: half-open streams,
streams per connection, request sizes per method, calls at once per worker,
the deadline cap, keepalive, idle connections and handshakes. (The password
admission has its own module: test_password_admission.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import selectors
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from grpc_health.v1 import health_pb2, health_pb2_grpc

from eid.v1 import identity_service_pb2 as pb
from eid.v1 import identity_service_pb2_grpc as pb_grpc
from eid_client import retry
from eid_client.client import EidClient
from eid_client.errors import EidError, error_from_rpc_error
from eid_service.api import call_limits
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
    split_frames,
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
# How long a test waits for what should come at once: a guard against
# hanging, not a timing (these machines are shared and noisy).
PATIENCE = 30.0


@contextlib.contextmanager
def _reading(connections: list[RawConnection], finished: Callable[[], bool]) -> Iterator[None]:
    """Reads each connection's frames as they come, on a thread, while the
    block runs and then until `finished()` holds (PATIENCE * 2 at most)."""
    done = threading.Event()

    def read() -> None:
        give_up = time.monotonic() + PATIENCE * 2
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


def test_half_open_streams_no_longer_lock_everyone_out(
    start_server: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15's attack: 20 connections opening 300 streams each and never
    sending a request. Each connection gets 100 (the rest are refused), the
    2000 held do not count as calls at work, so health, Register and Verify
    are served while they are held; then each held stream is ended. The
    held streams' timeout reads a clock that stands still until the test
    moves it on: they are held while the others are served however slow
    the machine, not raced against HELD_SECONDS."""
    clock = SimpleNamespace(now=time.monotonic())
    monkeypatch.setattr(call_limits, "time", SimpleNamespace(monotonic=lambda: clock.now))
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
        for attacker in attackers:
            attacker.open_streams(300, VERIFY)
        # The attackers read as the frames come, so each frame is stamped
        # with (about) when the server sent it.
        with _reading(attackers, finished=lambda: all(_ended(a) == 300 for a in attackers)):
            refused = until(lambda: all(_ended(a) >= 200 for a in attackers), PATIENCE)
            assert refused, "the streams past 100 were not refused"
            assert _healthy(harness.target)
            assert register(app, newcomer).account.state == pb.ACCOUNT_STATE_PENDING
            assert bank.verify_password(personal_id=citizen.personal_id, password=PASSWORD).verified
            served = time.monotonic()
            clock.now += HELD_SECONDS  # the held streams' time is up
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
    # At least the timeout. A server that waited for the request would have
    # answered the empty one it got after 10 s (REQUEST_UNDECODABLE): at most
    # 10 times the timeout is a guard, not a timing.
    assert 0.5 <= waited < 5.0
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


def _pending_approvals(
    start_server: Start, count: int, cap: float
) -> tuple[ServerHarness, list[Waiter]]:
    """A server with 6 calls at once, 4 per connection, a deadline cap of
    `cap` s; `count` parties, each with an approval request nobody ever
    answers (QR requests nobody scans). One wait each: a party may hold only
    a share of the worker's calls in waits (approval_waits.py), one here."""
    harness = start_server(
        Limits(
            max_concurrent_rpcs=6,
            max_streams_per_connection=4,
            max_deadline_seconds=cap,
            request_timeout_seconds=1.0,
        )
    )
    waiters = []
    for n in range(count):
        _, key = harness.create_party(f"Bank {n}")
        with EidClient(harness.target, api_key=key) as bank:
            waiters.append((key, bank.start_approval().approval_id))
    return harness, waiters


@pytest.fixture
def pending_approvals(start_server: Start) -> tuple[ServerHarness, list[Waiter]]:
    """12 waiters; a cap far beyond what the tests hold a wait for."""
    return _pending_approvals(start_server, 12, cap=60)


class _HeldNaps:
    """Holds each approval wait of `harness` mid-nap until `let_go()`: what
    is answered meanwhile shows what held calls leave free, with no timing
    (these machines are shared and noisy)."""

    def __init__(self, harness: ServerHarness, monkeypatch: pytest.MonkeyPatch) -> None:
        self.held = 0  # waits held now
        self.entered = 0  # waits that reached their nap
        self._harness = harness
        self._released = asyncio.Event()  # the server's loop's, once waited on
        wakeups = harness.runtime.context.approval_wakeups
        nap = wakeups.nap

        async def held(key: str, seconds: float) -> bool:
            self.entered += 1
            self.held += 1
            try:
                await self._released.wait()
            finally:
                self.held -= 1
            return await nap(key, seconds)

        monkeypatch.setattr(wakeups, "nap", held)

    def let_go(self) -> None:
        async def release() -> None:
            self._released.set()

        self._harness.run(release())


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
    pending_approvals: tuple[ServerHarness, list[Waiter]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """8 waits on one connection: 4 take places, the client queues the
    rest, and health, on a connection of its own, is served while the 4
    are held."""
    harness, waiters = pending_approvals
    naps = _HeldNaps(harness, monkeypatch)
    with _connection(harness.target) as channel:
        try:
            waits = _waits(channel, waiters[:8], 0.5, timeout=PATIENCE)
            assert until(lambda: naps.held >= 4, PATIENCE), "the waits took no places"
            assert _healthy(harness.target)
            # Still the 4 held, and no more; the other 4 queued by the client.
            assert (naps.entered, naps.held) == (4, 4)
            assert not any(w.done() for w in waits)
        finally:
            naps.let_go()
        # Queued by the client, not refused: each waited its turn.
        assert _reasons(waits) == {"APPROVAL_PENDING": 8}


def test_a_worker_refuses_calls_beyond_its_limit_at_once(
    pending_approvals: tuple[ServerHarness, list[Waiter]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """12 waits from 3 connections, 4 each, for 6 places: 6 are held, the
    other 6 refused SERVER_BUSY while those are; so is another client's
    call, which the SDK sends again after the RetryInfo's second, by when
    the waits are let go."""
    harness, waiters = pending_approvals
    naps = _HeldNaps(harness, monkeypatch)
    pauses: list[float] = []
    paused = threading.Event()

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        paused.set()
        time.sleep(seconds)

    monkeypatch.setattr(retry, "time", SimpleNamespace(sleep=sleep))
    channels = [_connection(harness.target) for _ in range(3)]
    try:
        waits = [
            w
            for i, c in enumerate(channels)
            for w in _waits(c, waiters[4 * i : 4 * i + 4], 1.0, timeout=PATIENCE)
        ]
        full = until(lambda: naps.held == 6 and sum(w.done() for w in waits) == 6, PATIENCE)
        assert full, (naps.held, sum(w.done() for w in waits))
        # Refused at once: answered while the 6 admitted are held.
        refused = [w for w in waits if w.done()]
        assert _reasons(refused) == {"SERVER_BUSY": 6} and naps.held == 6
        busy = error_from_rpc_error(refused[0].exception())  # type: ignore[arg-type]
        assert busy.code == grpc.StatusCode.UNAVAILABLE
        assert busy.retry_delay is not None and busy.retry_delay.total_seconds() == 1
        with ThreadPoolExecutor(1) as pool, EidClient(harness.target) as other:
            keys = pool.submit(other.get_verification_keys)
            assert paused.wait(PATIENCE), "the other client was not refused"
            naps.let_go()
            assert keys.result(PATIENCE).keys
        # Refused SERVER_BUSY while the worker was full: sent again after
        # the RetryInfo's second.
        assert pauses[0] == 1.0
        assert _reasons(waits) == {"APPROVAL_PENDING": 6, "SERVER_BUSY": 6}
    finally:
        naps.let_go()
        for channel in channels:
            channel.close()


def test_calls_without_a_deadline_are_served_with_the_cap(start_server: Start) -> None:
    """Verify waits as long as the call may last: asked for 60 s of waiting
    and no deadline at all, it answers within the 1.5 s cap."""
    harness, waiters = _pending_approvals(start_server, 3, cap=1.5)
    with grpc.insecure_channel(harness.target) as channel:
        began = time.monotonic()
        waits = _waits(channel, waiters, 60)
        assert _reasons(waits) == {"APPROVAL_PENDING": 3}
        # 10 times the cap: a guard, not a timing. Without the cap the
        # waits would take their 60 s.
        assert time.monotonic() - began < 15.0


def test_a_peer_that_never_acknowledges_a_ping_is_dropped_by_keepalive_alone(
    start_server: Start,
) -> None:
    """The idle limit set far away, so only keepalive can close it: a peer gone
    without a word (its socket open) is dropped once a ping goes unanswered
    for the keepalive timeout; one that answers is pinged and kept. Before,
    gRPC waited a minute for the acknowledgement whatever the timeout said
    (its own ping timeout), and the test below passed only by its idle limit."""
    harness = start_server(
        Limits(
            keepalive_time_seconds=0.5,
            keepalive_timeout_seconds=1.0,
            max_connection_idle_seconds=600.0,
        )
    )
    with (
        RawConnection(harness.target, answer_pings=False) as gone,
        RawConnection(harness.target) as alive,
    ):
        gone.handshake()
        alive.handshake()
        stop = threading.Event()

        def answer_pings() -> None:
            while not stop.is_set() and not alive.closed:
                alive.read(0.05)

        answering = threading.Thread(target=answer_pings)
        answering.start()
        try:
            assert gone.wait_for(lambda f: f.kind == PING, timeout=PATIENCE) is not None
            give_up = time.monotonic() + PATIENCE  # a hang guard, 30x the timeout
            while not gone.closed and time.monotonic() < give_up:
                gone.read(0.5)
        finally:
            stop.set()
            answering.join()
        assert gone.closed, "a peer that never answers the server's pings is dropped"
        assert any(f.kind == PING for f in alive.received)
        assert not alive.closed, "a peer that answers is kept"


def test_connections_that_neglect_or_abuse_the_link_are_closed(start_server: Start) -> None:
    # Keepalive has its own test above: here the idle connection must not be
    # pinged (it answers pings only when it reads) before its idle limit.
    harness = start_server(
        Limits(
            max_connection_idle_seconds=2.0,
            handshake_timeout_seconds=1.0,
        )
    )
    host, port = harness.target.rsplit(":", 1)
    opened = time.monotonic()
    with (
        # Never says a word; the recv timeout is a guard, not a timing.
        socket.create_connection((host, int(port)), timeout=PATIENCE) as mute,
        RawConnection(harness.target) as idle,
        RawConnection(harness.target) as pinger,
        EidClient(harness.target) as client,
    ):
        for connection in (idle, pinger):
            connection.handshake()
        pinger.ping(5)
        assert client.get_verification_keys().keys

        calm_down = pinger.wait_for(lambda f: f.kind == GOAWAY, timeout=PATIENCE)
        assert calm_down is not None and calm_down.error_code == ENHANCE_YOUR_CALM
        assert b"too_many_pings" in calm_down.payload

        said = b""
        while chunk := mute.recv(4096):  # the server's SETTINGS, a GOAWAY, then the end
            said += chunk
        # Closed for never speaking, not later for idling (its reason says
        # which: the idle limit would close it too).
        (goaway,) = [f for f in split_frames(said)[0] if f.kind == GOAWAY]
        assert b"handshake timeout" in goaway.payload, goaway.payload

        idle_goaway = idle.wait_for(lambda f: f.kind == GOAWAY, timeout=PATIENCE)
        # Idle since it was opened (its handshake is no call).
        assert idle_goaway is not None and time.monotonic() - opened >= 1.6
        assert b"connection idle" in idle_goaway.payload, idle_goaway.payload
        # The client's own connection went idle too: it reconnects and is served.
        assert client.get_verification_keys().keys
