"""What the bench measures: eid Verify (token, password) and ShareViaQR over gRPC, the
bare echo baseline, and the bare Argon2id and Ed25519 ceilings.

Every gRPC workload goes through :func:`eid_client.loadgen.run_load` with one
channel and the same concurrency, so the echo and eid figures are comparable.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import re
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Self

import argon2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc import aio

from bench.echo_server import METHOD as ECHO_METHOD
from bench.stack import CHANNEL_OPTIONS, BenchError, EidServer
from eid_client import AsyncEidClient
from eid_client.loadgen import LoadResult, NotVerifiedError, channel_options, run_load
from eid_service.demo import demo_citizens
from eid_service.domain.citizen import Demographics, age_on

PASSWORD = "bench-Passw0rd-2024"  # noqa: S105 (a throwaway account in a temporary database)
SHARE_ATTRIBUTES = ("full_name", "birth_date", "gender")
SHARE_TTL = datetime.timedelta(hours=1)
# Issuing is setup, not a measurement: a few at a time keeps the server's SQLite
# write lock from timing out (see the report for ShareViaQR at higher concurrency).
ISSUE_CONCURRENCY = 4
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


# Verify(password) spreads over several citizens, as real traffic does: checks
# of one account run one at a time by design (the attempt limit depends on it).
PASSWORD_CITIZENS = 8


def bench_citizens(today: datetime.date) -> list[Demographics]:
    """Demo citizens old enough to register themselves, the first one first."""
    adults = [c for c in demo_citizens() if age_on(c.birth_date, today) >= 18]
    if len(adults) < PASSWORD_CITIZENS:
        raise BenchError("too few adults in the demo registry")
    return adults[:PASSWORD_CITIZENS]


def _phone(index: int) -> tuple[str, str]:
    return f"091234{index:04d}", f"+8491234{index:04d}"


def _latest_code(outbox: Path, phone_e164: str) -> str | None:
    try:
        lines = outbox.read_text("utf-8").splitlines()
    except FileNotFoundError:  # nothing sent yet
        return None
    for line in reversed(lines):
        message = json.loads(line)
        found = CODE_PATTERN.search(message.get("body", ""))
        if message.get("to") == phone_e164 and found:
            return found.group(1)
    return None


async def activation_code(outbox: Path, phone_e164: str) -> str:
    """The newest code sent to ``phone_e164`` in the development outbox file; the
    server's outbox dispatcher delivers it shortly after Register commits."""
    try:
        async with asyncio.timeout(OUTBOX_WAIT_SECONDS):
            while True:
                code = await asyncio.to_thread(_latest_code, outbox, phone_e164)
                if code is not None:
                    return code
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise BenchError(f"no activation code for {phone_e164} in {outbox}") from None


class GrpcWorkloads:
    """The echo channel and the eid client, plus the one citizen the eid calls use."""

    def __init__(
        self,
        echo_address: str,
        eid: EidServer,
        *,
        concurrency: int,
        channels: int,
        progress: bool,
    ) -> None:
        self._eid_server = eid
        self.concurrency = concurrency
        self.progress = progress
        # Each channel its own TCP connection: eid's workers share the port with
        # SO_REUSEPORT, which spreads connections, not calls, over them.
        options = CHANNEL_OPTIONS + channel_options()
        self._echo_channels = [aio.insecure_channel(echo_address, options) for _ in range(channels)]
        # No serializers: the echo call sends and receives raw bytes.
        self._echo = [c.unary_unary(ECHO_METHOD, None, None) for c in self._echo_channels]
        self._eid = [
            AsyncEidClient(
                eid.address, api_key=eid.api_key, timeout=CALL_TIMEOUT_SECONDS, options=options
            )
            for _ in range(channels)
        ]
        self.eid = self._eid[0]  # for the setup calls
        self.citizens = bench_citizens(datetime.datetime.now(datetime.UTC).date())
        self.citizen = self.citizens[0]  # shares tokens
        self.sample_token = ""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for client in self._eid:
            await client.close()
        for channel in self._echo_channels:
            await channel.close(None)

    async def enroll(self) -> None:
        """Register and activate the citizens, and keep one token to size the echo payload."""
        for index, c in enumerate(self.citizens):
            national, e164 = _phone(index)
            await self.eid.register(
                personal_id=c.personal_id,
                full_name=c.full_name,
                birth_date=c.birth_date,
                gender=c.gender.value,
                phone_number=national,
            )
            code = await activation_code(self._eid_server.outbox, e164)
            await self.eid.activate(
                personal_id=c.personal_id, activation_code=code, new_password=PASSWORD
            )
        _, tokens = await self.issue_tokens(1)
        if not tokens:
            raise BenchError("ShareViaQR issued no token")
        self.sample_token = tokens[0]

    async def echo(self, total: int) -> LoadResult:
        payload = self.sample_token.encode("ascii")

        async def call(i: int) -> None:
            echo = self._echo[i % len(self._echo)]
            if await echo(payload, timeout=CALL_TIMEOUT_SECONDS) != payload:
                raise BenchError("the echo server changed the payload")

        return await self._run(call, total, "bare gRPC echo")

    async def issue_tokens(self, total: int) -> tuple[LoadResult, list[str]]:
        """``total`` fresh share tokens, from a fresh session (sessions last 15 minutes)."""
        signed_in = await self.eid.sign_in(personal_id=self.citizen.personal_id, password=PASSWORD)
        tokens: list[str] = []

        async def call(i: int) -> None:
            share = await self._eid[i % len(self._eid)].share_via_qr(
                attributes=SHARE_ATTRIBUTES,
                ttl=SHARE_TTL,
                session_token=signed_in.session_token,
            )
            tokens.append(share.token)

        result = await run_load(
            call,
            total=total,
            concurrency=ISSUE_CONCURRENCY,
            progress=self.progress,
            label="eid ShareViaQR (issuing tokens)",
        )
        return result, tokens

    async def verify_token(self, tokens: list[str]) -> LoadResult:
        async def call(i: int) -> None:
            if not (await self._eid[i % len(self._eid)].redeem_share(tokens[i])).verified:
                raise NotVerifiedError

        return await self._run(call, len(tokens), "eid Verify (token)")

    async def verify_password(self, total: int) -> LoadResult:
        ids = [c.personal_id for c in self.citizens]

        async def call(i: int) -> None:
            client = self._eid[i % len(self._eid)]
            pid = ids[i % len(ids)]
            if not (await client.verify_password(personal_id=pid, password=PASSWORD)).verified:
                raise NotVerifiedError

        return await self._run(call, total, "eid Verify (password)")

    async def _run(
        self, call: Callable[[int], Awaitable[object]], total: int, label: str
    ) -> LoadResult:
        return await run_load(
            call,
            total=total,
            concurrency=self.concurrency,
            progress=self.progress,
            label=label,
        )


class BareCrypto:
    """The ceilings under eid's two Verify modes, measured in this process."""

    def __init__(self, message: bytes, *, progress: bool) -> None:
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
        key = Ed25519PrivateKey.generate()
        self._message = message
        self._signature = key.sign(message)
        self._public_key = key.public_key()

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
