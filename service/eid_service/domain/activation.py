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

# Lock and unlock codes: the same shape and lifetime as activation codes.
ACCOUNT_CODE_TTL = timedelta(minutes=10)
# Anyone who knows an ID number may guess at its lock code, so wrong guesses
# are also limited per source (the password budget, domain/credential_policy):
# one source cannot burn the code; the code itself allows more in total than
# one source may make (it takes 4 sources inside 10 minutes to burn one, and
# 20 guesses in a million to hit one).
MAX_LOCK_CODE_ATTEMPTS = 20


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
