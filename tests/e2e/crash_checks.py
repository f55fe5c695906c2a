"""What a crash run (tests/e2e/crash_harness.py) must leave behind.

Each check raises AssertionError naming what broke and returns a line for
the summary. The database is read directly, read-only; the server is asked
again through the API; the receivers say what was delivered.

The outbox guarantee asserted: every message the database holds is
delivered by the sender of its channel (none pending, none dead), nothing
reaches a receiver that the database does not hold, each acknowledged call
caused exactly the messages it implies, and a message may arrive more than
once only with the same id (the SMS webhook's and the status webhook's
Idempotency-Key, the email's Message-ID), the same contents, and only
across a kill (a worker killed between the send and recording it; its claim
lapses and another sends it again). A receiver that drops ids it has seen
thus gets every message exactly once: at-least-once delivery by design,
effectively once."""

from __future__ import annotations

import itertools
import sqlite3
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from google.protobuf.message import Message

from eid.v1 import identity_service_pb2 as pb
from eid_client.client import EidClient
from eid_client.errors import EidError
from eid_client.status_events import IDEMPOTENCY_HEADER, verify_status_event
from tests.e2e.conftest import BIN
from tests.e2e.crash_harness import Acked, Life, Run, integrity

# A request the killed worker had sent may be read by the receiver a moment
# after the kill.
ARRIVAL_SLACK_SECONDS = 1.0
DRAIN_SECONDS = 60.0


class Db:
    """Plain SQL on either database, read-only."""

    def __init__(self, url: str) -> None:
        self._sqlite: sqlite3.Connection | None = None
        self._pg: Any = None
        if url.startswith("sqlite:///"):
            path = url.removeprefix("sqlite:///")
            self._sqlite = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        else:
            import psycopg

            self._pg = psycopg.connect(url, autocommit=True)
            self._pg.execute("SET default_transaction_read_only = on")

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        if self._sqlite is not None:
            return [tuple(r) for r in self._sqlite.execute(sql).fetchall()]
        return [tuple(r) for r in self._pg.execute(sql).fetchall()]

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._pg is not None:
            self._pg.close()


@contextmanager
def database(url: str) -> Iterator[Db]:
    db = Db(url)
    try:
        yield db
    finally:
        db.close()


def _ok(answer: Message | EidError) -> bool:
    return not isinstance(answer, EidError)


def _registered(run: Run) -> list[Life]:
    return [x for x in run.ledger.lives if x.registered is not None and _ok(x.registered.answer)]


# --- during the load ----------------------------------------------------------------


def check_races(run: Run) -> str:
    """Every race had one winner and the losers the refusal of a used thing."""
    problems = run.ledger.problems
    assert not problems, f"{len(problems)} rules broken under load:\n" + "\n".join(problems[:20])
    return "every race had exactly one winner (activation codes, shares, locks)"


# --- asked again ----------------------------------------------------------------------


def _all_acked(run: Run) -> list[Acked]:
    calls: list[Acked] = []
    for life in _registered(run):
        assert life.registered is not None
        calls.append(life.registered)
        calls.extend(life.activations)
        calls.extend(life.locks)
        for share in life.shares:
            calls.append(share.issued)
            calls.extend(done for _, done in share.redemptions)
    return calls


def _again(call: Acked) -> Message | EidError:
    for _ in range(50):
        try:
            return call.again()
        except EidError as error:
            if error.reason not in ("PASSWORD_CHECKS_BUSY", "SERVER_BUSY"):
                return error
        time.sleep(0.1)
    raise AssertionError(f"{call.rpc} {call.request_id}: the server stayed busy")


def _shared_before_a_lock(run: Run) -> set[int]:
    """The ShareViaQR calls of locked citizens (check_accounts holds the
    account LOCKED): the lock ended their sessions, and a session's kept
    answers are given only while it is live (a signed-out token gets nothing)."""
    return {id(share.issued) for life in _registered(run) if life.locked for share in life.shares}


