"""What the bench measures: eid's calls over gRPC (Verify by token and by password,
ShareViaQR, Register), the two bare gRPC ceilings (the echo and the durable
write), and the bare Argon2id and Ed25519 verifications.

Every gRPC workload goes through :func:`eid_client.loadgen.run_load` with the
same concurrency, its calls spread round-robin over several channels (TCP
connections), so the figures are comparable.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import argon2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc import aio

from bench.stack import CHANNEL_OPTIONS, BenchError, EidServer, connections_per_worker
from eid_client import AsyncEidClient, RetryPolicy
from eid_client._sandbox_data import read_outbox, wait_for_code
from eid_client.loadgen import LoadResult, NotVerifiedError, channel_options, run_load
from eid_client.offline import (
    CredentialClaims,
    KeySet,
    VerificationKey,
    issue_credential,
    verify_offline,
)
from eid_service.demo import demo_citizens, portrait_capture, synthetic_citizens
from eid_service.domain.citizen import Demographics, age_on

PASSWORD = "bench-Passw0rd-2024"  # noqa: S105 (throwaway accounts in a temporary database)
SHARE_ATTRIBUTES = ("full_name", "birth_date", "gender")
SHARE_TTL = datetime.timedelta(hours=1)
# Tokens issued only as setup (for the second eid server) go a few at a time:
# nothing is measured, and a failure there stops the bench.
SETUP_ISSUE_CONCURRENCY = 4
# eid_service.security.passwords.PasswordHasher defaults (OWASP Argon2id profile).
ARGON2_TIME_COST, ARGON2_MEMORY_KIB, ARGON2_PARALLELISM = 2, 19456, 1
ARGON2_PARAMS = {
    "time_cost": ARGON2_TIME_COST,
    "memory_cost": ARGON2_MEMORY_KIB,
    "parallelism": ARGON2_PARALLELISM,
}
CODE_PATTERN = re.compile(r"\b(\d{6})\b")
CALL_TIMEOUT_SECONDS = 60.0
OUTBOX_WAIT_SECONDS = 30.0
# Attempts at spreading the connections evenly over a server's workers.
SPREAD_ATTEMPTS = 10

# Verify(password) spreads over several citizens, as real traffic does: checks
# of one account run one at a time by design (the attempt limit depends on it).
PASSWORD_CITIZENS = 8
# The seed `eid-server load-demo --synthetic N` uses for its extra citizens.
SYNTHETIC_SEED = 0


def bench_citizens(today: datetime.date) -> list[Demographics]:
    """Demo citizens old enough to register themselves, the first one first."""
    adults = [c for c in demo_citizens() if age_on(c.birth_date, today) >= 18]
    if len(adults) < PASSWORD_CITIZENS:
        raise BenchError("too few adults in the demo registry")
    return adults[:PASSWORD_CITIZENS]


def registrable_citizens(count: int) -> list[Demographics]:
    """The citizens ``eid-server load-demo --synthetic count`` adds to the registry,
    in the same order: one per Register call."""
    return synthetic_citizens(count, seed=SYNTHETIC_SEED)


def _enrolled_phone(index: int) -> tuple[str, str]:
    return f"091234{index:04d}", f"+8491234{index:04d}"


def _registered_phone(index: int) -> str:
    return f"098{index:07d}"  # a range of its own: never an enrolled citizen's phone


def _otp_phone(index: int) -> tuple[str, str]:
    return f"097{index:07d}", f"+8497{index:07d}"  # the one-time-code citizens' own range


def _codes_by_phone(outbox: Path) -> dict[str, list[str]]:
    """Every code in the development outbox file, per phone, oldest first."""
    codes: dict[str, list[str]] = {}
    for message in read_outbox(outbox):
        found = CODE_PATTERN.search(message.body)
        if found:
            codes.setdefault(message.to, []).append(found.group(1))
    return codes


async def new_codes(outbox: Path, phones: Sequence[str], before: dict[str, list[str]]) -> list[str]:
    """The newest code of each phone once every one has a code it had not in ``before``."""
    try:
        async with asyncio.timeout(OUTBOX_WAIT_SECONDS):
            while True:
                now = await asyncio.to_thread(_codes_by_phone, outbox)
                if all(len(now.get(p, [])) > len(before.get(p, [])) for p in phones):
                    return [now[p][-1] for p in phones]
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise BenchError(f"verification codes missing in {outbox}") from None


async def activation_code(outbox: Path, phone_e164: str) -> str:
    """The newest code sent to ``phone_e164`` in the development outbox file; the
    server's outbox dispatcher delivers it shortly after Register commits."""
    try:
        async with asyncio.timeout(OUTBOX_WAIT_SECONDS):
            while True:
                # One look each time (timeout=0): the wait is here, holding no thread.
                with contextlib.suppress(LookupError):
                    return await asyncio.to_thread(
                        wait_for_code, outbox, phone_e164, after=0, timeout=0
                    )
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise BenchError(f"no activation code for {phone_e164} in {outbox}") from None


