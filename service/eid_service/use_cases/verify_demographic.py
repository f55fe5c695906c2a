"""Verify by demographic data: a relying party claims a citizen's name, birth
date and/or gender for an ID number and is told, per attribute, whether the
claim fits the registered data (like Aadhaar's demographic authentication).
Nothing stored is returned and nothing is released: the party learns only
what it already claimed. An ID number without an active account answers
"no match" for every claimed attribute, as a wrong claim does, after the same
work, so the answer does not tell who has an account.

So does an account whose citizen locked the demographic mode (or that is
locked, pending or deactivated): a claim is no credential (name, birth date
and gender are printed on the ID card, and the ID number itself encodes the
gender and birth year), so a matching claim proves nothing that would let
the party be told why. For the same reason a claim of the gender and birth
year alone is refused before any lookup (check_claim): it would match every
active account. A match's receipt is kept for the citizen's history but does
not subscribe the party to the citizen's status events (CITIZEN_PRESENT_MODES):
no citizen took part in it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date

from eid_service.domain.account import AccountState
from eid_service.domain.citizen import Gender
from eid_service.domain.demographic import (
    AttributeMatch,
    DemographicClaim,
    DemographicResult,
    StoredDemographics,
    check_claim,
    match_demographics,
)
from eid_service.domain.party import RelyingParty, VerifyMode
from eid_service.domain.personal_id import parse_personal_id
from eid_service.domain.share import Attribute
from eid_service.use_cases.call_audit import DEMOGRAPHIC_MISMATCH, NOT_ACTIVE, call_entry
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.party_limits import admit
from eid_service.use_cases.ports import Repositories, UnitOfWork
from eid_service.use_cases.replies import Answer, Reply, once
from eid_service.use_cases.validation import Violations
from eid_service.use_cases.verified import (
    Verification,
    party_caller,
    record_failure,
    record_verified,
    require_mode,
    throttled,
)

_COMPARED = frozenset({Attribute.FULL_NAME, Attribute.BIRTH_DATE, Attribute.GENDER})
# Compared with when no active account has the ID number, so that case costs
# what a real comparison does; its verdicts are then discarded.
_DECOY = StoredDemographics("Nguyễn Văn Thử Nghiệm", date(1990, 1, 1), Gender.FEMALE)


@dataclass(frozen=True)
class DemographicCommand:
    personal_id: str = field(repr=False)
    claim: DemographicClaim


def _no_match(claim: DemographicClaim) -> DemographicResult:
    def verdict(claimed: object) -> AttributeMatch:
        return AttributeMatch.NOT_CLAIMED if claimed is None else AttributeMatch.NO_MATCH

    return DemographicResult(
        verdict(claim.full_name), 0, verdict(claim.birth_date), verdict(claim.gender)
    )


async def verify_demographic(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    party: RelyingParty,
    cmd: DemographicCommand,
    reply: Reply[Verification, Answer],
) -> Answer:
    require_mode(party, VerifyMode.DEMOGRAPHIC)
    now = ctx.clock()
    v = Violations()
    pid = v.check(lambda: parse_personal_id(cmd.personal_id, "demographic.personal_id"))
    v.check(lambda: check_claim(cmd.claim, now.date()))
    v.raise_if_any()
    assert pid is not None
    caller = party_caller(party)
    method = VerifyMode.DEMOGRAPHIC

    def check(r: Repositories) -> Answer:
        # No look for an earlier answer first: a retry redoes the check, its
        # answer's key is taken at `finish`, all of it rolls back (a counted
        # party failure too) and `once` replays the earlier answer.
        throttled(r, party, now)
        admit(r, party, now, citizen=r.accounts.subject_of(pid.value), ticket=ticket)
        cred, view = r.accounts.credential_and_view(pid.value, method, _COMPARED)
        locked = cred.mode_locked(now)
        if view is not None and view.state is AccountState.ACTIVE and not locked:
            stored = StoredDemographics(
                view.values[Attribute.FULL_NAME],
                date.fromisoformat(view.values[Attribute.BIRTH_DATE]),
                Gender(view.values[Attribute.GENDER]),
            )
            result = match_demographics(cmd.claim, stored)
        else:
            match_demographics(cmd.claim, _DECOY)
            result = _no_match(cmd.claim)
        if view is not None and result.matched:
            # Nothing is released: the party learns only what it claimed.
            bare = dataclasses.replace(view, values={})
            done = record_verified(
                r, ctx, keys, party, bare, method, now, demographic=result, reply=reply
            )
            return reply.finish(r, caller, done, now)
        record_failure(r, party, now)
        # The citizen's log says why; the party's answer does not.
        outcome = "auth_mode_locked" if locked else "rejected"
        if locked:
            why = "AUTH_MODE_LOCKED"
        elif view is None or view.state is not AccountState.ACTIVE:
            why = NOT_ACTIVE
        else:
            why = DEMOGRAPHIC_MISMATCH
        event_id = r.audit.append(
            call_entry(
                reply,
                cred.subject,
                cred.account_id,
                party.id,
                "verify.demographic",
                outcome,
                now,
                reason=why,
            )
        )
        done = Verification(False, method, now, verification_id=event_id, demographic=result)
        return reply.finish(r, caller, done, now)

    async with ctx.party_gate.enter(uow, party, now) as ticket:
        # After the gate: a party refused from memory costs not even this read.
        keys = await ctx.signing_keys.current(uow)
        return await once(uow, reply, caller, check)
