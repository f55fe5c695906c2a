"""Children under 14, registered under a parent's or guardian's account.

A guardian with an ACTIVE account registers a child whom the population
registry records as theirs (the registry's wards of the guardian). The
child's account is DEPENDANT: level 1, no password, no phone, so nobody signs
in to it; the guardian acts for it (QR shares of its attributes). When the
child turns 14 the guardian is told, and the child takes the account over
through the normal registration (its own data and phone: DEPENDANT ->
PENDING) and activation (-> ACTIVE); from then on the guardian no longer
acts for it.

When the guardian dies (their account DEACTIVATED), another parent or
guardian the registry records for the child takes the account on: nobody
else could act for it until the child turns 14.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from eid_service.domain.account import (
    Account,
    AccountLevel,
    AccountState,
    citizen_deceased,
    new_account_id,
)
from eid_service.domain.citizen import MIN_SELF_REGISTRATION_AGE, Demographics, age_on
from eid_service.domain.errors import NotFound, PermissionDenied, PreconditionFailed

# A child takes its account over at the age citizens register themselves.
TAKE_OVER_AGE = MIN_SELF_REGISTRATION_AGE


def take_over_date(birth_date: date) -> date:
    """The day the child turns 14 (as `citizen.age_on` counts): its birthday
    14 years on, or 1 March when it was born on 29 February and that year is
    a common year."""
    year = birth_date.year + TAKE_OVER_AGE
    try:
        return birth_date.replace(year=year)
    except ValueError:  # 29 February in a common year
        return date(year, 3, 1)


def require_dependant_age(birth_date: date, today: date) -> None:
    """Only a child under 14 can be registered as a dependant."""
    if age_on(birth_date, today) >= TAKE_OVER_AGE:
        raise PreconditionFailed(
            reason="DEPENDANT_AGE_EXCEEDED",
            message=f"a child aged {TAKE_OVER_AGE} or over registers themself with Register",
            metadata={"maximum_age": str(TAKE_OVER_AGE - 1)},
        )


def require_ward(child_id: str, wards: list[str]) -> None:
    """The registry must record the guardian as the child's parent or guardian.
    Whether anyone has the ID number is not told: the answer is the same."""
    if child_id not in wards:
        raise PermissionDenied(
            reason="GUARDIAN_NOT_RECORDED",
            message="the population registry does not record you as this child's"
            " parent or guardian",
        )


def new_dependant_account(child: Demographics, now: datetime) -> Account:
    """A DEPENDANT account: the registry's data, no phone, no password."""
    return Account(
        id=new_account_id(),
        demographics=child,
        phone="",
        email=None,
        level=AccountLevel.LEVEL_1,
        state=AccountState.DEPENDANT,
        created_at=now,
    )


def dependant_not_found() -> NotFound:
    return NotFound(
        reason="DEPENDANT_NOT_FOUND", message="no dependant of yours has this account id"
    )


def dependant_taken_over() -> PreconditionFailed:
    return PreconditionFailed(
        reason="DEPENDANT_TAKEN_OVER",
        message="the child has taken this account over with its own phone;"
        " you no longer act for it",
    )


@dataclass(frozen=True)
class Dependant:
    """A child's account and its link to the guardian who registered it."""

    account: Account = field(repr=False)
    guardian_account_id: str
    # The day the child turns 14.
    take_over_on: date
    # When the guardian was told the child turned 14 (None: not yet).
    notified_at: datetime | None = None
    # When the child completed the take-over (activated the account).
    taken_over_at: datetime | None = None

    def can_take_over(self, today: date) -> bool:
        return today >= self.take_over_on

    def stranded(self, guardian_state: AccountState | None) -> bool:
        """Whether nobody can act for the child any more: the account is still
        DEPENDANT and its guardian's is DEACTIVATED (a recorded death) or gone.
        Another parent or guardian the registry records for the child may then
        take it on (RegisterDependant). A guardian's lock is not enough: it is
        temporary, and the guardian unlocks it with proof of identity."""
        if self.account.state is not AccountState.DEPENDANT:
            return False
        return guardian_state is None or guardian_state is AccountState.DEACTIVATED

    def require_managed(self) -> None:
        """The guardian may act for the child only while the account is
        DEPENDANT: not once the child has started taking it over."""
        state = self.account.state
        if state is AccountState.DEPENDANT:
            return
        if state is AccountState.DEACTIVATED:
            raise citizen_deceased()
        raise dependant_taken_over()