def evenly_spread(counts: dict[int, int]) -> bool:
    """Every worker holds connections, none more than half a fair share beyond another."""
    if not counts:
        return False
    fair = sum(counts.values()) / len(counts)
    return min(counts.values()) > 0 and max(counts.values()) - min(counts.values()) <= fair / 2


def _channel_options() -> list[tuple[str, object]]:
    # Each channel its own TCP connection: eid's workers share the port with
    # SO_REUSEPORT, which spreads connections, not calls, over them.
    return CHANNEL_OPTIONS + channel_options()


class RawMethod:
    """A unary method on raw bytes (no protobuf) over several channels: the echo and
    the durable write servers."""

    def __init__(
        self, address: str, method: str, *, label: str, channels: int, concurrency: int
    ) -> None:
        self.label = label
        self.concurrency = concurrency
        self._channels = [
            aio.insecure_channel(address, _channel_options()) for _ in range(channels)
        ]
        self._calls = [c.unary_unary(method, None, None) for c in self._channels]

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close(None)

    async def run(
        self, requests: Sequence[bytes], *, echoed: bool = False, progress: bool = False
    ) -> LoadResult:
        """One call per request; ``echoed``: each answer must be its request."""

        async def call(i: int) -> None:
            answer = await self._calls[i % len(self._calls)](
                requests[i], timeout=CALL_TIMEOUT_SECONDS
            )
            if echoed and answer != requests[i]:
                raise BenchError("the echo server changed the payload")

        return await run_load(
            call,
            total=len(requests),
            concurrency=self.concurrency,
            progress=progress,
            label=self.label,
        )


