"""Verify by one-time code: a relying party asks for a code to be sent to the
citizen's registered phone, the citizen reads it out or types it into the
party's form, and the party verifies with it. The party never learns the
phone number; the SMS names the party, so a citizen who did not ask can tell.

RequestOtp answers alike whether or not the ID number has an active account
with a phone, so it tells nothing about who has an account; a citizen who
locked the one-time-code mode is sent nothing, and answered alike. A code is bound
to the party that asked for it, lasts `OTP_TTL`, is single use and allows
`MAX_ACTIVATION_ATTEMPTS` wrong guesses, like activation codes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from eid_service.domain.account import AccountState
from eid_service.domain.activation import (
    ACCOUNT_CODE_TTL,
    CodePurpose,
    new_activation_code,
)
from eid_service.domain.errors import DomainError, InvalidInput
from eid_service.domain.notices import verify_code_notice
from eid_service.domain.party import RelyingParty, VerifyMode
from eid_service.domain.personal_id import parse_personal_id
from eid_service.domain.share import Attribute
from eid_service.use_cases.call_audit import (
    NO_ACTIVE_ACCOUNT_WITH_PHONE,
    ONE_TIME_CODE_INVALID,
    call_entry,
)
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.one_time_codes import as_if_sent, hit_limits, spend_code
from eid_service.use_cases.party_limits import admit
from eid_service.use_cases.ports import Repositories, UnitOfWork
from eid_service.use_cases.replies import Answer, Reply, answer_once
from eid_service.use_cases.verified import (
    Verification,
    party_caller,
    record_failure,
    record_verified,
    refusal_after_proof,
    require_mode,
    throttled,
    wanted_attributes,
)

OTP_TTL = ACCOUNT_CODE_TTL
_CODE = re.compile(r"[0-9]{6}")


@dataclass(frozen=True)
class OtpSent:
    """What the party is told, whatever happened."""

    expires_at: datetime


# What a code not sent is sealed as: a phone of a registered one's length.
DECOY_PHONE = "+84900000000"


async def request_otp(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    party: RelyingParty,
    personal_id: str,
    reply: Reply[OtpSent, Answer],
) -> Answer:
    require_mode(party, VerifyMode.ONE_TIME_CODE)
    pid = parse_personal_id(personal_id, "personal_id").value
    now = ctx.clock()
    code = new_activation_code()
    caller = party_caller(party)
    limits = ctx.send_limits
    answer = OtpSent(now + OTP_TTL)
    action = "request_otp"
    notice = verify_code_notice(code, party.name, OTP_TTL, ctx.language)

    def send(r: Repositories) -> Answer | DomainError:
        earlier = reply.replay(r, caller)
        if earlier is not None:
            return earlier
        subject = r.accounts.subject_of(pid)
        admit(r, party, now, citizen=subject, ticket=ticket)
        refused = hit_limits(
            r,
            now,
            [
                (limits.otp_per_party_citizen, f"{party.id}:{pid}"),
                (limits.otp_per_party_citizen_day, f"{party.id}:{pid}"),
                (limits.otp_per_citizen, pid),
            ],
        )
        if refused is not None:
            r.audit.append(
                call_entry(
                    reply, subject, None, party.id, action, "refused", now, reason=refused.reason
                )
            )
            return refused  # committed: the hits count
        # The phone alone, in the query that finds the account (a decoy is
        # opened when there is none): the same work whoever the number names.
        # Before, every field of an account was opened and none without one.
        cred, account = r.accounts.credential_and_view(
            pid, VerifyMode.ONE_TIME_CODE, frozenset({Attribute.PHONE_NUMBER})
        )
        phone = None if account is None else account.values.get(Attribute.PHONE_NUMBER)
        usable = account is not None and account.state is AccountState.ACTIVE and bool(phone)
        if account is None or phone is None or not usable or cred.mode_locked(now):
            account_id = None if account is None else account.id
            why = NO_ACTIVE_ACCOUNT_WITH_PHONE if not usable else "AUTH_MODE_LOCKED"
            r.audit.append(
                call_entry(
                    reply, subject, account_id, party.id, action, "not_sent", now, reason=why
                )
            )
            as_if_sent(r, "sms", DECOY_PHONE, notice, now)
            return reply.finish(r, caller, answer, now)
        r.activation_codes.add(
            account.id, code, now, now + OTP_TTL, CodePurpose.VERIFY, party_id=party.id
        )
        r.outbox.add("sms", phone, notice, now)
        r.audit.append(call_entry(reply, subject, account.id, party.id, action, "sent", now))
        return reply.finish(r, caller, answer, now)

    async with ctx.party_gate.enter(uow, party, now) as ticket:
        return await answer_once(uow, reply, caller, send)


async def verify_one_time_code(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    party: RelyingParty,
    personal_id: str,
    code: str,
    requested: frozenset[Attribute] | None,
    reply: Reply[Verification, Answer],
) -> Answer:
    """A wrong, expired or used code and an unknown ID number answer
    `verified: false` alike (so does any code while the mode is locked: none
    was sent); a right code for an account that is no longer active, or
    whose citizen locked the mode since it was sent, is told why (the party
    has proved the citizen is there)."""
    require_mode(party, VerifyMode.ONE_TIME_CODE)
    pid = parse_personal_id(personal_id, "one_time_code.personal_id").value
    if not _CODE.fullmatch(code):
        raise InvalidInput.of(
            "one_time_code.code", "ONE_TIME_CODE_MALFORMED", "a one-time code is 6 digits"
        )
    wanted = wanted_attributes(party, requested)
    caller = party_caller(party)
    now = ctx.clock()
    method = VerifyMode.ONE_TIME_CODE

    def check(r: Repositories) -> Answer | DomainError:
        # No look for an earlier answer first: a retry redoes the check, its
        # answer's key is taken at `finish`, all of it rolls back (a counted
        # code or failure too) and `once` replays the earlier answer.
        throttled(r, party, now)
        admit(r, party, now, citizen=r.accounts.subject_of(pid), ticket=ticket)
        cred = r.accounts.credential(pid, method)
        action = f"verify.{method.value}"
        if not spend_code(r, cred.account_id, CodePurpose.VERIFY, code, now, party_id=party.id):
            record_failure(r, party, now)
            event_id = r.audit.append(
                call_entry(
                    reply,
                    cred.subject,
                    cred.account_id,
                    party.id,
                    action,
                    "rejected",
                    now,
                    reason=ONE_TIME_CODE_INVALID,
                )
            )
            result = Verification(False, method, now, verification_id=event_id)
            return reply.finish(r, caller, result, now)
        assert cred.account_id is not None
        view = r.accounts.view(cred.account_id, wanted)
        assert view is not None
        refused = refusal_after_proof(view.state, cred.mode_locked(now), method)
        if refused is not None:
            outcome = refused.reason.lower()
            r.audit.append(
                call_entry(
                    reply,
                    view.subject,
                    view.id,
                    party.id,
                    action,
                    outcome,
                    now,
                    reason=refused.reason,
                )
            )
            return reply.refuse(r, caller, refused, now)
        done = record_verified(r, ctx, keys, party, view, method, now, reply=reply)
        return reply.finish(r, caller, done, now)

    async with ctx.party_gate.enter(uow, party, now) as ticket:
        # After the gate: a party refused from memory costs not even this read.
        keys = await ctx.signing_keys.current(uow)
        return await answer_once(uow, reply, caller, check)
