"""A relying party's status webhook, set, shown and removed by an operator
(`eid-server party webhook`) or by the party itself (SetStatusWebhook,
GetStatusWebhook, only to public https hosts). Each is one transaction;
setting replaces the URL, and events already queued go to the new one (they
are addressed to the party, not to a URL); after a removal, events not yet
sent are not delivered."""

from __future__ import annotations

from typing import TypeVar

from eid_service.domain.party import RelyingParty, parse_party_id
from eid_service.domain.status_webhook import parse_public_webhook_url, parse_webhook_url
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.parties import party_not_found
from eid_service.use_cases.ports import PartyRecord, Repositories, UnitOfWork, WebhookTarget
from eid_service.use_cases.replies import Reply, once
from eid_service.use_cases.verified import party_caller

URL_FIELD = "url"
Answer = TypeVar("Answer")


def _party(r: Repositories, party_id: str) -> PartyRecord:
    found = r.parties.get(parse_party_id(party_id, "party_id"))
    if found is None:
        raise party_not_found(party_id)
    return found


async def set_webhook(
    uow: UnitOfWork, ctx: UseCaseContext, party_id: str, url: str
) -> WebhookTarget:
    """The party's webhook, as now set; InvalidInput WEBHOOK_URL_INVALID for a
    URL that is not https (or http to localhost), NotFound for no such party."""
    checked = parse_webhook_url(url, URL_FIELD)
    now = ctx.clock()

    def put(r: Repositories) -> WebhookTarget:
        record = _party(r, party_id)
        r.webhooks.set(record.party.id, checked, now)
        found = r.webhooks.get(record.party.id)
        assert found is not None
        return found

    return await uow.atomically(put)


async def clear_webhook(uow: UnitOfWork, party_id: str) -> bool:
    """Removes the party's webhook; False if it had none."""

    def clear(r: Repositories) -> bool:
        return r.webhooks.clear(_party(r, party_id).party.id)

    return await uow.atomically(clear)


async def show_webhook(uow: UnitOfWork, party_id: str) -> WebhookTarget | None:
    return await uow.read(lambda r: r.webhooks.get(_party(r, party_id).party.id))


async def set_own_webhook(
    uow: UnitOfWork,
    ctx: UseCaseContext,
    party: RelyingParty,
    url: str,
    reply: Reply[WebhookTarget | None, Answer],
) -> Answer:
    """The party sets (or, with an empty URL, removes) its own webhook; the
    webhook as it is after, None once removed. A retried request id gets the
    first answer and changes nothing (a late retry cannot undo a newer URL)."""
    checked = parse_public_webhook_url(url, URL_FIELD) if url.strip() else None
    caller = party_caller(party)
    now = ctx.clock()

    def put(r: Repositories) -> Answer:
        earlier = reply.replay(r, caller)
        if earlier is not None:
            return earlier
        if checked is None:
            r.webhooks.clear(party.id)
        else:
            r.webhooks.set(party.id, checked, now)
        return reply.finish(r, caller, r.webhooks.get(party.id), now)

    return await once(uow, reply, caller, put)


async def own_webhook(uow: UnitOfWork, party: RelyingParty) -> WebhookTarget | None:
    return await uow.read(lambda r: r.webhooks.get(party.id))
