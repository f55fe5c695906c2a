"""Verify by biometrics: a relying party holding the biometric_match scope
sends an ID number with a portrait template it captured (and optionally one
fingerprint template) and is told whether they match the templates enrolled
when the citizen was registered at level 2 at a registration office, with
the similarity scores on a match. The enrolled templates never leave the
service; attributes are released as for a password, as the scopes allow.

A wrong guess costs the guesser: a template that does not match is counted
against the party, as a failed demographic check is (the party's failure
throttle), and against the (citizen, party) pair as a wrong password is
(domain/credential_policy.py, a budget of its own beside the password's), so
a party cannot climb towards a citizen's template call by call. Scores are
never given below the threshold, for the same reason.

What a party learns about an ID number: an ACTIVE level-1 account answers
FAILED_PRECONDITION LEVEL_2_REQUIRED (the party should send the citizen to a
registration office; the issue asks for it, so it is said at once, counted
by the rate limits but not as a failure), whether or not its citizen locked
this mode: a lock cannot change that answer, so it must not show by
changing it. Every other ID number without level-2 templates (none at all, a
dependant's, a level-1 account that is not active) answers `verified:
false`, after a comparison with a decoy, exactly as a level-2 template that
does not match, and with the same statements and decryptions: one query
reads the account and its lock on the mode (no values), and the templates
are looked for whoever the number names (a decoy is opened when there are
none). The released values are read after a match only.
Templates that match an account that is not active, or whose citizen locked
the biometric mode, are told why, as a right password is."""

from __future__ import annotations

from dataclasses import dataclass, field

from eid_service.domain.account import NO_ACCOUNT, AccountLevel, AccountState
from eid_service.domain.biometric_match import (
    DECOY_ENROLMENT,
    BiometricProbe,
    ProbeResult,
    match_probe,
    parse_finger,
)
from eid_service.domain.biometrics import FACE_DIMENSIONS, FINGERPRINT_DIMENSIONS, parse_template
from eid_service.domain.errors import DomainError, PreconditionFailed, TooManyAttempts
from eid_service.domain.party import Grant, RelyingParty, VerifyMode
from eid_service.domain.personal_id import parse_personal_id
from eid_service.domain.share import Attribute
from eid_service.use_cases.call_audit import (
    BIOMETRIC_MISMATCH,
    NO_LEVEL_2_TEMPLATES,
    call_entry,
)
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.party_limits import admit
from eid_service.use_cases.ports import Repositories, UnitOfWork
from eid_service.use_cases.replies import Answer, Reply, answer_once
from eid_service.use_cases.validation import Violations
from eid_service.use_cases.verified import (
    Verification,
    party_caller,
    record_failure,
    record_verified,
    refusal_after_proof,
    require_grants,
    throttled,
    wanted_attributes,
)

METHOD = VerifyMode.BIOMETRIC
ACTION = f"verify.{METHOD.value}"


@dataclass(frozen=True)
class BiometricCommand:
    personal_id: str = field(repr=False)
    portrait: bytes = field(repr=False)
    # The fingerprint's finger (1-10) and template; no finger: none was sent.
    finger: int | None = None
    fingerprint: bytes = field(default=b"", repr=False)


def level_2_required() -> PreconditionFailed:
    return PreconditionFailed(
        reason="LEVEL_2_REQUIRED",
        message="the account is level 1: biometric verification needs templates enrolled in"
        " person at a registration office (level 2)",
    )


def too_many_misses(seconds: float) -> TooManyAttempts:
    return TooManyAttempts(
        reason="TOO_MANY_FAILED_ATTEMPTS",
        message="too many templates that did not match this ID number from this party;"
        " try again later",
        metadata={"retry_after_seconds": str(int(seconds) + 1)},
    )


