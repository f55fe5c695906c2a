"""Verify a citizen for a relying party by password (trusted services only).
(The other modes: verify_share.py, verify_otp.py, verify_demographic.py,
verify_approval.py.)"""

from __future__ import annotations

from eid_service.domain.errors import DomainError
from eid_service.domain.party import RelyingParty, VerifyMode
from eid_service.domain.personal_id import parse_personal_id
from eid_service.domain.share import Attribute
from eid_service.use_cases.call_audit import WRONG_PASSWORD, call_entry
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.credentials import PasswordCheck, check_password, one_check_at_a_time
from eid_service.use_cases.party_limits import admit
from eid_service.use_cases.ports import Repositories, StoredCredential, UnitOfWork
from eid_service.use_cases.replies import Answer, Reply, once
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


async def verify_password(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    party: RelyingParty,
    personal_id: str,
    password: str,
    reply: Reply[Verification, Answer],
    requested: frozenset[Attribute] | None = None,
) -> Answer:
    """A wrong password, an unknown ID number and an account that is not
    active all answer `verified: false`, the same way, at the same cost. A
    right password for an account that is not active, or whose citizen
    locked the password mode, is told why (the caller knows the password)."""
    require_mode(party, VerifyMode.PASSWORD)
    pid = parse_personal_id(personal_id, "password.personal_id").value
    wanted = wanted_attributes(party, requested)
    caller = party_caller(party)
    source = caller
    now = ctx.clock()
    action = "verify.password"

    def replay_or_throttle(r: Repositories) -> Answer | None:
        earlier = reply.replay(r, caller)
        if earlier is not None:
            return earlier
        throttled(r, party, now)
        admit(r, party, now, citizen=r.accounts.subject_of(pid), ticket=ticket)
        return None

    def audit_wait(r: Repositories, cred: StoredCredential) -> None:
        # Too many wrong passwords from this party for this ID number.
        refused = "TOO_MANY_FAILED_ATTEMPTS"
        r.audit.append(
            call_entry(
                reply,
                cred.subject,
                cred.account_id,
                party.id,
                action,
                "rejected",
                now,
                reason=refused,
            )
        )

    async def record_outcome(check: PasswordCheck) -> Answer | DomainError:
        cred = check.credential
        now = ctx.clock()

        def record(r: Repositories) -> Answer | DomainError:
            refusal = None
            if check.verified and cred.account_id is not None:
                # The count taken back first, then the account: the order
                # SignIn and LockAccount take those rows in (the other order
                # deadlocked on PostgreSQL against a lock by password).
                check.record_success(r)
                # The account and its lock on the mode as they stand now, not
                # as they were before the password was compared: a lock
                # answered meanwhile holds (found by an attacker's pass).
                r.accounts.hold(cred.account_id)
                current = r.accounts.credential(pid, VerifyMode.PASSWORD)
                assert current.state is not None  # accounts are never deleted
                refusal = refusal_after_proof(
                    current.state, current.mode_locked(now), VerifyMode.PASSWORD
                )
            if refusal is not None:
                # Told only to who has the password; kept, so a retry is told alike.
                outcome = refusal.reason.lower()
                r.audit.append(
                    call_entry(
                        reply,
                        cred.subject,
                        cred.account_id,
                        party.id,
                        action,
                        outcome,
                        now,
                        reason=refusal.reason,
                    )
                )
                return reply.refuse(r, caller, refusal, now)
            if not check.verified:
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
                        reason=WRONG_PASSWORD,
                    )
                )
                result = Verification(False, VerifyMode.PASSWORD, now, verification_id=event_id)
                return reply.finish(r, caller, result, now)
            assert cred.account_id is not None
            view = r.accounts.view(cred.account_id, wanted)
            assert view is not None
            done = record_verified(r, ctx, keys, party, view, VerifyMode.PASSWORD, now, reply=reply)
            return reply.finish(r, caller, done, now)

        return await once(uow, reply, caller, record)

    async with (
        ctx.party_gate.enter(uow, party, now) as ticket,
        one_check_at_a_time(ctx, personal_id, source),
    ):
        # After the gate: a party refused from memory costs not even this read.
        keys = await ctx.signing_keys.current(uow)
        done = await check_password(
            uow,
            ctx,
            personal_id,
            password,
            source=source,
            field_name="password.personal_id",
            then=record_outcome,
            before=replay_or_throttle,
            mode=VerifyMode.PASSWORD,
            on_wait=audit_wait,
        )
    if isinstance(done, DomainError):
        raise done
    return done