def check_replays(run: Run) -> str:
    """Every call sent again with its request id gets the answer it got:
    the same account, activation, share, verification (receipt and all) or
    lock; a refused one the same refusal. A share whose citizen was locked
    since gets SESSION_INVALID instead."""
    calls = _all_acked(run)
    ended = _shared_before_a_lock(run)
    with ThreadPoolExecutor(8) as pool:
        agains = list(pool.map(_again, calls))
    differ: list[str] = []
    for call, again in zip(calls, agains, strict=True):
        if isinstance(call.answer, EidError):
            same = isinstance(again, EidError) and again.reason == call.answer.reason
        elif id(call) in ended and isinstance(again, EidError):
            same = again.reason == "SESSION_INVALID"
        else:
            same = again == call.answer
        if not same:
            got = again.reason if isinstance(again, EidError) else "another answer"
            differ.append(f"{call.rpc} {call.request_id}: {got}")
    assert not differ, f"{len(differ)} of {len(calls)} replays differ:\n" + "\n".join(differ[:20])
    per_rpc = Counter(c.rpc for c in calls)
    listed = ", ".join(f"{rpc} {n}" for rpc, n in sorted(per_rpc.items()))
    return f"{len(calls)} request ids sent again got their first answers ({listed})"


# --- in the database ----------------------------------------------------------------


def check_accounts(run: Run, db: Db) -> str:
    """Exactly the accounts the clients were told of, in the state their
    answers imply; one activation code each, consumed once if activated."""
    lives = {x.account_id: x for x in _registered(run)}
    rows = {r[0]: r[1:] for r in db.rows("SELECT id, state, activated_at FROM accounts")}
    lost = set(lives) - set(rows)
    assert not lost, f"{len(lost)} acknowledged registrations lost: {sorted(lost)[:5]}"
    unheard = set(rows) - set(lives)
    assert not unheard, f"{len(unheard)} accounts no client was told of: {sorted(unheard)[:5]}"
    wrong: list[str] = []
    for account_id, life in lives.items():
        state, activated_at = rows[account_id]
        expected = "PENDING" if life.password is None else "LOCKED" if life.locked else "ACTIVE"
        if state.upper() != expected or (activated_at is None) != (life.password is None):
            wrong.append(f"{account_id}: {state}, expected {expected}")
    assert not wrong, f"{len(wrong)} accounts in the wrong state:\n" + "\n".join(wrong[:10])

    codes = db.rows(
        "SELECT account_id, COUNT(*), COUNT(consumed_at) FROM activation_codes"
        " WHERE purpose = 'activation' GROUP BY account_id"
    )
    activated = {a for a, x in lives.items() if x.password is not None}
    assert all(n == 1 for _, n, _ in codes) and {a for a, _, _ in codes} == set(lives), (
        "not one activation code per account"
    )
    used = {a: consumed for a, _, consumed in codes}
    twice = [a for a, consumed in used.items() if consumed > 1]
    assert not twice, f"activation codes consumed twice: {twice}"
    assert {a for a, consumed in used.items() if consumed == 1} == activated, (
        "consumed activation codes do not match the acknowledged activations"
    )
    locked = sum(1 for x in lives.values() if x.locked)
    return (
        f"{len(lives)} accounts exactly as acknowledged ({len(activated)} activated,"
        f" {locked} locked); each activation code consumed at most once"
    )


def check_audit_events(run: Run, db: Db) -> str:
    """Each acknowledged change audited once in the citizen's chain."""
    lives = {x.account_id: x for x in _registered(run)}
    counted: Counter[tuple[str, str, str]] = Counter()
    for account_id, action, outcome in db.rows(
        "SELECT account_id, action, outcome FROM audit_events WHERE account_id IS NOT NULL"
    ):
        counted[account_id, action, "ok" if outcome.startswith("ok") else outcome] += 1
    wrong: list[str] = []
    for account_id, life in lives.items():
        redeemed = sum(1 for s in life.shares if _winner(s.redemptions) is not None)
        expected = {
            ("register", "ok"): 1,
            ("activate", "ok"): int(life.password is not None),
            ("lock", "ok"): int(life.locked),
            ("verify.qr_share", "verified"): redeemed,
        }
        for (action, outcome), n in expected.items():
            if counted[account_id, action, outcome] != n:
                got = counted[account_id, action, outcome]
                wrong.append(f"{account_id}: {got} {action} {outcome}, expected {n}")
        if counted[account_id, "sign_in", "ok"] < len(life.sessions):
            wrong.append(f"{account_id}: fewer sign_in events than acknowledged sign-ins")
    assert not wrong, "audit events do not match:\n" + "\n".join(wrong[:10])
    return "every acknowledged change audited exactly once"


