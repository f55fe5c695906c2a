"""A signed-in citizen locks and unlocks single Verify modes (rules:
domain/mode_locks.py). Each change is audited; the Verify paths read the
lock with the account (Accounts.credential(..., mode)) and refuse a locked
mode only to a party that proved the credential."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from eid_service.domain.mode_locks import (
    ModeState,
    lockable_mode,
    mode_states,
    temporary_unlock,
)
from eid_service.domain.party import VerifyMode
from eid_service.use_cases.auth import citizen_of_session, session_missing
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.ports import AccountView, AuditEntry, Repositories, UnitOfWork
from eid_service.use_cases.replies import Answer, Reply, once, session_scope


@dataclass(frozen=True)
class ModeLockChange:
    """Lock (`unlock` False) or unlock a mode; `unlock_for` makes an unlock temporary."""

    mode: VerifyMode | None
    unlock: bool = False
    unlock_for: timedelta | None = None


async def change_mode_lock(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    access_token: str | None,
    change: ModeLockChange,
    reply: Reply[list[ModeState], Answer],
) -> Answer:
    """Applies the change; the answer lists every lockable mode after it."""
    if not access_token:
        raise session_missing()
    mode = lockable_mode(change.mode)
    window = None if change.unlock_for is None else temporary_unlock(change.unlock_for)
    now = ctx.clock()
    caller = session_scope(ctx, access_token)

    def apply(r: Repositories) -> Answer:
        earlier = reply.replay(r, caller)
        if earlier is not None:
            return earlier
        citizen = citizen_of_session(r, access_token, now)
        if not change.unlock:
            # Ordered against a Verify recording a password compared before
            # it: that Verify ends before this lock, or sees it.
            r.accounts.hold(citizen.id, alone=True)
            r.mode_locks.lock(citizen.id, mode, now)
            outcome = "locked"
        elif window is None:
            r.mode_locks.unlock(citizen.id, mode, None)
            outcome = "unlocked"
        else:
            r.mode_locks.unlock(citizen.id, mode, now + window)
            outcome = f"unlocked_{int(window.total_seconds())}s"
        _audit(r, citizen, mode, outcome, now)
        return reply.finish(r, caller, mode_states(r.mode_locks.of_account(citizen.id), now), now)

    return await once(uow, reply, caller, apply)


async def verify_mode_locks(
    uow: UnitOfWork, ctx: UseCaseContext, access_token: str | None
) -> list[ModeState]:
    """Every lockable mode of the signed-in citizen, locked or not."""
    if not access_token:
        raise session_missing()
    now = ctx.clock()

    def read(r: Repositories) -> list[ModeState]:
        citizen = citizen_of_session(r, access_token, now)
        return mode_states(r.mode_locks.of_account(citizen.id), now)

    return await uow.read(read)


def _audit(
    r: Repositories, citizen: AccountView, mode: VerifyMode, outcome: str, now: datetime
) -> None:
    # The action names the mode ("mode_lock.one_time_code"); within 32 characters.
    action = f"mode_lock.{mode.value}"
    r.audit.append(AuditEntry(citizen.subject, citizen.id, None, action, outcome, now))
