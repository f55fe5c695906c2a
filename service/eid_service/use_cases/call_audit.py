"""Audit entries of relying parties' calls about citizens: each Verify attempt
(action `verify.<mode>`) and each RequestOtp keeps the time, the party, the
result, why when it is not a success, and the call's request id and trace
id, with the citizen named by their subject (blind index) only. Reasons are
stable codes; nothing here may carry an ID number or other personal data
(request ids are the caller's 1-64 characters of [A-Za-z0-9._:-], trace ids
32 hex digits)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eid_service.use_cases.ports import AuditEntry, Subject
from eid_service.use_cases.replies import Reply

# Reasons of `verify.<mode>` entries whose answer is `verified: false` (the
# party is not told which; the log is).
WRONG_PASSWORD = "WRONG_PASSWORD"  # noqa: S105 (a reason's name, not a secret)
NOT_ACTIVE = "ACCOUNT_NOT_ACTIVE"  # the right credential, but no active account
ONE_TIME_CODE_INVALID = "ONE_TIME_CODE_INVALID"  # wrong, expired, used or never sent
DEMOGRAPHIC_MISMATCH = "DEMOGRAPHIC_MISMATCH"
# Biometric Verify: templates that did not reach the thresholds, and an ID
# number with no level-2 templates to compare with (no account, a level-1 one
# whose citizen locked the mode or that is not active).
BIOMETRIC_MISMATCH = "BIOMETRIC_MISMATCH"
NO_LEVEL_2_TEMPLATES = "NO_LEVEL_2_TEMPLATES"
# RequestOtp that sent nothing: no active account with a phone.
NO_ACTIVE_ACCOUNT_WITH_PHONE = "NO_ACTIVE_ACCOUNT_WITH_PHONE"


def call_entry(
    reply: Reply[Any, Any],
    subject: Subject,
    account_id: str | None,
    party_id: str | None,
    action: str,
    outcome: str,
    at: datetime,
    *,
    reason: str | None = None,
    actor: str | None = None,
) -> AuditEntry:
    """An audit entry of this call (`reply` carries its request and trace ids)."""
    return AuditEntry(
        subject,
        account_id,
        party_id,
        action,
        outcome,
        at,
        actor=actor,
        reason=reason,
        request_id=reply.request_id or None,
        trace_id=reply.trace_id,
    )
