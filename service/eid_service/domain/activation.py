"""One-time codes sent by SMS or email: to activate an account after
registration, and to lock or unlock it without a password or a device."""

from __future__ import annotations

import enum
import re
import secrets
from datetime import timedelta

from eid_service.domain.errors import InvalidInput

ACTIVATION_CODE_DIGITS = 6
ACTIVATION_CODE_TTL = timedelta(minutes=10)
MAX_ACTIVATION_ATTEMPTS = 5
# An activation code: anyone who knows an ID number may guess at a pending
# account's code. Each source has the password budget for the person (5
# failures, then 15 minutes from the last), and the code dies only after 100
# wrong guesses: spending it for the citizen takes 20 sources inside its 10
# minutes, and 100 guesses at a 6-digit code hit it 1 time in 10,000. Before,
# 5 wrong guesses from anywhere spent it, again after every new code (noticed
# by an attacker's pass).
MAX_ACTIVATION_CODE_GUESSES = 100

# Lock and unlock codes: the same shape and lifetime as activation codes.
ACCOUNT_CODE_TTL = timedelta(minutes=10)
# Anyone who knows an ID number may guess at its lock code. Each source has
# the password budget for the person (domain/credential_policy: 5 failures,
# then 15 minutes from the last), so it makes at most 5 guesses in a code's
# 10 minutes. The code itself dies only after 100 wrong guesses, far above
# one source's 5: spending it for the citizen takes 20 sources inside those
# 10 minutes (failures slow the guessers, not the citizen). 100 guesses at a
# 6-digit code hit it 1 time in 10,000, and 3 in 10,000 while 3 codes are
# live (below: a guess is tried against each, and anyone who knows the
# phone can have 3 sent); a hit only locks the account, which its citizen
# then unlocks.
MAX_LOCK_CODE_ATTEMPTS = 100
# A new activation, lock or unlock code leaves the ones sent just before it
# usable, each until its own expiry: anyone who knows the ID number and the
# phone can have a code sent, and that must not void the one the citizen is
# typing. A wrong guess counts
# against each of them, so none outlives its attempts.
RECENT_ACCOUNT_CODES = 3


class CodePurpose(enum.Enum):
    ACTIVATION = "activation"
    LOCK = "lock"
    UNLOCK = "unlock"
    # Asked for by a relying party to verify the citizen (bound to that party).
    VERIFY = "verify"


_CODE_PATTERN = re.compile(rf"[0-9]{{{ACTIVATION_CODE_DIGITS}}}")


def new_activation_code() -> str:
    """A uniformly random code from a CSPRNG; leading zeros are kept."""
    return f"{secrets.randbelow(10**ACTIVATION_CODE_DIGITS):0{ACTIVATION_CODE_DIGITS}d}"


def parse_activation_code(raw: str, field: str = "activation_code") -> str:
    """The code as typed (surrounding spaces removed), or InvalidInput."""
    text = raw.strip()
    if not _CODE_PATTERN.fullmatch(text):
        raise InvalidInput.of(
            field,
            "ACTIVATION_CODE_MALFORMED",
            f"the activation code must be {ACTIVATION_CODE_DIGITS} digits",
        )
    return text
