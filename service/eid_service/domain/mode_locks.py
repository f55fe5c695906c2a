"""A citizen's locks on single Verify modes.

A citizen who never verifies by, say, one-time code can lock that mode: a
party's Verify in it is then refused (AUTH_MODE_LOCKED, told only to a party
that proved the credential; others get a wrong credential's answer) and
RequestOtp sends no code. Unlocking is for good, or for a few minutes, after
which the mode is locked again: a citizen who keeps a mode locked opens it
only while a party is verifying them.

The QR share mode cannot be locked: every share is the citizen's own act on
their device, and they can already revoke it (RevokeShare); a lock there
would only break the shares they hand out. The other modes can be started by
a party without the citizen's device (approval requests too: a lock stops
unwanted prompts)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from eid_service.domain.errors import InvalidInput, PreconditionFailed
from eid_service.domain.party import VerifyMode

# In the order they are listed to the citizen.
LOCKABLE_MODES = (
    VerifyMode.PASSWORD,
    VerifyMode.ONE_TIME_CODE,
    VerifyMode.APPROVAL,
    VerifyMode.DEMOGRAPHIC,
    VerifyMode.BIOMETRIC,
)
MIN_TEMPORARY_UNLOCK = timedelta(minutes=1)
MAX_TEMPORARY_UNLOCK = timedelta(hours=24)


@dataclass(frozen=True)
class ModeLock:
    """A lock on one mode; while `unlocked_until` is ahead it is temporarily open."""

    mode: VerifyMode
    unlocked_until: datetime | None = None

    def holds(self, now: datetime) -> bool:
        return self.unlocked_until is None or now >= self.unlocked_until


@dataclass(frozen=True)
class ModeState:
    """A lockable mode as the citizen sees it now."""

    mode: VerifyMode
    locked: bool
    # During a temporary unlock: when the mode locks again.
    relocks_at: datetime | None = None


def mode_states(locks: Iterable[ModeLock], now: datetime) -> list[ModeState]:
    """Every lockable mode, locked or not, in LOCKABLE_MODES order."""
    by_mode = {lock.mode: lock for lock in locks}
    states = []
    for mode in LOCKABLE_MODES:
        lock = by_mode.get(mode)
        if lock is None:
            states.append(ModeState(mode, locked=False))
        elif lock.holds(now):
            states.append(ModeState(mode, locked=True))
        else:
            states.append(ModeState(mode, locked=False, relocks_at=lock.unlocked_until))
    return states


def lockable_mode(mode: VerifyMode | None, field: str = "mode") -> VerifyMode:
    """The mode to lock or unlock; InvalidInput for none or QR share."""
    if mode is None:
        raise InvalidInput.of(
            field, "MODE_UNSPECIFIED", "name the verification mode to lock or unlock"
        )
    if mode not in LOCKABLE_MODES:
        names = ", ".join(m.value for m in LOCKABLE_MODES)
        raise InvalidInput.of(
            field,
            "MODE_NOT_LOCKABLE",
            f"{mode.value} cannot be locked (revoke shares instead); lockable: {names}",
        )
    return mode


def temporary_unlock(duration: timedelta, field: str = "unlock_for") -> timedelta:
    """How long a temporary unlock lasts: 1 minute to 24 hours."""
    if not MIN_TEMPORARY_UNLOCK <= duration <= MAX_TEMPORARY_UNLOCK:
        raise InvalidInput.of(
            field,
            "UNLOCK_DURATION_OUT_OF_RANGE",
            "a temporary unlock lasts from 1 minute to 24 hours",
        )
    return duration


def mode_locked(mode: VerifyMode) -> PreconditionFailed:
    return PreconditionFailed(
        reason="AUTH_MODE_LOCKED",
        message=f"the citizen has locked verification by {mode.value}; they can unlock it"
        " in their app, or verify them another way",
        metadata={"mode": mode.value},
    )