def check_sessions(run: Run, db: Db) -> str:
    """Every acknowledged sign-in's session, ended only by the lock."""
    rows = {
        r[0]: r[1:]
        for r in db.rows("SELECT id, account_id, revoked_at, revoked_reason FROM sessions")
    }
    acked = 0
    for life in _registered(run):
        for session in life.sessions:
            acked += 1
            assert session.session_id in rows, f"acknowledged session {session.session_id} lost"
            account_id, revoked_at, reason = rows[session.session_id]
            assert account_id == life.account_id, f"session {session.session_id}: another account"
            if life.locked:
                assert reason == "account_locked", (
                    f"session {session.session_id}: not ended by lock"
                )
            else:
                assert revoked_at is None, f"session {session.session_id} ended ({reason})"
    signed_in_doubt = run.ledger.in_doubt["SignIn"]
    unheard = len(rows) - acked
    assert 0 <= unheard <= signed_in_doubt, (
        f"{unheard} sessions no client heard of, but only {signed_in_doubt} SignIns in doubt"
    )
    return f"{acked} acknowledged sessions present ({unheard} more from sign-ins cut off)"


def _winner(redemptions: list[tuple[int, Acked]]) -> tuple[int, Acked] | None:
    won = {
        (party, done.request_id): (party, done)
        for party, done in redemptions
        if isinstance(done.answer, pb.VerifyResponse) and done.answer.verified
    }
    assert len(won) <= 1, "a share redeemed by two requests"
    return next(iter(won.values()), None)


def check_shares(run: Run, db: Db) -> str:
    """Exactly the shares issued; each redeemed once at most, by the party
    that was told so, before any lock; the verification it was told of kept."""
    party_ids = [p.party_id for p in run.parties]
    rows = {
        r[0]: r[1:]
        for r in db.rows(
            "SELECT id, account_id, redeemed_at, redeemed_by, revoked_at, redeem_count FROM shares"
        )
    }
    receipts = {
        r[0]: r[1:] for r in db.rows("SELECT id, party_id, account_id FROM verification_receipts")
    }
    issued = redeemed = 0
    for life in _registered(run):
        for share in life.shares:
            issued += 1
            assert share.share_id in rows, f"acknowledged share {share.share_id} lost"
            account_id, redeemed_at, redeemed_by, revoked_at, count = rows[share.share_id]
            assert account_id == life.account_id, f"share {share.share_id}: another account"
            won = _winner(share.redemptions)
            if won is None:
                assert redeemed_at is None and count == 0, f"share {share.share_id} redeemed unseen"
                revoked = revoked_at is not None
                assert revoked == life.locked, (
                    f"share {share.share_id}: revoked {revoked}, its account locked {life.locked}"
                )
                continue
            redeemed += 1
            party, done = won
            assert isinstance(done.answer, pb.VerifyResponse)
            assert redeemed_by == party_ids[party] and count == 1, (
                f"share {share.share_id}: redeemed {count} times, by {redeemed_by}"
            )
            receipt = receipts.get(done.answer.verification_id)
            assert receipt == (party_ids[party], life.account_id), (
                f"verification {done.answer.verification_id} lost"
            )
    unheard = set(rows) - {s.share_id for x in _registered(run) for s in x.shares}
    assert not unheard, f"{len(unheard)} shares no client was told of"
    assert len(receipts) == redeemed, f"{len(receipts)} verifications for {redeemed} redemptions"
    ((late,),) = db.rows(
        "SELECT COUNT(*) FROM shares s JOIN accounts a ON a.id = s.account_id"
        " WHERE s.redeemed_at IS NOT NULL AND a.locked_at IS NOT NULL"
        " AND s.redeemed_at > a.locked_at"
    )
    assert late == 0, f"{late} shares redeemed after their account was locked"
    return f"{issued} shares exactly as issued, {redeemed} redeemed once each, none after a lock"


# --- the outbox and what the receivers got -----------------------------------------


def _drained(db: Db) -> bool:
    ((unsettled,),) = db.rows("SELECT COUNT(*) FROM outbox_deliveries WHERE state <> 'sent'")
    ((unrouted,),) = db.rows("SELECT COUNT(*) FROM outbox WHERE routed_at IS NULL")
    return bool(unsettled == 0 and unrouted == 0)


