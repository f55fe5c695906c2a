"""Status events: parties that verified a citizen, with the citizen taking
part, hear when the account is locked, unlocked or deactivated.

`publish_status_change` is called inside the transaction that changes the
account's state and writes one outbox message per party that holds a
receipt of a successful verification of the account in a mode the citizen
took part in (CITIZEN_PRESENT_MODES: a demographic match, which needs only
the ID number, does not count) and has a webhook, so
the events commit with the change or not at all: a crash never loses an
event nor invents one. Each party's event has its own id.

The outbox keeps only what the event is about (party, account, type, time,
id), the party also in clear, so a dispatcher can send a few of one party's
events at a time without opening them. What is sent is composed at delivery
(`prepare_delivery`): the party's URL as it is then (a party that moved its
webhook gets queued events at the new one; one that removed it or was
deleted gets none), the citizen named by the party's pairwise subject, never
the ID number, and a fresh signature (eid_client.status_events has the
format and the receiver's check)."""

from __future__ import annotations

import enum
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from eid_client.status_events import encode_status_event
from eid_service.domain.notices import Notice, NoticeKind
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.ports import OutgoingMessage, Repositories, UnitOfWork

# The outbox channel of status events; its destination is the party's id.
STATUS_EVENT_CHANNEL = "party_webhook"
EVENT_ID_PREFIX = "evt_"


class StatusChange(enum.Enum):
    """What happened to the account; the value is the event's `type`."""

    LOCKED = "account.locked"
    UNLOCKED = "account.unlocked"
    DEACTIVATED = "account.deactivated"


def new_event_id() -> str:
    return EVENT_ID_PREFIX + secrets.token_hex(16)


def publish_status_change(
    r: Repositories, account_id: str, change: StatusChange, now: datetime
) -> None:
    """Queues one event per party that verified the account (with the citizen
    taking part) and has a webhook. Call it inside the transaction that made
    the change."""
    for party_id in r.webhooks.subscribers(account_id):
        stored = {"id": new_event_id(), "account_id": account_id, "time": now.isoformat()}
        # The notice's subject carries the type: the outbox lists it, no more.
        notice = Notice(NoticeKind.STATUS_EVENT, change.value, json.dumps(stored))
        r.outbox.add(STATUS_EVENT_CHANNEL, party_id, notice, now, party_id=party_id)


class Held(enum.Enum):
    """Why an event is not sent now."""

    NO_WEBHOOK = "no webhook"  # removed, or the party deleted: never
    PARTY_SUSPENDED = "party suspended"  # later (retried, then a dead letter)


@dataclass(frozen=True)
class PreparedEvent:
    event_id: str
    url: str = field(repr=False)
    body: bytes = field(repr=False)
    signature: str


async def prepare_delivery(
    uow: UnitOfWork, ctx: UseCaseContext, message: OutgoingMessage, signed_at: datetime
) -> PreparedEvent | Held:
    """The request to send for a queued event, signed at `signed_at`."""
    party_id = message.destination
    target = await uow.read(lambda r: r.webhooks.get(party_id))
    if target is None:
        return Held.NO_WEBHOOK
    if target.suspended:
        return Held.PARTY_SUSPENDED
    stored = json.loads(message.body)
    keys = await ctx.signing_keys.current(uow)
    body = encode_status_event(
        event_id=stored["id"],
        type=message.subject,
        subject=ctx.pairwise_subject(party_id, stored["account_id"]),
        audience=party_id,
        issuer=keys.issuer,
        time=datetime.fromisoformat(stored["time"]),
    )
    return PreparedEvent(stored["id"], target.url, body, keys.sign_status_event(body, signed_at))
