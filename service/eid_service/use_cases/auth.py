"""Who is calling: a relying party by API key, a citizen by session token."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import datetime

from eid_service.domain.account import require_state_active
from eid_service.domain.errors import PermissionDenied, Unauthenticated
from eid_service.domain.party import PartyStatus, RelyingParty
from eid_service.telemetry import calls
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.ports import AccountView, LiveSession, Repositories, UnitOfWork


def _no_certificate() -> bytes | None:
    return None


async def authenticate_party(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    api_key: str | None,
    client_certificate: Callable[[], bytes | None] = _no_certificate,
) -> RelyingParty:
    """The ACTIVE party whose API key (current, or previous within its
    rotation overlap) this is. An unknown or deleted party's key is
    UNAUTHENTICATED (API_KEY_INVALID); a SUSPENDED party is known but refused,
    PERMISSION_DENIED (PARTY_SUSPENDED).

    A party bound to a client certificate must also call with it (mutual
    TLS): `client_certificate` gives the SHA-256 of the call's verified
    certificate (DER), or None; it is asked only for bound parties, as
    reading the TLS peer costs more than the rest of this check. Without a
    certificate: UNAUTHENTICATED (CLIENT_CERTIFICATE_REQUIRED); with another:
    PERMISSION_DENIED (CLIENT_CERTIFICATE_MISMATCH). Both come before the
    suspension check, so a stolen key alone learns nothing about the party.

    Parties are cached by key, suspended or not, for party_cache.TTL_SECONDS
    (10 s): a suspension, resumption, deletion or the end of a key's overlap
    takes effect in every server process within that time, not at once."""
    if not api_key:
        raise Unauthenticated(
            reason="API_KEY_MISSING", message="send the relying party's API key as x-api-key"
        )
    party = ctx.parties.get(api_key)
    if party is None:
        now = ctx.clock()
        party = await ctx.parties.load(
            api_key, lambda: uow.read(lambda r: r.parties.by_api_key(api_key, now))
        )
        if party is None:
            raise Unauthenticated(reason="API_KEY_INVALID", message="the API key is not valid")
    # For the call's log line and telemetry (a refusal below included: which
    # party's key came without its certificate is worth an operator's eye).
    calls.note_party(party.id)
    if party.client_cert_sha256 is not None:
        _require_certificate(party.client_cert_sha256, client_certificate())
    if party.status is PartyStatus.SUSPENDED:
        raise PermissionDenied(
            reason="PARTY_SUSPENDED",
            message="this relying party is suspended; ask the eid operator to resume it",
        )
    return party


def _require_certificate(bound: bytes, presented: bytes | None) -> None:
    if presented is None:
        raise Unauthenticated(
            reason="CLIENT_CERTIFICATE_REQUIRED",
            message="this relying party is bound to a client certificate: call the"
            " mutual-TLS address with it",
        )
    if not hmac.compare_digest(bound, presented):
        raise PermissionDenied(
            reason="CLIENT_CERTIFICATE_MISMATCH",
            message="the client certificate is not the one this relying party is bound to",
        )


def session_missing() -> Unauthenticated:
    return Unauthenticated(
        reason="SESSION_MISSING",
        message="sign in and send the session as 'authorization: Bearer <token>'",
    )


def citizen_session(
    r: Repositories, access_token: str, now: datetime
) -> tuple[LiveSession, AccountView]:
    """The live session an access token opens and its ACTIVE account (inside a
    transaction). Locking an account ends its sessions, so a locked account
    has none; the state is checked anyway."""
    found = r.sessions.by_access_token(access_token, now)
    if found is None:
        raise Unauthenticated(
            reason="SESSION_INVALID",
            message="the session is not valid or has expired; refresh it or sign in again",
        )
    require_state_active(found[1].state)
    return found


def citizen_of_session(r: Repositories, access_token: str, now: datetime) -> AccountView:
    """The ACTIVE account a live session belongs to (inside a transaction)."""
    return citizen_session(r, access_token, now)[1]
