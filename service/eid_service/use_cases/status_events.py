"""Status events: parties that verified a citizen hear when the account is
locked, unlocked or deactivated.

`publish_status_change` is called inside the transaction that changes the
account's state, so the events commit (through the outbox) with the change
or not at all: a crash never loses an event nor invents one."""

from __future__ import annotations

import enum
from datetime import datetime

from eid_service.use_cases.ports import Repositories


class StatusChange(enum.Enum):
    """What happened to the account; the value is the event's `type`."""

    LOCKED = "account.locked"
    UNLOCKED = "account.unlocked"
    DEACTIVATED = "account.deactivated"


def publish_status_change(
    r: Repositories, account_id: str, change: StatusChange, now: datetime
) -> None:
    """Queues one event per party that verified the account and has a webhook.
    Call it inside the transaction that made the change."""
    del r, account_id, change, now  # filled in below by the status events work