def _explained_by_kills(arrivals: list[float], kills: list[float]) -> bool:
    """Each arrival after the first follows a kill that the one before it preceded."""
    return all(
        any(earlier - ARRIVAL_SLACK_SECONDS <= k <= later for k in kills)
        for earlier, later in itertools.pairwise(arrivals)
    )


Arrivals = dict[str, list[tuple[float, Any]]]


# Each outbox channel and the one sender that delivers it.
ROUTE = {"sms": "webhook", "email": "smtp", "party_webhook": "party_webhook"}


def _settled(db: Db) -> dict[str, str]:
    """Once every message is routed and every delivery sent: message id ->
    channel. Each message was delivered by the one sender of its channel,
    and its destination and text were erased."""
    deadline = time.monotonic() + DRAIN_SECONDS
    while not _drained(db):
        if time.monotonic() > deadline:
            states = db.rows(
                "SELECT sender, state, COUNT(*) FROM outbox_deliveries GROUP BY sender, state"
            )
            raise AssertionError(f"the outbox did not drain in {DRAIN_SECONDS:.0f} s: {states}")
        time.sleep(0.2)
    deliveries: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for message_id, sender, state in db.rows(
        "SELECT message_id, sender, state FROM outbox_deliveries"
    ):
        deliveries[message_id].append((sender, state))
    channels: dict[str, str] = {}
    for message_id, channel, destination, body in db.rows(
        "SELECT id, channel, destination_enc, body_enc FROM outbox"
    ):
        assert deliveries[message_id] == [(ROUTE[channel], "sent")], (
            f"{message_id} ({channel}): deliveries {deliveries[message_id]}"
        )
        assert destination is None and body is None, f"{message_id}: contents kept after delivery"
        channels[message_id] = channel
    return channels


def _repeats(what: str, received: Arrivals, kills: list[float]) -> int:
    """Repeated deliveries, each the same contents and each across a kill."""
    repeated = 0
    for key, arrivals in received.items():
        repeated += len(arrivals) - 1
        assert all(a[1] == arrivals[0][1] for a in arrivals), (
            f"{what} {key} sent twice with other contents"
        )
        assert _explained_by_kills([a[0] for a in arrivals], kills), (
            f"{what} {key} sent {len(arrivals)} times, not across a kill"
        )
    return repeated


def _sms(run: Run, sent: set[str]) -> Arrivals:
    hooks: Arrivals = defaultdict(list)
    for arrived, hook in run.gateway.timed():
        assert hook.signature_ok and hook.payload["id"] == hook.idempotency_key
        hooks[hook.idempotency_key].append((arrived, hook.payload))
    assert set(hooks) == sent, (
        f"SMS: {len(sent - set(hooks))} sent but never received,"
        f" {len(set(hooks) - sent)} received but not in the outbox"
    )
    return hooks


def _emails(run: Run, sent: set[str]) -> Arrivals:
    mails: Arrivals = defaultdict(list)
    for mail in run.mailbox.timed():
        message_id = mail.message_id.strip("<>").split("@")[0]
        contents = {"to": mail.to, "subject": mail.subject, "body": mail.body}
        mails[message_id].append((mail.arrived, contents))
    assert set(mails) == sent, (
        f"email: {len(sent - set(mails))} sent but never received,"
        f" {len(set(mails) - sent)} received but not in the outbox"
    )
    return mails


def _status_events(run: Run, sent: int) -> tuple[Arrivals, Counter[tuple[str, str]]]:
    """The bank's webhook: every POST signed by the published keys for the
    bank, under its event id; the events by (type, subject)."""
    bank = run.parties[0].party_id
    with EidClient(run.server.target) as anyone:
        keys = anyone.verification_keys()
    posts: Arrivals = defaultdict(list)
    kinds: Counter[tuple[str, str]] = Counter()
    for arrived, wall, post in run.events.timed():
        assert post.path == "/bank", f"a status event POSTed to {post.path}"
        event = verify_status_event(post.body, post.headers, keys, audience=bank, now=wall)
        headers = {k.lower(): v for k, v in post.headers.items()}
        assert headers[IDEMPOTENCY_HEADER.lower()] == event.id
        if event.id not in posts:
            kinds[event.type, event.subject] += 1
        posts[event.id].append((arrived, post.body))
    assert len(posts) == sent, f"{sent} status events sent, {len(posts)} received"
    return posts, kinds