class EidLoad:
    """Clients of one eid server, and the citizens its calls use."""

    def __init__(self, server: EidServer, *, concurrency: int, channels: int, progress: bool):
        self.server = server
        self.concurrency = concurrency
        self.channels = channels
        self.progress = progress
        self.citizens = bench_citizens(datetime.datetime.now(datetime.UTC).date())
        self.sample_token = ""
        self.registered = 0  # Register calls made, successful or not
        self.otp_citizens: list[Demographics] = []
        self._clients = self._connect()

    def _connect(self) -> list[AsyncEidClient]:
        s = self.server
        return [
            AsyncEidClient(
                s.address,
                api_key=s.api_key,
                timeout=CALL_TIMEOUT_SECONDS,
                options=_channel_options(),
                # A retried failure would count as a slow success.
                retry=RetryPolicy.off(),
            )
            for _ in range(self.channels)
        ]

    async def close(self) -> None:
        for client in self._clients:
            await client.close()

    def _client(self, i: int) -> AsyncEidClient:
        return self._clients[i % len(self._clients)]

    def _label(self, call: str) -> str:
        return f"{self.server.name} {call}"

    async def enroll(self) -> None:
        """Register and activate the Verify citizens; keep one token to size the
        other servers' payloads."""
        setup = self._clients[0]
        for index, c in enumerate(self.citizens):
            national, e164 = _enrolled_phone(index)
            await setup.register(
                personal_id=c.personal_id,
                full_name=c.full_name,
                birth_date=c.birth_date,
                gender=c.gender.value,
                phone_number=national,
                portrait=portrait_capture(c.personal_id),
            )
            code = await activation_code(self.server.outbox, e164)
            await setup.activate(
                personal_id=c.personal_id, activation_code=code, new_password=PASSWORD
            )
        tokens = await self.issue_tokens(1)
        self.sample_token = tokens[0]

    async def spread_connections(self) -> dict[int, int] | None:
        """Spread the connections evenly enough over the server's workers (the kernel
        picks a worker per connection, at random: the bench reconnects until it
        likes the draw); returns the connections per worker pid, or None where
        /proc cannot tell."""
        counts = None
        for _ in range(SPREAD_ATTEMPTS):
            # A health check on every channel opens its connection.
            await asyncio.gather(*(client.health() for client in self._clients))
            counts = connections_per_worker(self.server)
            if counts is None or self.server.workers <= 1 or evenly_spread(counts):
                return counts
            await self.close()
            self._clients = self._connect()
        return counts

    async def share_via_qr(
        self, total: int, *, concurrency: int | None = None
    ) -> tuple[LoadResult, list[str]]:
        """``total`` ShareViaQR calls, the enrolled citizens in turn, each from a fresh
        session (sessions last 15 minutes); returns the result and the tokens issued,
        in the order of the calls. Many citizens, as in life: one citizen's Verify
        calls take turns at their own rows (their audit chain, their bucket with the
        party), which on PostgreSQL holds each until its commit."""
        sessions = [
            (await self._clients[0].sign_in(personal_id=c.personal_id, password=PASSWORD))
            for c in self.citizens
        ]
        issued: dict[int, str] = {}

        async def call(i: int) -> None:
            share = await self._client(i).share_via_qr(
                attributes=SHARE_ATTRIBUTES,
                ttl=SHARE_TTL,
                session_token=sessions[i % len(sessions)].session_token,
            )
            issued[i] = share.token

        result = await run_load(
            call,
            total=total,
            concurrency=concurrency or self.concurrency,
            progress=self.progress,
            label=self._label("ShareViaQR"),
        )
        return result, [issued[i] for i in sorted(issued)]

    async def issue_tokens(self, total: int) -> list[str]:
        """``total`` tokens as setup (not measured): every one must be issued."""
        result, tokens = await self.share_via_qr(total, concurrency=SETUP_ISSUE_CONCURRENCY)
        if result.errors or len(tokens) != total:
            raise BenchError(
                f"{self.server.name}: issuing share tokens failed: {dict(result.error_kinds)}"
            )
        return tokens

    async def verify_token(self, tokens: Sequence[str]) -> LoadResult:
        async def call(i: int) -> None:
            if not (await self._client(i).redeem_share(tokens[i])).verified:
                raise NotVerifiedError

        return await self._run(call, len(tokens), "Verify (token)")

    async def verify_password(self, total: int) -> LoadResult:
        ids = [c.personal_id for c in self.citizens]

        async def call(i: int) -> None:
            pid = ids[i % len(ids)]
            response = await self._client(i).verify_password(personal_id=pid, password=PASSWORD)
            if not response.verified:
                raise NotVerifiedError

        return await self._run(call, total, "Verify (password)")

    async def enroll_otp(self, citizens: Sequence[Demographics]) -> None:
        """Register and activate the citizens Verify by one-time code uses (each
        code is bound to a (party, citizen) pair, so a round needs as many
        citizens as calls)."""
        setup = self._clients[0]
        self.otp_citizens = list(citizens)

        async def enroll(index: int, c: Demographics) -> None:
            national, e164 = _otp_phone(index)
            await setup.register(
                personal_id=c.personal_id,
                full_name=c.full_name,
                birth_date=c.birth_date,
                gender=c.gender.value,
                phone_number=national,
                portrait=portrait_capture(c.personal_id),
            )
            code = await activation_code(self.server.outbox, e164)
            await setup.activate(
                personal_id=c.personal_id, activation_code=code, new_password=PASSWORD
            )

        for start in range(0, len(citizens), SETUP_ISSUE_CONCURRENCY):
            batch = list(enumerate(citizens))[start : start + SETUP_ISSUE_CONCURRENCY]
            await asyncio.gather(*(enroll(i, c) for i, c in batch))

    async def otp_codes(self, total: int) -> list[tuple[str, str]]:
        """As setup (not measured): RequestOtp for ``total`` one-time-code citizens,
        then their codes from the outbox; (ID number, code) pairs."""
        chosen = list(enumerate(self.otp_citizens[:total]))
        if len(chosen) < total:
            raise BenchError("the bench has too few one-time-code citizens")
        setup = self._clients[0]
        before = await asyncio.to_thread(_codes_by_phone, self.server.outbox)
        for start in range(0, total, SETUP_ISSUE_CONCURRENCY):
            batch = chosen[start : start + SETUP_ISSUE_CONCURRENCY]
            await asyncio.gather(*(setup.request_otp(c.personal_id) for _, c in batch))
        phones = [_otp_phone(index)[1] for index, _ in chosen]
        codes = await new_codes(self.server.outbox, phones, before)
        return [(c.personal_id, code) for (_, c), code in zip(chosen, codes, strict=True)]

    async def verify_otp(self, pairs: Sequence[tuple[str, str]]) -> LoadResult:
        async def call(i: int) -> None:
            pid, code = pairs[i]
            if not (await self._client(i).verify_one_time_code(pid, code)).verified:
                raise NotVerifiedError

        return await self._run(call, len(pairs), "Verify (one-time code)")

    async def verify_demographic(self, total: int) -> LoadResult:
        """Claims of name, birth date and gender (PARTIAL name match) that hold."""
        claims = [
            (c.personal_id, c.full_name.upper(), c.birth_date.isoformat(), c.gender.value)
            for c in self.citizens
        ]

        async def call(i: int) -> None:
            pid, name, born, gender = claims[i % len(claims)]
            answer = await self._client(i).verify_demographic(
                pid, full_name=name, birth_date=born, gender=gender, partial=True
            )
            if not answer.verified:
                raise NotVerifiedError

        return await self._run(call, total, "Verify (demographic)")

    async def register(self, citizens: Sequence[Demographics]) -> LoadResult:
        """One Register per citizen (each registers once: the registry match
        succeeds, an account, an outbox row and an audit entry are written)."""
        first = self.registered
        self.registered += len(citizens)
        # The app's captures of their faces, made before the clock starts.
        portraits = [portrait_capture(c.personal_id) for c in citizens]

        async def call(i: int) -> None:
            c = citizens[i]
            await self._client(i).register(
                personal_id=c.personal_id,
                full_name=c.full_name,
                birth_date=c.birth_date,
                gender=c.gender.value,
                phone_number=_registered_phone(first + i),
                portrait=portraits[i],
            )

        return await self._run(call, len(citizens), "Register")

    def outbox_messages(self) -> int:
        """Messages in the development outbox file so far."""
        return len(read_outbox(self.server.outbox))

    async def outbox_drained(self, expected: int) -> bool:
        """Waits until the development outbox file holds ``expected`` messages (the
        dispatcher sends after Register returns, so its work would otherwise fall
        into the next measurement); False if it does not within a while."""
        try:
            async with asyncio.timeout(OUTBOX_WAIT_SECONDS):
                while True:
                    if await asyncio.to_thread(self.outbox_messages) >= expected:
                        return True
                    await asyncio.sleep(0.1)
        except TimeoutError:
            return False

    async def _run(
        self, call: Callable[[int], Awaitable[object]], total: int, name: str
    ) -> LoadResult:
        return await run_load(
            call,
            total=total,
            concurrency=self.concurrency,
            progress=self.progress,
            label=self._label(name),
        )


