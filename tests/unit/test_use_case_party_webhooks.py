"""A party's status webhook, set by an operator (any https URL, or http to
localhost) or by the party itself (SetStatusWebhook: https to a public host
only, so a party cannot aim the service into its own network); request ids
make the party's call safe to retry, and a late retry never undoes a newer URL."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from eid_service.domain.errors import InvalidInput, NotFound
from eid_service.domain.party import RelyingParty
from eid_service.use_cases.party_webhooks import (
    clear_webhook,
    own_webhook,
    set_own_webhook,
    set_webhook,
    show_webhook,
)
from eid_service.use_cases.ports import WebhookTarget
from eid_service.use_cases.replies import Reply
from tests.unit.use_case_kit import World, refused

HOOK = "https://bank.example/eid/events"


def _reply(world: World, url: str, request_id: str) -> Reply[WebhookTarget | None, Any]:
    return Reply(
        rpc="set_status_webhook",
        request_id=request_id,
        request=url.encode(),
        present=lambda found: found,
        encode=pickle.dumps,
        decode=pickle.loads,
        fingerprint=world.ctx.fingerprint,
    )


async def _self_set(
    world: World, party: RelyingParty, url: str, request_id: str = ""
) -> WebhookTarget | None:
    reply = _reply(world, url, request_id)
    found: WebhookTarget | None = await set_own_webhook(world.uow, world.ctx, party, url, reply)
    return found


@pytest.mark.parametrize(
    "url",
    [
        "http://bank.example/events",  # plain http off the machine
        "ftp://bank.example/events",
        "https://user:secret@bank.example/events",
        "https://bank.example/events#part",
        "https://bank.example:99999/events",
        "bank.example/events",
        "https:///events",
        "",
        "https://bank.example/" + "a" * 2000,
        "https://bank.example/with space",
    ],
)
async def test_a_webhook_must_be_https_or_http_to_localhost(world: World, url: str) -> None:
    bank = world.party("Bank")
    error = await refused(set_webhook(world.uow, world.ctx, bank.id, url))
    assert isinstance(error, InvalidInput)
    assert error.reason == "WEBHOOK_URL_INVALID"
    assert [v.field for v in error.violations] == ["url"]
    assert await show_webhook(world.uow, bank.id) is None


@pytest.mark.parametrize(
    "url",
    [HOOK, "http://127.0.0.1:8080/hook", "http://localhost/hook", "http://[::1]:9/h?token=x"],
)
async def test_accepted_urls_are_kept_as_given(world: World, url: str) -> None:
    bank = world.party("Bank")
    shown = await set_webhook(world.uow, world.ctx, bank.id, f"  {url} ")
    assert (shown.url, shown.updated_at) == (url, world.clock())
    assert await show_webhook(world.uow, bank.id) == shown


async def test_an_unknown_party_has_no_webhook_to_set(world: World) -> None:
    for call in (
        set_webhook(world.uow, world.ctx, "rp_nobody", HOOK),
        clear_webhook(world.uow, "rp_nobody"),
        show_webhook(world.uow, "rp_nobody"),
    ):
        error = await refused(call)
        assert isinstance(error, NotFound) and error.reason == "PARTY_NOT_FOUND"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "https://localhost/hook",
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://172.16.0.1/hook",
        "https://169.254.169.254/latest/meta-data",  # a cloud's metadata service
        "https://[::1]/hook",
        "https://[fd00::1]/hook",
        "https://100.64.0.1/hook",
        "https://0.0.0.0/hook",
        "https://printer.local/hook",
        "https://db.internal/hook",
        "https://LOCALHOST./hook",
        # IPv4 in forms the resolver reads but no dotted quad (found by an
        # attacker's pass: each reached 127.0.0.1 or 169.254.169.254).
        "https://2130706433/hook",
        "https://0x7f000001/hook",
        "https://127.1/hook",
        "https://0x7f.1/hook",
        "https://2852039166/hook",
        "https://10.1/hook",
        "https://0177.0.0.1/hook",
        # IPv6 addresses that carry a private IPv4 one.
        "https://[::ffff:127.0.0.1]/hook",
        "https://[64:ff9b::7f00:1]/hook",
        "https://[2002:7f00:1::]/hook",
    ],
)
async def test_a_party_cannot_aim_its_webhook_inside(world: World, url: str) -> None:
    bank = world.party("Bank")
    error = await refused(_self_set(world, bank, url))
    assert isinstance(error, InvalidInput)
    assert (error.reason, [v.field for v in error.violations]) == (
        "WEBHOOK_URL_NOT_PUBLIC",
        ["url"],
    )
    assert await own_webhook(world.uow, bank) is None
    # An operator, who vets the party, may.
    assert (await set_webhook(world.uow, world.ctx, bank.id, url)).url == url


@pytest.mark.parametrize(
    ("url", "sent_to"),
    [
        # Full stops IDNA reads as dots (ideographic, full-width, half-width).
        ("https://127\u30020\u30020\u30021/hook", "https://127.0.0.1/hook"),
        ("https://10\uff0e0\uff0e0\uff0e1/hook", "https://10.0.0.1/hook"),
        ("https://169\uff61254\uff61169\uff61254/x", "https://169.254.169.254/x"),
        ("https://metadata\u3002google\u3002internal/x", "https://metadata.google.internal/x"),
        ("https://localhost\u3002/hook", "https://localhost./hook"),
    ],
)
async def test_a_host_is_checked_as_it_is_sent_not_as_it_is_typed(
    world: World, url: str, sent_to: str
) -> None:
    """Checked as typed, these passed for public names and the HTTP client
    connected inside (found by an attacker's pass)."""
    bank = world.party("Bank")
    error = await refused(_self_set(world, bank, url))
    assert isinstance(error, InvalidInput) and error.reason == "WEBHOOK_URL_NOT_PUBLIC"
    # What an operator sets is kept as it will be sent.
    assert (await set_webhook(world.uow, world.ctx, bank.id, url)).url == sent_to


async def test_an_international_host_name_is_kept_in_its_ascii_form(world: World) -> None:
    bank = world.party("Bank")
    shown = await _self_set(world, bank, "https://B\u00dcCHER.example:8443/hook?x=1")
    assert shown is not None and shown.url == "https://xn--bcher-kva.example:8443/hook?x=1"


async def test_a_host_no_http_client_could_send_to_is_refused(world: World) -> None:
    bank = world.party("Bank")
    error = await refused(_self_set(world, bank, "https://35\u3002\uff0e/hook"))
    assert isinstance(error, InvalidInput) and error.reason == "WEBHOOK_URL_INVALID"


async def test_a_party_sets_reads_and_removes_its_own_webhook(world: World) -> None:
    bank, other = world.party("Bank"), world.party("Other")
    found = await _self_set(world, bank, HOOK)
    assert found is not None and (found.url, found.updated_at) == (HOOK, world.clock())
    assert await own_webhook(world.uow, bank) == found
    assert await own_webhook(world.uow, other) is None
    assert await _self_set(world, bank, "") is None
    assert await own_webhook(world.uow, bank) is None
    assert await _self_set(world, bank, "  ") is None  # removing none is no error
    error = await refused(_self_set(world, bank, "http://bank.example/x"))
    assert error.reason == "WEBHOOK_URL_INVALID"


async def test_a_late_retry_does_not_undo_a_newer_url(world: World) -> None:
    bank = world.party("Bank")
    first = await _self_set(world, bank, HOOK, "req-1")
    newer = "https://bank.example/v2"
    await _self_set(world, bank, newer, "req-2")
    assert await _self_set(world, bank, HOOK, "req-1") == first  # the first answer again
    shown = await own_webhook(world.uow, bank)
    assert shown is not None and shown.url == newer
    error = await refused(_self_set(world, bank, "https://bank.example/v3", "req-1"))
    assert error.reason == "REQUEST_ID_REUSED"
