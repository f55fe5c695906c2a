"""A citizen's e-identity account and its state machine.

PENDING (registered, awaiting activation) -> ACTIVE (password set) <-> LOCKED;
any of them -> DEACTIVATED when the population registry records the citizen's
death (final: nothing leaves it). A child under 14 registered by a guardian
is DEPENDANT (no password, no phone) until, at 14 or over, it takes the
account over: DEPENDANT -> PENDING (Register with its own phone) -> ACTIVE
(domain/dependant.py).
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from eid_service.domain.citizen import Demographics
from eid_service.domain.errors import PreconditionFailed


class AccountState(enum.Enum):
    PENDING = "pending"
    ACTIVE = "active"
    LOCKED = "locked"
    # The registry recorded the citizen's death (the only cause today, so its
    # refusal says CITIZEN_DECEASED; another cause would need its own reason).
    DEACTIVATED = "deactivated"
    # A child's account managed by a guardian: no sign-in, no password;
    # verified only through QR shares the guardian makes (domain/dependant.py).
    DEPENDANT = "dependant"


class AccountLevel(enum.IntEnum):
    # Level 1: self-registered demographics. Level 2: plus in-person biometrics.
    LEVEL_1 = 1
    LEVEL_2 = 2


def account_locked() -> PreconditionFailed:
    return PreconditionFailed(
        reason="ACCOUNT_LOCKED",
        message="the account is locked; unlocking requires proof of identity",
    )


def citizen_deceased() -> PreconditionFailed:
    return PreconditionFailed(
        reason="CITIZEN_DECEASED",
        message="the population registry records this citizen as deceased",
    )


@dataclass
class Account:
    """One account. Personal data are kept out of repr so they never reach a log."""

    id: str
    demographics: Demographics = field(repr=False)
    phone: str = field(repr=False)
    email: str | None = field(repr=False)
    level: AccountLevel
    state: AccountState
    created_at: datetime
    activated_at: datetime | None = None
    password_hash: str | None = field(default=None, repr=False)
    # A foreigner's nationality (ISO 3166-1 alpha-3), from the registry; None
    # for a citizen.
    nationality: str | None = field(default=None, repr=False)

    def activate(self, password_hash: str, now: datetime) -> None:
        """PENDING -> ACTIVE with the first password; any other state is refused."""
        if self.state is AccountState.ACTIVE:
            raise PreconditionFailed(
                reason="ACCOUNT_ALREADY_ACTIVE", message="the account is already active"
            )
        if self.state is not AccountState.PENDING:
            require_state_active(self.state)
        if not password_hash:
            raise ValueError("an account cannot be activated without a password hash")
        self.password_hash = password_hash
        self.state = AccountState.ACTIVE
        self.activated_at = now

    def require_active(self) -> None:
        """Refuse to authenticate or act for an account that is not ACTIVE."""
        require_state_active(self.state)


def require_state_active(state: AccountState) -> None:
    """Refuse to authenticate or act for an account that is not ACTIVE."""
    if state is AccountState.PENDING:
        raise PreconditionFailed(
            reason="ACCOUNT_NOT_ACTIVE",
            message="the account has not been activated yet",
        )
    if state is AccountState.LOCKED:
        raise account_locked()
    if state is AccountState.DEACTIVATED:
        raise citizen_deceased()
    if state is AccountState.DEPENDANT:
        raise PreconditionFailed(
            reason="ACCOUNT_NOT_ACTIVE",
            message="the account is a dependant's, managed by a guardian; the child takes it"
            " over at 14 by registering with its own phone",
        )


def new_account_id() -> str:
    """An opaque, unguessable account id ("acc_" + 26 hex characters, 104 bits)."""
    return "acc_" + secrets.token_hex(13)


# No account has this id (too short to be one): a lookup made for an ID number
# without an account finds nothing, at the cost of the lookup for one.
NO_ACCOUNT = "acc_none"
