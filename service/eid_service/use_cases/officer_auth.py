"""Who calls as a registration officer: the key in `x-officer-key`, the
enabled officer it belongs to, and the role the call needs.

No officer key at all is UNAUTHENTICATED, as an unknown key or a disabled
officer's; a citizen session or a relying party's key sent instead of an
officer's key is PERMISSION_DENIED (the caller is someone, but not an
officer); an officer without the role is PERMISSION_DENIED too."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from eid_service.domain.errors import DomainError, PermissionDenied, Unauthenticated
from eid_service.domain.officer import Officer, OfficerRole, officer_role_missing
from eid_service.domain.rate_limits import OfficerLimits
from eid_service.domain.request_id import REQUEST_ID_REUSED
from eid_service.use_cases.one_time_codes import hit_limits
from eid_service.use_cases.ports import Repositories, UnitOfWork
from eid_service.use_cases.replies import Answer, Reply


@dataclass(frozen=True)
class OfficerCall:
    """The credentials an officer's call came with."""

    officer_key: str | None = field(default=None, repr=False)
    # A citizen session or a relying party's key came (instead).
    other_credential: bool = False


def officer_key_invalid() -> Unauthenticated:
    return Unauthenticated(
        reason="OFFICER_KEY_INVALID",
        message="send a registration officer's key as x-officer-key (an unknown key, or a"
        " disabled officer's, is not one)",
    )


def officer_required() -> PermissionDenied:
    return PermissionDenied(
        reason="OFFICER_REQUIRED",
        message="only a registration officer may do this: a citizen session or a relying"
        " party's key does not allow it; send an officer's key as x-officer-key",
    )


def officer_key_of(call: OfficerCall) -> str:
    """The officer key to look up, or the refusal of a call without one
    (before any work: nothing to count, nothing to read)."""
    if call.officer_key:
        return call.officer_key
    if call.other_credential:
        raise officer_required()
    raise officer_key_invalid()


def officer_with_role(
    r: Repositories, key: str, role: OfficerRole
) -> Officer | Unauthenticated | PermissionDenied:
    """The enabled officer this key belongs to, if it holds `role` (inside
    the call's transaction); else the refusal."""
    officer = r.officers.by_key(key)
    if officer is None:
        return officer_key_invalid()
    if role not in officer.roles:
        return officer_role_missing(role)
    return officer


async def authenticate_officer(uow: UnitOfWork, call: OfficerCall, role: OfficerRole) -> Officer:
    """The calling officer, who holds `role`, before anything else is read
    or checked (a read of its own); else the refusal, raised."""
    key = officer_key_of(call)
    found = await uow.read(lambda r: officer_with_role(r, key, role))
    if not isinstance(found, Officer):
        raise found
    return found


def officer_replay(
    r: Repositories,
    reply: Reply[Any, Answer],
    caller: str,
    limits: OfficerLimits,
    officer: Officer,
    now: datetime,
) -> Answer | DomainError | None:
    """The earlier answer to this request id (a retry is not a new call);
    else None once the call is counted against the officer's allowance, or
    TOO_MANY_REQUESTS when the hour's or the day's is spent. Nothing about
    the citizen is read first, so that refusal is the same whatever ID
    number was asked about. A request id reused for other content counts as
    a call too (returned, so the count is committed): else a key over its
    allowance could still try ID numbers against the ids its officer used,
    REQUEST_ID_REUSED telling a wrong guess from a replay (found in review)."""
    try:
        earlier = reply.replay(r, caller)
    except DomainError as refused:
        if refused.reason != REQUEST_ID_REUSED:
            raise  # a kept refusal, replayed
        return _over_limit(r, limits, officer, now) or refused
    if earlier is not None:
        return earlier
    return _over_limit(r, limits, officer, now)


def _over_limit(
    r: Repositories, limits: OfficerLimits, officer: Officer, now: datetime
) -> DomainError | None:
    return hit_limits(r, now, [(limits.per_hour, officer.id), (limits.per_day, officer.id)])


def officer_caller(officer: Officer) -> str:
    """The request-id scope of an officer."""
    return f"officer:{officer.id}"