def parse_probe(cmd: BiometricCommand) -> tuple[str, BiometricProbe]:
    """The ID number and the probe; InvalidInput lists every bad field."""
    v = Violations()
    pid = v.check(lambda: parse_personal_id(cmd.personal_id, "biometric.personal_id"))
    portrait = v.check(lambda: parse_template(cmd.portrait, FACE_DIMENSIONS, "biometric.portrait"))
    finger = template = None
    if cmd.finger is not None:
        number = cmd.finger
        finger = v.check(lambda: parse_finger(number, "biometric.fingerprint.finger"))
        template = v.check(
            lambda: parse_template(
                cmd.fingerprint, FINGERPRINT_DIMENSIONS, "biometric.fingerprint.template"
            )
        )
    v.raise_if_any()
    assert pid is not None and portrait is not None
    fingerprint = None if finger is None or template is None else (finger, template)
    return pid.value, BiometricProbe(portrait, fingerprint)


async def verify_biometric(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    party: RelyingParty,
    cmd: BiometricCommand,
    reply: Reply[Verification, Answer],
    requested: frozenset[Attribute] | None = None,
) -> Answer:
    require_grants(party, frozenset({Grant.BIOMETRIC_MATCH}))
    pid, probe = parse_probe(cmd)
    wanted = wanted_attributes(party, requested)
    caller = party_caller(party)
    # Misses are budgeted per (citizen, party) apart from wrong passwords.
    source = f"{caller}:{METHOD.value}"
    thresholds = ctx.biometric_thresholds
    now = ctx.clock()

    def check(r: Repositories) -> Answer | DomainError:
        earlier = reply.replay(r, caller)
        if earlier is not None:
            return earlier
        throttled(r, party, now)
        admit(r, party, now, citizen=r.accounts.subject_of(pid), ticket=ticket)
        # No values: nothing is decrypted for a number the probe may not match.
        cred, found = r.accounts.credential_and_view(pid, METHOD, frozenset())
        locked = cred.mode_locked(now)

        def audit(outcome: str, reason: str | None) -> str:
            return r.audit.append(
                call_entry(
                    reply,
                    cred.subject,
                    cred.account_id,
                    party.id,
                    ACTION,
                    outcome,
                    now,
                    reason=reason,
                )
            )

        if (
            found is not None
            and found.level < AccountLevel.LEVEL_2
            and found.state is AccountState.ACTIVE
        ):
            refused = level_2_required()
            audit("level_2_required", refused.reason)
            # Kept: a retry is answered alike, and audited once.
            return reply.refuse(r, caller, refused, now)
        wait = r.attempts.reserve(cred.subject, source, now)
        if wait is not None:
            slow_down = too_many_misses(wait.total_seconds())
            audit("rejected", slow_down.reason)
            return slow_down
        level_2 = found is not None and found.level >= AccountLevel.LEVEL_2
        # Looked for whoever the number names, so the statements do not tell.
        enrolled = r.biometrics.of_account(found.id if level_2 and found else NO_ACCOUNT)
        result = match_probe(probe, enrolled or DECOY_ENROLMENT, thresholds)
        if enrolled is None or not result.matched:
            record_failure(r, party, now)
            why = BIOMETRIC_MISMATCH if enrolled is not None else NO_LEVEL_2_TEMPLATES
            event_id = audit("rejected", why)
            missed = Verification(
                False, METHOD, now, verification_id=event_id, biometric=ProbeResult(False)
            )
            return reply.finish(r, caller, missed, now)
        assert found is not None
        r.attempts.succeeded(cred.subject, source)
        refusal = refusal_after_proof(found.state, locked, METHOD)
        if refusal is not None:
            audit(refusal.reason.lower(), refusal.reason)
            return reply.refuse(r, caller, refusal, now)
        view = r.accounts.view(found.id, wanted)
        assert view is not None  # read in this very transaction
        done = record_verified(
            r, ctx, keys, party, view, METHOD, now, reply=reply, biometric=result
        )
        return reply.finish(r, caller, done, now)

    async with ctx.party_gate.enter(uow, party, now) as ticket:
        # After the gate: a party refused from memory costs not even this read.
        keys = await ctx.signing_keys.current(uow)
        return await answer_once(uow, reply, caller, check)
