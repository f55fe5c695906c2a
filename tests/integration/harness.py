"""An in-process eid server on an ephemeral port, in a thread of its own, so
tests drive it with the real synchronous client over a real socket."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import text

from eid_service.app import RunningServer, Runtime, bootstrap, create_server
from eid_service.config import Settings
from eid_service.demo import demo_person
from eid_service.domain.citizen import Demographics
from eid_service.domain.notices import Language
from eid_service.domain.party import MAX_RATE_PER_MINUTE, RelyingParty, new_party_id
from eid_service.domain.portrait import PortraitPolicy
from eid_service.domain.rate_limits import Limit, OfficerLimits, SendLimits
from eid_service.domain.registry_person import RegistryPerson
from eid_service.domain.share import Attribute
from eid_service.limits import Limits
from eid_service.security.keys import KeyRing, generate_key_ring
from eid_service.security.passwords import PasswordHasher
from eid_service.security.tls import TlsSettings
from eid_service.use_cases.party_cache import PartyCache
from eid_service.use_cases.ports import OutgoingMessage, Repositories

T = TypeVar("T")
CODE_PATTERN = re.compile(r"\b(\d{6})\b")


class FakeClock:
    """Real time plus an offset that tests can move forward."""

    def __init__(self) -> None:
        self.offset = timedelta()
        self._stopped_at: datetime | None = None

    def __call__(self) -> datetime:
        return (self._stopped_at or datetime.now(UTC)) + self.offset

    def stop(self) -> None:
        """From now on the time moves only by `advance`: answers that say how
        long to wait are compared whole, not across a second's turn."""
        self._stopped_at = datetime.now(UTC)

    def advance(self, delta: timedelta) -> None:
        self.offset += delta

    def monotonic(self) -> float:
        """time.monotonic() moved as far as this clock was (for the PartyCache)."""
        return time.monotonic() + self.offset.total_seconds()


@dataclass
class RecordingSender:
    messages: list[OutgoingMessage] = field(default_factory=list)

    async def send(self, message: OutgoingMessage) -> None:
        self.messages.append(message)


class CountingHasher(PasswordHasher):
    """Argon2id as the server runs it, counting verifications."""

    verifications = 0

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        self.verifications += 1
        return await super().verify(stored_hash, password)


# Suites register many citizens from one address; the limits' own tests
# pass SendLimits() (the defaults) or tighter ones.
ROOMY_LIMITS = SendLimits(
    register_per_source=Limit("register-source", 100_000, timedelta(hours=1)),
    code_per_source=Limit("code-source", 100_000, timedelta(hours=1)),
)
# The clock stands still: long suites' officers would spend their hour.
ROOMY_OFFICER_LIMITS = OfficerLimits(
    Limit("officer-hour", 100_000, timedelta(hours=1)),
    Limit("officer-day", 100_000, timedelta(days=1)),
)


