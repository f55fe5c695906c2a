"""What each workload calls: one RPC per measured call, on data prepared
beforehand (see :mod:`eid_client.loadgen.prepare`).

A call takes a client and one prepared item. Items of a workload that
``consumes`` them (a share token is redeemed once, a citizen registers once) are
each used by one call; the others are used round-robin.
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from eid_client.async_client import AsyncEidClient
from eid_client.loadgen.citizens import Citizen
from eid_client.loadgen.result import NotVerifiedError

# A share must outlive the run that redeems it; the server allows up to 24 hours.
SHARE_TTL = datetime.timedelta(hours=1)


class NotServingError(Exception):
    """The health check answered, but not SERVING."""


@dataclass(frozen=True)
class Session:
    """A citizen's session token and the attributes each share carries."""

    token: str = field(repr=False)
    attributes: tuple[str, ...]


async def _health(client: AsyncEidClient, _: object) -> None:
    if await client.health() != "SERVING":
        raise NotServingError


async def _verify_password(client: AsyncEidClient, c: Citizen) -> None:
    answer = await client.verify_password(personal_id=c.personal_id, password=c.password)
    if not answer.verified:
        raise NotVerifiedError


async def _verify_token(client: AsyncEidClient, token: str) -> None:
    if not (await client.redeem_share(token)).verified:
        raise NotVerifiedError


async def _verify_otp(client: AsyncEidClient, item: tuple[str, str]) -> None:
    personal_id, code = item
    if not (await client.verify_one_time_code(personal_id, code)).verified:
        raise NotVerifiedError


async def _verify_demographic(client: AsyncEidClient, item: tuple[Citizen, bool]) -> None:
    c, partial = item
    answer = await client.verify_demographic(
        c.personal_id,
        full_name=c.full_name or None,
        birth_date=c.birth_date or None,
        gender=c.gender or None,
        partial=partial,
    )
    if not answer.verified:
        raise NotVerifiedError


async def _register(client: AsyncEidClient, item: tuple[Citizen, bytes]) -> None:
    c, portrait = item
    await client.register(
        personal_id=c.personal_id,
        full_name=c.full_name,
        birth_date=c.birth_date,
        gender=c.gender,
        phone_number=c.phone,
        portrait=portrait,
    )


async def _sign_in(client: AsyncEidClient, c: Citizen) -> None:
    await client.sign_in(personal_id=c.personal_id, password=c.password, device_name="loadgen")


async def _share_via_qr(client: AsyncEidClient, session: Session) -> None:
    await client.share_via_qr(
        attributes=session.attributes, ttl=SHARE_TTL, session_token=session.token
    )


async def _start_approval(client: AsyncEidClient, personal_id: str) -> None:
    await client.start_approval(personal_id, message="Load test")


@dataclass(frozen=True)
class Workload:
    name: str  # the CLI's, and "workload" in --json
    label: str  # the RPC and its mode, for people
    rpc: str  # the gRPC method
    call: Callable[[AsyncEidClient, Any], Awaitable[None]]
    summary: str
    consumes: bool = False
    api_key: bool = True  # a relying-party call


WORKLOADS = {
    w.name: w
    for w in (
        Workload(
            "health",
            "Health check",
            "grpc.health.v1.Health/Check",
            _health,
            "the standard gRPC health check: the floor under every RPC",
            api_key=False,
        ),
        Workload(
            "verify-password",
            "Verify (password)",
            "Verify",
            _verify_password,
            "check citizens' ID numbers and passwords (Argon2id on the server)",
        ),
        Workload(
            "verify-token",
            "Verify (QR share token)",
            "Verify",
            _verify_token,
            "redeem QR share tokens, each once; the tokens are issued beforehand",
            consumes=True,
        ),
        Workload(
            "verify-otp",
            "Verify (one-time code)",
            "Verify",
            _verify_otp,
            "check one-time codes, one per citizen; RequestOtp and the codes beforehand",
            consumes=True,
        ),
        Workload(
            "verify-demographic",
            "Verify (demographic)",
            "Verify",
            _verify_demographic,
            "match citizens' declared name, birth date and gender against the registry",
        ),
        Workload(
            "register",
            "Register",
            "Register",
            _register,
            "register citizens of the population registry, each once",
            consumes=True,
            api_key=False,
        ),
        Workload(
            "sign-in",
            "SignIn",
            "SignIn",
            _sign_in,
            "open citizen sessions with ID number and password",
            api_key=False,
        ),
        Workload(
            "share-via-qr",
            "ShareViaQR",
            "ShareViaQR",
            _share_via_qr,
            "issue QR share tokens from one citizen session",
            api_key=False,
        ),
        Workload(
            "start-approval",
            "StartApproval",
            "StartApproval",
            _start_approval,
            "start approval requests (the QR variant, or pushed to --id citizens)",
        ),
    )
}