class Signer:
    """The Ed25519 key behind the durable write requests and the bare Ed25519 check."""

    def __init__(self) -> None:
        self._key = Ed25519PrivateKey.generate()
        self.public_key = self._key.public_key()
        self.public_key_hex = self.public_key.public_bytes_raw().hex()

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def signed_requests(self, message: bytes, count: int, start: int = 0) -> list[bytes]:
        """``count`` distinct ``message || signature`` requests (a durable write call's
        body), made before the run that sends them."""
        requests = []
        for i in range(start, start + count):
            body = message + b".%d" % i
            requests.append(body + self._key.sign(body))
        return requests


class BareCrypto:
    """The ceilings under eid's two Verify modes, measured in this process."""

    def __init__(self, message: bytes, signer: Signer, *, progress: bool) -> None:
        self.progress = progress
        self.threads = os.cpu_count() or 1
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="bench-argon2")
        self._argon2 = argon2.PasswordHasher(
            time_cost=ARGON2_TIME_COST,
            memory_cost=ARGON2_MEMORY_KIB,
            parallelism=ARGON2_PARALLELISM,
            hash_len=32,
            salt_len=16,
            type=argon2.Type.ID,
        )
        self._encoded = self._argon2.hash(PASSWORD)
        self._message = message
        self._signature = signer.sign(message)
        self._public_key = signer.public_key
        self._credential, self._credential_keys = offline_credential()

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    async def argon2id_verify(self, total: int) -> LoadResult:
        """Argon2id verifications on a pool of one thread per CPU, as eid's hasher uses
        (argon2-cffi releases the GIL, so the threads run in parallel)."""
        loop = asyncio.get_running_loop()

        async def call(_: int) -> None:
            await loop.run_in_executor(self._pool, self._argon2.verify, self._encoded, PASSWORD)

        # One call per thread: the pool never queues, so latency is the hash itself.
        return await run_load(
            call,
            total=total,
            concurrency=self.threads,
            progress=self.progress,
            label=f"bare Argon2id verify ({self.threads} threads)",
        )

    def ed25519_verify(self, total: int) -> LoadResult:
        """Ed25519 verifications of a token-sized message on one thread (eid verifies a
        share token's signature on its event loop). A tight loop: asyncio's per-call
        overhead would be comparable to the ~0.1 ms being measured."""
        verify, signature, message = self._public_key.verify, self._signature, self._message
        latencies: list[float] = []
        started = time.perf_counter()
        for _ in range(total):
            t0 = time.perf_counter()
            verify(signature, message)
            latencies.append(time.perf_counter() - t0)
        return LoadResult(total, 0, time.perf_counter() - started, latencies)

    def offline_verify(self, total: int) -> LoadResult:
        """The SDK's verify_offline of a basic-scope offline credential on one thread,
        timed as ed25519_verify is: Base45, zlib, COSE, the Ed25519 check and the
        claims, all the work a verifier does for one scanned QR code."""
        text, keys = self._credential, self._credential_keys
        latencies: list[float] = []
        started = time.perf_counter()
        for _ in range(total):
            t0 = time.perf_counter()
            verify_offline(text, keys)
            latencies.append(time.perf_counter() - t0)
        return LoadResult(total, 0, time.perf_counter() - started, latencies)


def offline_credential() -> tuple[str, KeySet]:
    """A genuine basic-scope offline credential, as eid issues it (iss "eid.vn", a
    6-character kid, a 10-byte share id, ID, a long name, birth date, gender),
    valid for the whole run, and the key set that verifies it."""
    key = Ed25519PrivateKey.generate()
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    claims = CredentialClaims(
        issuer="eid.vn",
        share_id="shr_" + os.urandom(10).hex(),
        issued_at=now,
        expires_at=now + datetime.timedelta(days=1),
        audience=None,
        personal_id="079203001234",
        full_name="Tôn Nữ Hoàng Phương Thảo Nguyên",
        birth_date="2003-02-28",
        gender="female",
    )
    keys = KeySet([VerificationKey("kbench", key.public_key().public_bytes_raw())])
    return issue_credential(claims, "kbench", key), keys
