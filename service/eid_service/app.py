"""Composition root: the one place that wires settings, stores, crypto and RPCs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from eid.v1 import (
    identity_service_pb2,
    identity_service_pb2_grpc,
    registration_office_service_pb2,
    registration_office_service_pb2_grpc,
)
from eid_service.api.call_limits import CallLimits
from eid_service.api.generic_handlers import generic_only
from eid_service.api.health import DrainingHealth
from eid_service.api.identity_servicer import IdentityServicer
from eid_service.api.interceptors import ErrorMappingInterceptor
from eid_service.api.reflection import enable_reflection
from eid_service.api.registration_office_servicer import RegistrationOfficeServicer
from eid_service.config import Settings
from eid_service.logs import loop_exception_handler
from eid_service.notify.dispatcher import OutboxDispatcher
from eid_service.notify.party_webhook import PartyWebhookSender, party_delivery
from eid_service.notify.senders import (
    ALL_CHANNELS,
    EMAIL,
    PARTY_WEBHOOK,
    SMS,
    ConsoleSender,
    FileSender,
    Route,
    Sender,
)
from eid_service.notify.smtp import SmtpSender
from eid_service.notify.webhook import WebhookSender
from eid_service.security.field_cipher import FieldCipher
from eid_service.security.key_watch import RELOAD_SECONDS as KEY_RELOAD_SECONDS
from eid_service.security.key_watch import KeyRingWatcher
from eid_service.security.keyed_hash import KeyedHasher
from eid_service.security.keys import KeyRing, load_key_ring
from eid_service.security.pairwise import pairwise_subject
from eid_service.security.passwords import PasswordHasher
from eid_service.store.database import store_error
from eid_service.store.protection import DataProtection
from eid_service.store.uow import SqlUnitOfWork
from eid_service.telemetry.setup import Telemetry
from eid_service.transport import add_ports
from eid_service.use_cases.admission import Admission
from eid_service.use_cases.approval_waits import ApprovalWaits
from eid_service.use_cases.context import UseCaseContext, utc_now
from eid_service.use_cases.dependants import notice_coming_of_age
from eid_service.use_cases.purge import purge_expired
from eid_service.use_cases.signing_keys import SigningKeyCache, ensure_signing_key
from eid_service.use_cases.status_events import prepare_delivery
from eid_service.use_cases.wakeups import Wakeups

log = logging.getLogger("eid.server")

SERVICE_NAME = identity_service_pb2.DESCRIPTOR.services_by_name["IdentityService"].full_name
OFFICE_SERVICE_NAME = registration_office_service_pb2.DESCRIPTOR.services_by_name[
    "RegistrationOfficeService"
].full_name
REQUEST_FINGERPRINT_PURPOSE = "request"
# Long polls answer this long (a quarter of a short grace) before the drain's grace ends.
DRAIN_MARGIN_SECONDS = 1.0
# How long a stopping server waits for password checks its stop cut short
# (a hash queued behind the admission's limit, then one transaction).
CHECKS_DRAIN_SECONDS = 5.0


@dataclass
class Runtime:
    """Everything one server process holds; build with `bootstrap()`."""

    settings: Settings
    uow: SqlUnitOfWork
    context: UseCaseContext
    dispatcher: OutboxDispatcher
    passwords: PasswordHasher
    key_ring: KeyRing
    # This process's OpenTelemetry (telemetry/setup.py), None when off.
    telemetry: Telemetry | None = None
    # Follows the key ring file (rotate-keys), when the ring came from one.
    key_watch: KeyRingWatcher | None = None

    async def close(self) -> None:
        # Password checks whose callers the stop cancelled still compare and
        # record (use_cases/credentials.py): a count left standing would
        # count against the citizen. Before the hash threads and the store go.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.context.password_checks.idle(), CHECKS_DRAIN_SECONDS)
        await self.dispatcher.close()
        self.passwords.close()
        await asyncio.to_thread(self.uow.close)
        if self.telemetry is not None:
            # Last, so the spans of the calls that drained are exported too.
            await asyncio.to_thread(self.telemetry.shutdown)


def default_senders(settings: Settings) -> list[Route]:
    """sms: console, file, the SMS gateway webhook; email: console, file, SMTP."""
    routes: list[Route] = []
    if settings.console_sender:
        routes.append(Route("console", ALL_CHANNELS, ConsoleSender()))
    if settings.outbox_file is not None:
        routes.append(Route("file", ALL_CHANNELS, FileSender(settings.outbox_file)))
    if settings.sms_webhook is not None:
        routes.append(Route("webhook", frozenset({SMS}), WebhookSender(settings.sms_webhook)))
    if settings.smtp is not None:
        routes.append(Route("smtp", frozenset({EMAIL}), SmtpSender(settings.smtp)))
    return routes


def bootstrap(
    settings: Settings,
    *,
    key_ring: KeyRing | None = None,
    clock: Callable[[], datetime] = utc_now,
    senders: Sequence[Sender | Route] | None = None,
    passwords: PasswordHasher | None = None,
    telemetry: Telemetry | None = None,
) -> Runtime:
    ring = key_ring if key_ring is not None else load_key_ring(settings.keys_file)
    hasher = KeyedHasher(ring.hmac_key)
    cipher = FieldCipher(ring)
    key_watch = None
    if key_ring is None:
        key_watch = KeyRingWatcher(settings.keys_file, cipher, ring.hmac_key)
        cipher.on_unknown_key = key_watch.check
    uow = SqlUnitOfWork(settings.database_url, DataProtection(cipher, hasher))
    password_hasher = passwords if passwords is not None else PasswordHasher()
    ctx = UseCaseContext(
        passwords=password_hasher,
        signing_keys=SigningKeyCache(settings.shares),
        share_policy=settings.shares,
        portrait_policy=settings.portrait,
        fingerprint=lambda payload: hasher.digest(REQUEST_FINGERPRINT_PURPOSE, payload.hex()),
        pairwise_subject=lambda party_id, account_id: pairwise_subject(
            hasher, party_id, account_id
        ),
        clock=clock,
        language=settings.language,
        send_limits=settings.send_limits,
        officer_limits=settings.officer_limits,
        password_admission=Admission(settings.limits.max_password_checks),
        approval_waits=ApprovalWaits(settings.limits.max_concurrent_rpcs),
        biometric_thresholds=settings.biometric_thresholds,
    )
    chosen = list(senders) if senders is not None else default_senders(settings)
    if not any(isinstance(s, Route) and PARTY_WEBHOOK in s.channels for s in chosen):
        # Parties set their own URLs: this route always runs.
        prepare = partial(prepare_delivery, uow, ctx)
        sender = PartyWebhookSender(prepare)
        delivery = party_delivery(settings.delivery)
        chosen.append(Route(PARTY_WEBHOOK, frozenset({PARTY_WEBHOOK}), sender, delivery))
    dispatcher = OutboxDispatcher(uow, chosen, clock, settings.delivery)
    return Runtime(settings, uow, ctx, dispatcher, password_hasher, ring, telemetry, key_watch)


@dataclass
class RunningServer:
    server: aio.Server
    port: int
    health: DrainingHealth
    tasks: list[asyncio.Task[None]]
    stop_tasks: asyncio.Event
    long_polls: Wakeups
    # The mutual-TLS port (EID_MTLS_LISTEN), if the settings open one.
    mtls_port: int | None = None

    async def stop(self, grace: float | None) -> None:
        """Health says NOT_SERVING, new calls are refused, calls in flight have
        `grace` seconds to finish (long polls answer before it runs out); then
        the outbox dispatcher and the purge stop."""
        self.health.enter_graceful_shutdown()
        margin = 0.0 if grace is None else min(DRAIN_MARGIN_SECONDS, grace / 4)
        self.long_polls.drain(time.monotonic() + (grace or 0.0) - margin)
        await self.server.stop(grace)
        self.stop_tasks.set()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _purge_periodically(runtime: Runtime, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            purged = await purge_expired(runtime.uow, runtime.context.clock())
            log.debug("purged %s", purged)
        except Exception as error:  # try again next time
            log.warning("purge failed: %s", type(error).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), runtime.settings.purge_interval_seconds)


async def _notice_coming_of_age_periodically(runtime: Runtime, stop: asyncio.Event) -> None:
    """Tells guardians of dependants who turned 14, as often as the purge runs."""
    while not stop.is_set():
        try:
            told = await notice_coming_of_age(runtime.uow, runtime.context)
            log.debug("told %d guardians of dependants who turned 14", told)
        except Exception as error:  # try again next time
            log.warning("coming-of-age sweep failed: %s", type(error).__name__)
        else:
            if told:
                runtime.dispatcher.wake()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), runtime.settings.purge_interval_seconds)


async def _follow_key_ring(watch: KeyRingWatcher, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            watch.check()
        except Exception as error:  # try again next time
            log.warning("key ring check failed: %s", type(error).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), KEY_RELOAD_SECONDS)


async def create_server(
    runtime: Runtime, listen: str | None = None, *, reuse_port: bool = False
) -> RunningServer:
    """Builds and starts the server; returns it with the bound port (use
    "127.0.0.1:0" in tests for an ephemeral port). `reuse_port` lets other
    processes bind the port too: our own workers (serve.py claims the port).
    Off by default: with it, an ephemeral port may be one another process
    already listens on with SO_REUSEPORT, and the kernel then splits that
    port's connections between the two (grpc/grpc#10755)."""
    s = runtime.settings
    # asyncio's own error reports would quote exceptions and callback arguments.
    asyncio.get_running_loop().set_exception_handler(loop_exception_handler)
    observer = None if runtime.telemetry is None else runtime.telemetry.rpc
    # Before the first call: every share needs a current signing key.
    await ensure_signing_key(
        runtime.uow, dict(runtime.key_ring.signing_keys), runtime.context.clock()
    )
    server = aio.server(
        interceptors=[
            ErrorMappingInterceptor(store_error, observer=observer, limits=CallLimits(s.limits))
        ],
        # Counted by CallLimits once a call's request has arrived instead:
        # gRPC's own count takes in half-open streams, so a few connections
        # holding them would lock everyone out.
        maximum_concurrent_rpcs=None,
        options=[
            # gRPC sets SO_REUSEPORT unless told not to.
            ("grpc.so_reuseport", int(reuse_port)),
            *s.limits.server_options(),
        ],
    )
    services = generic_only(server)
    servicer = IdentityServicer(runtime.uow, runtime.context, trusted_proxies=s.trusted_proxies)
    servicer.on_outbox_write = runtime.dispatcher.wake
    identity_service_pb2_grpc.add_IdentityServiceServicer_to_server(servicer, services)
    office = RegistrationOfficeServicer(
        runtime.uow, runtime.context, trusted_proxies=s.trusted_proxies
    )
    office.on_outbox_write = runtime.dispatcher.wake
    registration_office_service_pb2_grpc.add_RegistrationOfficeServiceServicer_to_server(
        office, services
    )

    health_servicer = DrainingHealth()
    # Registered: a probe is picked up ahead of eid's queued calls (generic_handlers.py).
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if s.reflection:
        enable_reflection(services, (SERVICE_NAME, OFFICE_SERVICE_NAME, health.SERVICE_NAME))
    port, mtls_port = add_ports(server, s, listen or s.listen)
    await server.start()
    for name in ("", SERVICE_NAME, OFFICE_SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(runtime.dispatcher.run(stop), name="outbox-dispatcher"),
        asyncio.create_task(_purge_periodically(runtime, stop), name="purge"),
        asyncio.create_task(
            _notice_coming_of_age_periodically(runtime, stop), name="coming-of-age"
        ),
    ]
    if runtime.key_watch is not None:
        tasks.append(
            asyncio.create_task(_follow_key_ring(runtime.key_watch, stop), name="key-ring")
        )
    long_polls = runtime.context.approval_wakeups
    return RunningServer(server, port, health_servicer, tasks, stop, long_polls, mtls_port)