def check_outbox(run: Run, db: Db) -> str:
    channels = _settled(db)
    # Every channel, also one that sent nothing in this run (a run whose
    # locked citizens registered no email sends no email).
    sent = {c: {m for m, channel in channels.items() if channel == c} for c in ROUTE}
    sms = _sms(run, sent["sms"])
    mails = _emails(run, sent["email"])
    events, kinds = _status_events(run, len(sent["party_webhook"]))
    kills = run.server.kill_times
    repeated = _repeats("SMS", sms, kills) + _repeats("email", mails, kills)
    repeated += _repeats("status event", events, kills)

    # What the acknowledged calls imply: one code per registration, one
    # notice per lock (to the phone, and to the email registered), one
    # status event per lock of a citizen the bank had verified.
    per_phone = Counter((a[0][1]["to"], a[0][1]["kind"]) for a in sms.values())
    per_email = Counter(a[0][1]["to"] for a in mails.values())
    expected_events: Counter[tuple[str, str]] = Counter()
    lives = _registered(run)
    for life in lives:
        assert per_phone[life.e164, "activation_code"] == 1, "not one activation SMS"
        assert per_phone[life.e164, "account_locked"] == int(life.locked), "not one locked SMS"
        if life.email:
            assert per_email[life.email] == int(life.locked), "not one locked email"
        subjects = {
            won[1].answer.subject
            for share in life.shares
            if (won := _winner(share.redemptions)) is not None
            and won[0] == 0
            and isinstance(won[1].answer, pb.VerifyResponse)
        }
        if life.locked and subjects:
            (subject,) = subjects
            expected_events["account.locked", subject] += 1
    assert kinds == expected_events, "the bank's status events are not one per verified lock"
    locked = sum(1 for x in lives if x.locked)
    assert len(sms) == len(lives) + locked, f"{len(sms)} SMS for {len(lives)} + {locked}"
    return (
        f"outbox: {len(sms)} SMS, {len(mails)} emails and {len(events)} status events, each"
        " delivered, received and implied by an acknowledged call (effectively once:"
        f" {repeated} repeats, each after a kill, same id and contents)"
    )


# --- tools ------------------------------------------------------------------------------


def check_audit_chains(run: Run) -> str:
    done = subprocess.run(
        [str(BIN / "eid-server"), "audit", "verify"],
        cwd=run.server.workdir,
        env={**run.server.env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"eid-server audit verify:\n{done.stdout}\n{done.stderr}"
    last = done.stdout.strip().splitlines()[-1]
    assert "every audit chain is intact" in last, last
    return f"eid-server audit verify: {last}"


def check_integrity(run: Run, path: Path) -> str:
    """Once the server has stopped (after each kill, the drive checked it too)."""
    found = integrity(path)
    assert found == [("ok",)], f"PRAGMA integrity_check: {found[:10]}"
    return (
        f"PRAGMA integrity_check: ok after each of {run.checked_after_kills} kills and at the end"
    )


def check_all(run: Run) -> list[str]:
    """Everything but the integrity check (done once the server has stopped)."""
    passed = [check_races(run), check_replays(run)]
    with database(run.database_url) as db:
        passed += [
            check_accounts(run, db),
            check_sessions(run, db),
            check_shares(run, db),
            check_audit_events(run, db),
            check_outbox(run, db),
        ]
    passed.append(check_audit_chains(run))
    return passed


def summary(run: Run, label: str, passed: list[str]) -> str:
    ledger = run.ledger

    def listed(tally: Counter[str]) -> str:
        return ", ".join(f"{k} {n}" for k, n in sorted(tally.items())) or "none"

    return "\n".join(
        [
            f"crash harness [{label}]: seed {run.plan.seed}, {len(run.server.kill_times)} kills"
            f" in {run.load_seconds:.1f} s of load, {time.monotonic() - run.started:.1f} s in all",
            f"  acknowledged: {listed(ledger.acked)}",
            f"  refused (race losers): {listed(ledger.refused)}",
            f"  cut off in flight by a kill: {listed(ledger.cut_off)}",
            f"  sent again (cut off, server down or busy): {listed(ledger.in_doubt)}",
            "  checks passed:",
            *(f"    - {line}" for line in passed),
        ]
    )
