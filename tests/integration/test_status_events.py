"""Status events through a real server to a real webhook (a local HTTP
server): a citizen locks their account with LockAccount and the bank that
verified them receives a signed POST, which the SDK verifies with the keys
GetVerificationKeys publishes; a 500 is retried with the same event id; a
party that never verified the citizen gets nothing. A party sets, reads and
removes its own webhook with its API key."""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
from datetime import timedelta
from pathlib import Path

import grpc
import pytest

from eid_client.client import EidClient
from eid_client.errors import EidError
from eid_client.status_events import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    StatusEventVerificationError,
    verify_status_event,
)
from eid_service.cli import main
from eid_service.domain.citizen import Demographics
from eid_service.security.keys import save_key_ring
from tests.integration.conftest import Party
from tests.integration.event_receiver import EventReceiver, Post, event_receiver
from tests.integration.flows import PASSWORD, phone_of, register, register_and_activate
from tests.integration.harness import ServerHarness
from tests.polling import until

EVENTS = "SELECT id FROM outbox WHERE channel = 'party_webhook'"


def _operator_sets_webhook(
    harness: ServerHarness,
    party_id: str,
    url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`eid-server party webhook PARTY_ID --url URL` on the server's database."""
    keys = tmp_path / "keys.json"
    if not keys.exists():
        save_key_ring(harness.key_ring, keys)
    monkeypatch.setenv("EID_DATABASE_URL", harness.database_url)
    monkeypatch.setenv("EID_KEYS_FILE", str(keys))
    assert main(["party", "webhook", party_id, "--url", url]) == 0


def _verified_then_locked(
    harness: ServerHarness, citizen_app: EidClient, bank: Party, adult: Demographics
) -> str:
    """The adult registers, the bank verifies them, they lock their account;
    the subject the bank knows them by."""
    register_and_activate(harness, citizen_app, adult)
    verdict = bank.client.verify_password(personal_id=adult.personal_id, password=PASSWORD)
    assert verdict.verified
    citizen_app.lock_account(personal_id=adult.personal_id, password=PASSWORD)
    return verdict.subject


async def _wake(harness: ServerHarness) -> None:
    """The dispatcher, told on its own loop to look again now (not in a second)."""
    harness.runtime.dispatcher.wake()


def _headers(post: Post) -> dict[str, str]:
    return {k.lower(): v for k, v in post.headers.items()}


def test_a_locked_citizen_reaches_the_bank_signed_and_a_stranger_gets_nothing(
    harness: ServerHarness,
    citizen_app: EidClient,
    bank: Party,
    adult: Demographics,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stranger, _ = harness.create_party("Never verified them")
    with event_receiver() as hooks:
        _operator_sets_webhook(harness, bank.party.id, hooks.url("/bank"), tmp_path, monkeypatch)
        _operator_sets_webhook(harness, stranger.id, hooks.url("/other"), tmp_path, monkeypatch)
        subject = _verified_then_locked(harness, citizen_app, bank, adult)

        (post,) = hooks.wait_for(1, "/bank")
        keys = bank.client.verification_keys()
        event = verify_status_event(post.body, post.headers, keys, audience=bank.party.id)
        assert (event.type, event.subject, event.issuer) == ("account.locked", subject, "eid.vn")
        headers = _headers(post)
        assert headers["content-type"] == "application/json"
        assert headers[IDEMPOTENCY_HEADER.lower()] == event.id
        body = json.loads(post.body)
        assert body["specversion"] == "1.0" and body["id"] == event.id
        assert adult.personal_id not in post.body.decode()

        # Only the bank's event was ever written: the stranger has nothing coming.
        assert len(harness.rows(EVENTS)) == 1
        harness.run(harness.runtime.dispatcher.deliver_pending())
        assert hooks.posts("/other") == []

        # What the bank must refuse: another party's audience, a changed body.
        with pytest.raises(StatusEventVerificationError) as caught:
            verify_status_event(post.body, post.headers, keys, audience=stranger.id)
        assert caught.value.reason == "EVENT_AUDIENCE_MISMATCH"
        forged = post.body.replace(b"account.locked", b"account.unlocked")
        with pytest.raises(StatusEventVerificationError) as caught:
            verify_status_event(forged, post.headers, keys, audience=bank.party.id)
        assert caught.value.reason == "EVENT_SIGNATURE_INVALID"


def test_a_demographic_match_alone_hears_nothing_of_the_citizen(
    harness: ServerHarness,
    citizen_app: EidClient,
    bank: Party,
    adult: Demographics,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The clinic and the bank both match a claim of the citizen's name and
    birth date (printed on the ID card, written on any form: no citizen
    needed); only the bank, which also verified the citizen's password,
    hears of the lock. Before, the clinic's receipt subscribed it too: with
    an ID number alone, a party heard of the citizen's lock, unlock and
    death (found by an attacker's pass)."""
    clinic, key = harness.create_party("Clinic")
    with EidClient(harness.target, api_key=key) as clinic_client, event_receiver() as hooks:
        _operator_sets_webhook(harness, bank.party.id, hooks.url("/bank"), tmp_path, monkeypatch)
        _operator_sets_webhook(harness, clinic.id, hooks.url("/clinic"), tmp_path, monkeypatch)
        register_and_activate(harness, citizen_app, adult)
        for client in (clinic_client, bank.client):
            claim = client.verify_demographic(
                adult.personal_id, full_name=adult.full_name, birth_date=adult.birth_date
            )
            assert claim.verified and claim.receipt
        assert bank.client.verify_password(
            personal_id=adult.personal_id, password=PASSWORD
        ).verified
        citizen_app.lock_account(personal_id=adult.personal_id, password=PASSWORD)

        (post,) = hooks.wait_for(1, "/bank")
        keys = bank.client.verification_keys()
        event = verify_status_event(post.body, post.headers, keys, audience=bank.party.id)
        assert event.type == "account.locked"
        assert len(harness.rows(EVENTS)) == 1  # none was written for the clinic
        harness.run(harness.runtime.dispatcher.deliver_pending())
        assert hooks.posts("/clinic") == []


def test_a_webhook_answering_500_gets_the_same_event_again(
    harness: ServerHarness,
    citizen_app: EidClient,
    bank: Party,
    adult: Demographics,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with event_receiver(EventReceiver(script=[500])) as hooks:
        _operator_sets_webhook(harness, bank.party.id, hooks.url("/bank"), tmp_path, monkeypatch)
        _verified_then_locked(harness, citizen_app, bank, adult)
        hooks.wait_for(1)
        harness.clock.advance(timedelta(minutes=10))  # past the outbox's backoff
        harness.run(_wake(harness))
        first, second = hooks.wait_for(2)

        keys = bank.client.verification_keys()
        events = [
            verify_status_event(p.body, p.headers, keys, audience=bank.party.id)
            for p in (first, second)
        ]
        assert events[0].id == events[1].id
        assert first.body == second.body  # the same event, signed afresh
        assert [_headers(p)[IDEMPOTENCY_HEADER.lower()] for p in (first, second)] == [
            events[0].id
        ] * 2
        assert all(SIGNATURE_HEADER.lower() in _headers(p) for p in (first, second))
        # The dispatcher records "sent" just after the receiver answered 200.
        delivery = harness.rows_become(
            "SELECT d.state, d.attempts FROM outbox_deliveries d JOIN outbox o"
            " ON o.id = d.message_id WHERE o.channel = 'party_webhook'",
            [("sent", 2)],
        )
        assert delivery == [("sent", 2)]


def test_the_operator_cli_masks_a_token_in_the_webhook_s_query_but_posts_to_it_whole(
    harness: ServerHarness,
    citizen_app: EidClient,
    bank: Party,
    adult: Demographics,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Terminals and CI logs keep what the CLI prints; a party's receiver
    may take its token in the query, as many gateways do."""
    secret = "party-token-7f3a91"
    with event_receiver() as hooks:
        _operator_sets_webhook(
            harness, bank.party.id, hooks.url(f"/bank?token={secret}"), tmp_path, monkeypatch
        )
        assert main(["party", "webhook", bank.party.id]) == 0
        printed = capsys.readouterr().out
        assert secret not in printed
        # Set, then shown: both say where, with the value masked.
        assert printed.count("/bank?token=********") == 2, printed

        _verified_then_locked(harness, citizen_app, bank, adult)
        (post,) = hooks.wait_for(1)
        assert post.path == f"/bank?token={secret}"


def test_a_party_keeps_its_own_webhook_with_its_api_key(
    harness: ServerHarness, bank: Party
) -> None:
    url = "https://bank.example/eid/events?token=abc"
    hook = bank.client.set_status_webhook(url)
    assert hook.url == url and hook.HasField("update_time")
    assert bank.client.status_webhook() == hook

    # The second: 127.0.0.1 with ideographic full stops, which the HTTP
    # client reads as dots (it passed as a public name before).
    for inside in ("http://127.0.0.1:8080/hook", "https://127\u30020\u30020\u30021:8443/hook"):
        with pytest.raises(EidError) as refused:
            bank.client.set_status_webhook(inside)
        assert (refused.value.code, refused.value.reason) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "WEBHOOK_URL_NOT_PUBLIC",
        )
        assert refused.value.field_violations[0][0] == "url"
    with EidClient(harness.target, api_key="eidk_not-a-key") as stranger:
        with pytest.raises(EidError) as refused:
            stranger.status_webhook()
        assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED

    other, key = harness.create_party("Other")
    with EidClient(harness.target, api_key=key) as client:
        assert client.status_webhook() is None  # one party's webhook is its own
    del other
    bank.client.clear_status_webhook()
    assert bank.client.status_webhook() is None


class _Dribbling:
    """A party's receiver that answers a byte every 2 s and never finishes;
    it counts the requests it got and those the sender then gave up on."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.connections = 0
        self.given_up = 0
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._drip, args=(connection,), daemon=True).start()

    def _drip(self, connection: socket.socket) -> None:
        with connection, contextlib.suppress(OSError):
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            while not self._stop.is_set():
                # Readable at once when the sender hangs up (or sends the rest of its body).
                readable, _, _ = select.select([connection], [], [], 2)
                if readable and not connection.recv(65536):
                    self.given_up += 1
                    return
                if not readable:
                    connection.sendall(b"a")

    def close(self) -> None:
        self._stop.set()
        self._listener.close()


def test_a_party_s_slow_receiver_holds_up_nobody_else_s_messages(
    harness: ServerHarness,
    citizen_app: EidClient,
    bank: Party,
    adults: list[Demographics],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each sender's deliveries go on their own: while the bank's receiver
    dribbles its answers, another citizen's activation SMS still goes out at
    once (found by an attacker's pass: 89 s late, each pass waiting for every
    route's sends)."""
    receiver = _Dribbling()
    try:
        _operator_sets_webhook(
            harness,
            bank.party.id,
            f"http://127.0.0.1:{receiver.port}/events",
            tmp_path,
            monkeypatch,
        )
        _verified_then_locked(harness, citizen_app, bank, adults[0])
        assert until(lambda: receiver.connections > 0, 10), "the event was never sent"
        seen = len(harness.sender.messages)
        with EidClient(harness.target) as other:
            register(other, adults[1])
        assert harness.wait_for_code(phone_of(adults[1])[1], after=seen, timeout=10)
    finally:
        receiver.close()


def test_a_party_s_slow_receiver_holds_up_no_other_party_s_events(
    harness: ServerHarness,
    citizen_app: EidClient,
    bank: Party,
    adults: list[Demographics],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """All parties' events share one route, whose deliveries go on side by
    side, at most 2 to one party: while the bank's receiver holds its events'
    POSTs, the telco's event is delivered, and the bank's third event waits
    for one of the bank's own slots. Found by an attacker's pass: the
    telco's event came 30 s late, once the bank's send timed out, as the
    route started new deliveries only when a whole batch had ended."""
    slow = _Dribbling()
    telco_party, key = harness.create_party("Telco")
    *banked, other = adults[:4]
    try:
        with event_receiver() as hooks, EidClient(harness.target, api_key=key) as telco:
            url = f"http://127.0.0.1:{slow.port}/events"
            _operator_sets_webhook(harness, bank.party.id, url, tmp_path, monkeypatch)
            _operator_sets_webhook(
                harness, telco_party.id, hooks.url("/telco"), tmp_path, monkeypatch
            )
            for adult in (*banked, other):
                register_and_activate(harness, citizen_app, adult)
            for adult in banked:
                assert bank.client.verify_password(
                    personal_id=adult.personal_id, password=PASSWORD
                ).verified
            assert telco.verify_password(personal_id=other.personal_id, password=PASSWORD).verified
            for adult in banked:
                citizen_app.lock_account(personal_id=adult.personal_id, password=PASSWORD)
            harness.run(_wake(harness))
            assert until(lambda: slow.connections > 0, 20), "the bank's events were not sent"

            citizen_app.lock_account(personal_id=other.personal_id, password=PASSWORD)
            harness.run(_wake(harness))
            # A hang guard longer than a send may take: before, the event came
            # once the bank's sends had timed out.
            hooks.wait_for(1, "/telco", timeout=60)
            assert slow.given_up == 0, "the telco's event waited for the bank's sends to end"
            assert until(lambda: slow.connections >= 2, 20)
            # None of the bank's sends has ended, so its third event still waits.
            assert (slow.connections, slow.given_up) == (2, 0)
    finally:
        slow.close()
