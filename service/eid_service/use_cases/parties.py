"""Relying-party administration, as an operator does it (`eid-server party`).

Every write is one transaction. Suspending a suspended party, or resuming an
active one, is a success that changes nothing (`StatusChange.changed` is
False), so a retried command is harmless. Running servers see a change
within party_cache.TTL_SECONDS (see auth.authenticate_party)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from eid_service.domain.errors import InvalidInput, NotFound, PreconditionFailed
from eid_service.domain.party import (
    DEFAULT_CITIZEN_RATE_PER_MINUTE,
    DEFAULT_KEY_OVERLAP,
    DEFAULT_MODES,
    DEFAULT_RATE_PER_MINUTE,
    PARTY_ID_PATTERN,
    RECENT_KEY_ROTATION,
    Grant,
    PartyStatus,
    VerifyMode,
    check_key_overlap,
    check_rate_limits,
    new_party,
    parse_party_id,
)
from eid_service.domain.share import Attribute
from eid_service.use_cases import pages
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.ports import PartyRecord, Repositories, UnitOfWork


@dataclass(frozen=True)
class NewParty:
    name: str
    scopes: frozenset[Attribute]
    contact: str = ""
    modes: frozenset[VerifyMode] = DEFAULT_MODES
    rate_per_minute: int = DEFAULT_RATE_PER_MINUTE
    citizen_rate_per_minute: int = DEFAULT_CITIZEN_RATE_PER_MINUTE
    # SHA-256 of the DER client certificate its calls must come with.
    client_cert_sha256: bytes | None = None
    # Scopes beyond attributes: biometric_match.
    grants: frozenset[Grant] = frozenset()


@dataclass(frozen=True)
class CreatedParty:
    record: PartyRecord
    api_key: str  # shown once: only its keyed digest is stored


@dataclass(frozen=True)
class PartyPage:
    parties: list[PartyRecord]
    next_page_token: str = field(default="")


@dataclass(frozen=True)
class StatusChange:
    record: PartyRecord  # as it is now
    changed: bool  # False: the party had that status already


@dataclass(frozen=True)
class RotatedKey:
    api_key: str  # shown once
    # The key it replaces works until then (at once, for an overlap of 0).
    old_key_expires_at: datetime
    # A key from an earlier rotation was still in its overlap: it stopped now.
    cut_short: bool


def party_not_found(party_id: str) -> NotFound:
    return NotFound(reason="PARTY_NOT_FOUND", message=f"no relying party has the id {party_id}")


def key_recently_rotated(party_id: str, ago: timedelta) -> PreconditionFailed:
    seconds = max(0, int(ago.total_seconds()))
    text = f"{seconds} s" if seconds < 60 else f"{seconds // 60} min"
    return PreconditionFailed(
        reason="KEY_RECENTLY_ROTATED",
        message=f"not rotated: the current API key of {party_id} was made by a rotation"
        f" {text} ago, perhaps by another operator, and may already be in the party's hands;"
        " --force rotates it anyway (e.g. if that key leaked too): it stops as well",
        metadata={"rotated_seconds_ago": str(seconds)},
    )


def _found(r: Repositories, party_id: str, *, for_change: bool = False) -> PartyRecord:
    found = r.parties.get(parse_party_id(party_id, "party_id"), for_change=for_change)
    if found is None:
        raise party_not_found(party_id)
    return found


async def create_party(uow: UnitOfWork, ctx: UseCaseContext, cmd: NewParty) -> CreatedParty:
    """Onboards an ACTIVE party; InvalidInput names a bad field."""
    party = new_party(
        cmd.name,
        cmd.scopes,
        contact=cmd.contact,
        modes=cmd.modes,
        rate_per_minute=cmd.rate_per_minute,
        citizen_rate_per_minute=cmd.citizen_rate_per_minute,
        client_cert_sha256=cmd.client_cert_sha256,
        grants=cmd.grants,
    )
    now = ctx.clock()
    api_key = await uow.atomically(lambda r: r.parties.create(party, now))
    return CreatedParty(PartyRecord(party, now, None, None), api_key)


async def show_party(uow: UnitOfWork, party_id: str) -> PartyRecord:
    return await uow.read(lambda r: _found(r, party_id))


async def list_parties(uow: UnitOfWork, page_size: int, page_token: str) -> PartyPage:
    """Undeleted parties, oldest first (AIP-158 pages)."""
    size = pages.page_size(page_size)
    after = pages.after_id(page_token, PARTY_ID_PATTERN)

    def page(r: Repositories) -> PartyPage:
        found = r.parties.list_page(after, size + 1)
        shown = found[:size]
        more = len(found) > size
        return PartyPage(shown, pages.next_page_token(shown[-1].party.id) if more else "")

    return await uow.read(page)


async def _set_status(
    uow: UnitOfWork, ctx: UseCaseContext, party_id: str, status: PartyStatus
) -> StatusChange:
    now = ctx.clock()

    def change(r: Repositories) -> StatusChange:
        found = _found(r, party_id)
        if found.party.status is status:
            return StatusChange(found, changed=False)
        r.parties.set_status(found.party.id, status, now)
        suspended_at = now if status is PartyStatus.SUSPENDED else None
        changed = replace(found, party=replace(found.party, status=status))
        return StatusChange(replace(changed, suspended_at=suspended_at), changed=True)

    return await uow.atomically(change)


async def suspend_party(uow: UnitOfWork, ctx: UseCaseContext, party_id: str) -> StatusChange:
    """Its calls are refused (PARTY_SUSPENDED) until it is resumed; idempotent."""
    return await _set_status(uow, ctx, party_id, PartyStatus.SUSPENDED)


async def resume_party(uow: UnitOfWork, ctx: UseCaseContext, party_id: str) -> StatusChange:
    """A suspended party is ACTIVE again; resuming an active one changes nothing."""
    return await _set_status(uow, ctx, party_id, PartyStatus.ACTIVE)


async def set_party_limits(
    uow: UnitOfWork, party_id: str, rate_per_minute: int | None, citizen_rate_per_minute: int | None
) -> PartyRecord:
    """New rate limits (None keeps one as it is); InvalidInput names a bad
    one. Servers count by them once their cached copy of the party lapses;
    the tokens a bucket holds are capped by the new limit at once."""

    def change(r: Repositories) -> PartyRecord:
        found = _found(r, party_id)
        party = replace(
            found.party,
            rate_per_minute=found.party.rate_per_minute
            if rate_per_minute is None
            else rate_per_minute,
            citizen_rate_per_minute=found.party.citizen_rate_per_minute
            if citizen_rate_per_minute is None
            else citizen_rate_per_minute,
        )
        check_rate_limits(party.rate_per_minute, party.citizen_rate_per_minute)
        r.parties.set_limits(party.id, party.rate_per_minute, party.citizen_rate_per_minute)
        return replace(found, party=party)

    return await uow.atomically(change)


async def set_party_scopes(
    uow: UnitOfWork,
    party_id: str,
    scopes: frozenset[Attribute],
    grants: frozenset[Grant] = frozenset(),
) -> PartyRecord:
    """What the party may read from now on (granting contact, say, or taking
    it away), and the grants it holds (biometric_match: all of them are
    replaced too). Servers apply it once their cached copy of the party
    lapses; a share or approval it collects later releases only what the new
    scopes allow."""
    if not scopes and not grants:
        raise InvalidInput.of("scopes", "SCOPES_EMPTY", "name at least one scope or attribute")

    def change(r: Repositories) -> PartyRecord:
        found = _found(r, party_id)
        r.parties.set_scopes(found.party.id, scopes, grants)
        return replace(found, party=replace(found.party, scopes=scopes, grants=grants))

    return await uow.atomically(change)


async def bind_client_certificate(
    uow: UnitOfWork, party_id: str, sha256: bytes | None
) -> PartyRecord:
    """From now on the party's calls must come with the client certificate
    whose DER has this SHA-256, over mutual TLS (None: its API key alone
    again). Servers apply it once their cached copy of the party lapses."""

    def change(r: Repositories) -> PartyRecord:
        found = _found(r, party_id)
        r.parties.set_client_certificate(found.party.id, sha256)
        return replace(found, party=replace(found.party, client_cert_sha256=sha256))

    return await uow.atomically(change)


async def delete_party(uow: UnitOfWork, ctx: UseCaseContext, party_id: str) -> PartyRecord:
    """Its keys stop working for good; the row stays (audit events and shares
    name it), found by nothing else. The party as it was."""
    now = ctx.clock()

    def delete(r: Repositories) -> PartyRecord:
        found = _found(r, party_id)
        r.parties.delete(found.party.id, now)
        return found

    return await uow.atomically(delete)


async def rotate_party_key(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    party_id: str,
    overlap: timedelta = DEFAULT_KEY_OVERLAP,
    *,
    force: bool = False,
) -> RotatedKey:
    """A new API key; the current one keeps working for `overlap` (0 to 30
    days; 0 for a leaked key), so the party can switch without downtime. A
    key still in the overlap of an earlier rotation stops at once.

    A current key that a rotation made less than RECENT_KEY_ROTATION ago is
    not rotated (PreconditionFailed KEY_RECENTLY_ROTATED, nothing written)
    unless `force`: it may be another operator's, already handed to the
    party, which the new rotation would cut off unannounced (two operators
    rotating a leaked key with an overlap of 0, seconds apart). A key made
    when the party was created is never recent."""
    check_key_overlap(overlap)
    now = ctx.clock()

    def rotate(r: Repositories) -> RotatedKey:
        # Held: a rotation that read the party before another's commit
        # computed cut_short from the stale row, and kept quiet about the
        # key it stopped.
        found = _found(r, party_id, for_change=True)
        # Checked on the held row: of rotations at once, one rotates and
        # every other one finds its key.
        made = found.key_rotated_at
        if not force and made is not None and now - made < RECENT_KEY_ROTATION:
            raise key_recently_rotated(found.party.id, now - made)
        api_key = r.parties.rotate_key(found.party.id, overlap, now)
        if api_key is None:  # deleted meanwhile (the store serialises writes)
            raise party_not_found(party_id)
        earlier = found.previous_key_expires_at
        return RotatedKey(api_key, now + overlap, earlier is not None and earlier > now)

    return await uow.atomically(rotate)