class ServerHarness:
    def __init__(
        self,
        database_url: str,
        key_ring: KeyRing | None = None,
        send_limits: SendLimits = ROOMY_LIMITS,
        officer_limits: OfficerLimits = ROOMY_OFFICER_LIMITS,
        language: Language = Language.VIETNAMESE,
        limits: Limits | None = None,
        tls: TlsSettings | None = None,
        portrait: PortraitPolicy | None = None,
        purge_interval_seconds: float = Settings().purge_interval_seconds,
    ) -> None:
        self.database_url = database_url
        self.portrait = portrait or PortraitPolicy()
        # How often the purge and the coming-of-age sweep run.
        self.purge_interval_seconds = purge_interval_seconds
        self.tls = tls
        self.limits = limits or Limits()
        self.send_limits = send_limits
        self.officer_limits = officer_limits
        self.language = language
        self.key_ring = key_ring or generate_key_ring()
        self.clock = FakeClock()
        self.sender = RecordingSender()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.hasher = CountingHasher(threads=4)
        self.statements = 0
        self._runtime: Runtime | None = None
        self._running: RunningServer | None = None
        self.port = 0
        self.mtls_port: int | None = None

    def start(self) -> ServerHarness:
        self._thread.start()
        settings = Settings(
            listen="127.0.0.1:0",
            database_url=self.database_url,
            outbox_file=None,
            console_sender=False,
            grace_seconds=1.0,
            # Tests stand in for a load balancer that names clients in x-forwarded-for.
            trusted_proxies=frozenset({"127.0.0.1"}),
            send_limits=self.send_limits,
            officer_limits=self.officer_limits,
            language=self.language,
            limits=self.limits,
            tls=self.tls,
            portrait=self.portrait,
            purge_interval_seconds=self.purge_interval_seconds,
        )

        async def up() -> None:
            self._runtime = bootstrap(
                settings,
                key_ring=self.key_ring,
                clock=self.clock,
                senders=[self.sender],
                passwords=self.hasher,
            )
            # Relying parties are cached by this clock: tests outwait the TTL by moving it.
            self._runtime.context = replace(
                self._runtime.context, parties=PartyCache(clock=self.clock.monotonic)
            )
            self._runtime.uow.observe = self._count_statement
            self._running = await create_server(self._runtime)
            self.port = self._running.port
            self.mtls_port = self._running.mtls_port

        self.run(up())
        return self

    def _count_statement(self, sql: str) -> None:
        # The outbox dispatcher polls on its own schedule: not the caller's
        # work. Queueing a message is (it never inserts one): counted, or a
        # call that sends a code would look as cheap as one that does not.
        if "outbox" not in sql or sql.startswith("INSERT INTO outbox ("):
            self.statements += 1

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def runtime(self) -> Runtime:
        assert self._runtime is not None
        return self._runtime

    def run(self, coro: Awaitable[T], timeout: float = 30) -> T:
        async def wrapper() -> T:
            return await coro

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(timeout)

    def stop(self) -> None:
        async def down() -> None:
            if self._running is not None:
                running, dispatcher = self._running, self.runtime.dispatcher

                async def wake_dispatcher() -> None:
                    # The dispatcher sees the stop only between polls: waking it
                    # saves every test up to a poll interval (1 s) of teardown.
                    await running.stop_tasks.wait()
                    dispatcher.wake()

                waker = asyncio.create_task(wake_dispatcher())
                try:
                    await running.stop(1.0)
                finally:
                    waker.cancel()
            if self._runtime is not None:
                await self._runtime.close()

        try:
            self.run(down())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    # --- data set-up, as an operator would do it -------------------------

    def add_citizens(self, citizens: Iterable[Demographics]) -> None:
        """Citizens in the registry, each with their demo enrolled portrait
        (flows.register sends a capture that matches it)."""
        self.add_people(demo_person(c) for c in citizens)

    def add_people(self, people: Iterable[RegistryPerson]) -> None:
        """Registry people as given: foreigners, people with no portrait."""
        chosen = list(people)

        def add(r: Repositories) -> None:
            for p in chosen:
                r.registry.put_person(p)

        self.run(self.runtime.uow.atomically(add))

    def create_party(
        self,
        name: str = "Test Bank",
        scopes: Iterable[Attribute] = tuple(Attribute),
        *,
        rate: int = MAX_RATE_PER_MINUTE,
        citizen_rate: int = MAX_RATE_PER_MINUTE,
    ) -> tuple[RelyingParty, str]:
        """A party allowed every Verify mode (password too). Its rate limits
        are the highest an operator can set, as suites call about one citizen
        many times; the limits' own tests pass tighter ones."""
        party = RelyingParty(
            new_party_id(),
            name,
            frozenset(scopes),
            rate_per_minute=rate,
            citizen_rate_per_minute=citizen_rate,
        )
        key = self.run(self.runtime.uow.atomically(lambda r: r.parties.create(party, self.clock())))
        return party, key

    def in_uow(self, action: Callable[[Repositories], T]) -> T:
        """Reads through the repositories, in one transaction."""
        return self.run(self.runtime.uow.read(action))

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """Raw rows, to check what is really stored."""
        with self.runtime.uow.engine.connect() as connection:
            return [tuple(r) for r in connection.execute(text(sql)).all()]

    def rows_become(
        self, sql: str, wanted: list[tuple[Any, ...]], timeout: float = 10.0
    ) -> list[tuple[Any, ...]]:
        """The rows once they equal `wanted`, or the last ones read after
        `timeout`: for state the dispatcher records on its own loop just after
        the outside world has seen the effect (a webhook's 200)."""
        deadline = time.monotonic() + timeout
        while (found := self.rows(sql)) != wanted and time.monotonic() < deadline:
            time.sleep(0.02)
        return found

    def execute(self, sql: str) -> None:
        """A raw write, as an attacker with database access could do."""
        with self.runtime.uow.engine.begin() as connection:
            connection.execute(text(sql))

    # --- the citizen's phone ------------------------------------------------

    def wait_for_code(self, phone_e164: str, *, after: int = 0, timeout: float = 10.0) -> str:
        """The one-time code in the newest SMS to this phone past index `after`
        that carries one (notices such as "your account is locked" do not)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in reversed(self.sender.messages[after:]):
                found = CODE_PATTERN.search(message.body)
                if message.destination == phone_e164 and found is not None:
                    return found.group(1)
            time.sleep(0.02)
        raise AssertionError("no SMS with a code arrived")
