"""The data each workload's calls need, made before the clock starts: share
tokens, one-time codes, sessions, the citizens of a ``--citizens`` file.

Setup calls go a few at a time (``--issue-concurrency``) and any failure stops
the run: a load test on half its data would measure something else.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eid_client._commands import UsageError, resolve_password
from eid_client.async_client import AsyncEidClient
from eid_client.loadgen.citizens import Citizen, citizens_from, e164, with_password
from eid_client.loadgen.runner import run_load
from eid_client.loadgen.workloads import SHARE_TTL, Session

CODE_PATTERN = re.compile(r"\b(\d{6})\b")
OUTBOX_WAIT_SECONDS = 30.0


class PrepareError(Exception):
    """Preparing the data failed (a setup call or a missing code)."""


async def prepare(
    name: str,
    args: argparse.Namespace,
    client: AsyncEidClient,
    count: int | None,
    progress: bool,
) -> list[Any]:
    """The items for workload ``name``: ``count`` of them for a workload that
    consumes its items (None: not known, only for the others)."""
    if name in ("health", "start-approval"):
        return list(getattr(args, "id", None) or [""])
    if name in ("verify-password", "sign-in"):
        citizens = citizens_from(args.citizens, args.id)
        if all(c.password for c in citizens):
            return citizens
        return with_password(citizens, resolve_password(args.password))
    if name == "verify-demographic":
        return [(c, args.partial) for c in _demographic_citizens(args)]
    if name == "register":
        need = ("full_name", "birth_date", "gender", "phone", "portrait")
        citizens = citizens_from(args.citizens, None, need=need)
        return [(c, _portrait(c, i)) for i, c in enumerate(_enough(citizens, count, "register"))]
    if name == "share-via-qr":
        return [await _session(args, client)]
    assert count is not None  # the remaining workloads consume their items
    if name == "verify-token":
        return await _tokens(args, client, count, progress)
    if name == "verify-otp":
        citizens = citizens_from(args.citizens, None, need=("phone",))
        return await _otp_codes(args, client, _enough(citizens, count, "verify-otp"))
    raise AssertionError(f"no preparation for {name}")


def _portrait(citizen: Citizen, row: int) -> bytes:
    try:
        return citizen.portrait_bytes()
    except ValueError:
        raise UsageError(f"citizen {row + 1}: the portrait column is not base64") from None


def _enough(citizens: list[Citizen], count: int | None, name: str) -> list[Citizen]:
    if count is None or len(citizens) < count:
        raise UsageError(
            f"{name} makes one call per citizen: the run needs {count or 'a known number of'} "
            f"(warm-up included), the file has {len(citizens)}"
        )
    return citizens[:count]


def _demographic_citizens(args: argparse.Namespace) -> list[Citizen]:
    if args.citizens is None and args.id and len(args.id) == 1:
        one = Citizen(args.id[0], "", args.name or "", args.birth_date or "", args.gender or "")
        citizens = [one]
    else:
        citizens = citizens_from(args.citizens, args.id)
    # As the server: gender and a birth year are what the ID number tells.
    if any(not (c.full_name or len(c.birth_date) == len("2000-01-01")) for c in citizens):
        raise UsageError(
            "verify-demographic needs each citizen's full_name or full birth_date (YYYY-MM-DD),"
            " with gender if you like: the server refuses a claim of only what the ID number"
            " tells (gender, birth year)"
        )
    return citizens


async def _session(args: argparse.Namespace, client: AsyncEidClient) -> Session:
    attributes = tuple(a.strip() for a in args.attributes.split(",") if a.strip())
    if args.session:
        return Session(args.session, attributes)
    if not args.id:
        raise UsageError(f"{args.workload} needs a citizen: --id (and a password) or --session")
    password = resolve_password(args.password)
    signed_in = await client.sign_in(personal_id=args.id[0], password=password)
    return Session(signed_in.session_token, attributes)


async def _tokens(
    args: argparse.Namespace, client: AsyncEidClient, count: int, progress: bool
) -> list[str]:
    session = await _session(args, client)
    tokens: list[str] = []

    async def issue(_: int) -> None:
        share = await client.share_via_qr(
            attributes=session.attributes, ttl=SHARE_TTL, session_token=session.token
        )
        tokens.append(share.token)

    issued = await run_load(
        issue,
        total=count,
        concurrency=args.issue_concurrency,
        progress=progress,
        label="preparing: ShareViaQR",
    )
    if issued.errors:
        raise PrepareError(f"issuing share tokens failed: {dict(issued.error_kinds)}")
    return tokens


def _codes_by_phone(outbox: Path) -> dict[str, list[str]]:
    """Every code in a development outbox file (JSON lines), per phone, oldest first."""
    codes: dict[str, list[str]] = {}
    try:
        lines = outbox.read_text("utf-8").splitlines()
    except FileNotFoundError:  # nothing sent yet
        return codes
    for line in lines:
        message = json.loads(line)
        found = CODE_PATTERN.search(message.get("body", ""))
        if found:
            codes.setdefault(message.get("to", ""), []).append(found.group(1))
    return codes


async def _otp_codes(
    args: argparse.Namespace, client: AsyncEidClient, citizens: Sequence[Citizen]
) -> list[tuple[str, str]]:
    """RequestOtp for each citizen, then each one's new code from the outbox file
    of a development server (EID_OUTBOX_FILE): (ID number, code) pairs."""
    outbox: Path = args.outbox
    phones = [e164(c.phone) for c in citizens]
    before = await asyncio.to_thread(_codes_by_phone, outbox)
    requested = await run_load(
        lambda i: client.request_otp(citizens[i].personal_id),
        total=len(citizens),
        concurrency=args.issue_concurrency,
        label="preparing: RequestOtp",
    )
    if requested.errors:
        raise PrepareError(f"RequestOtp failed: {dict(requested.error_kinds)}")
    try:
        async with asyncio.timeout(OUTBOX_WAIT_SECONDS):
            while True:
                now = await asyncio.to_thread(_codes_by_phone, outbox)
                if all(len(now.get(p, [])) > len(before.get(p, [])) for p in phones):
                    break
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise PrepareError(f"codes missing in {outbox} after {OUTBOX_WAIT_SECONDS:g} s") from None
    return [(c.personal_id, now[p][-1]) for c, p in zip(citizens, phones, strict=True)]
