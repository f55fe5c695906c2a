"""The population registry records a citizen's death (a registry operator,
`eid-server registry mark-deceased`). In the same transaction the citizen's
account, whatever its state, becomes DEACTIVATED: its sessions and
unredeemed shares end, Verify refuses it (CITIZEN_DECEASED, told only to a
party that proved a credential), and parties that verified the citizen are
told (status events). Register no longer finds the record, so it answers
REGISTRY_MISMATCH, as for anyone not in the registry: no new oracle.

Running it again for the same citizen deactivates an account that is still
active (one registered while the death was being recorded, on PostgreSQL)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from eid_service.domain.account import AccountState
from eid_service.domain.errors import InvalidInput, NotFound
from eid_service.domain.personal_id import parse_personal_id
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.ports import AuditEntry, Repositories, UnitOfWork
from eid_service.use_cases.status_events import StatusChange, publish_status_change

# Who recorded it, in the audit log (the operator's tool has no identity of its own).
ACTOR = "registry"


@dataclass(frozen=True)
class DeathRecorded:
    # False: the registry had it already (this run only deactivated an account).
    newly_recorded: bool
    # The account that became DEACTIVATED now; None when there was none to deactivate.
    deactivated_account_id: str | None
    revoked_sessions: int = 0


def no_living_citizen() -> NotFound:
    return NotFound(
        reason="CITIZEN_NOT_FOUND",
        message="no living citizen in the registry has this ID number",
    )


async def record_death(
    uow: UnitOfWork, ctx: UseCaseContext, personal_id: str, died_on: date
) -> DeathRecorded:
    """NotFound when the registry has no such citizen and no account to deactivate."""
    pid = parse_personal_id(personal_id).value
    now = ctx.clock()
    if died_on > now.date():
        raise InvalidInput.of("died_on", "DEATH_DATE_IN_FUTURE", "the date of death is ahead")

    def record(r: Repositories) -> DeathRecorded:
        citizen = r.registry.find(pid)
        if citizen is not None and died_on < citizen.birth_date:
            raise InvalidInput.of(
                "died_on", "DEATH_DATE_BEFORE_BIRTH", "the date of death is before the birth date"
            )
        newly = citizen is not None and r.registry.mark_deceased(pid, died_on)
        cred = r.accounts.credential(pid)
        if cred.account_id is None or cred.state is AccountState.DEACTIVATED:
            if not newly:
                raise no_living_citizen()
            r.audit.append(AuditEntry(cred.subject, None, None, "death", "recorded", now, ACTOR))
            return DeathRecorded(newly, None)
        account_id = cred.account_id
        r.accounts.deactivate(account_id, now)
        ended = r.sessions.revoke_all(account_id, now, "account_deactivated")
        r.shares.revoke_all(account_id, now)
        r.shares.revoke_issued_by(account_id, now)  # a guardian's, for dependants
        publish_status_change(r, account_id, StatusChange.DEACTIVATED, now)
        r.audit.append(
            AuditEntry(cred.subject, account_id, None, "death", "account_deactivated", now, ACTOR)
        )
        return DeathRecorded(newly, account_id, ended)

    return await uow.atomically(record)
