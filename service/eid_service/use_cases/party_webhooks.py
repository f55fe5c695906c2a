"""A relying party's status webhook, set, shown and removed by an operator
(`eid-server party webhook`). Each is one transaction; setting replaces the
URL, and events already queued go to the new one (they are addressed to the
party, not to a URL); removing it drops events not yet sent."""

from __future__ import annotations

from eid_service.domain.party import parse_party_id
from eid_service.domain.status_webhook import parse_webhook_url
from eid_service.use_cases.context import UseCaseContext
from eid_service.use_cases.parties import party_not_found
from eid_service.use_cases.ports import PartyRecord, Repositories, UnitOfWork, WebhookTarget

URL_FIELD = "url"


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
