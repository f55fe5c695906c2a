"""Key changes by real operator processes next to a serving `eid-server`
(two workers), on SQLite and PostgreSQL: 16 `eid-server keys rotate` and 16
`eid-server party rotate-key` (with and without --force) at the same moment,
and `keys rotate` killed (SIGKILL) half-way through its transaction.
Receipts the server signs meanwhile must verify with the keys it publishes
afterwards."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from eid.v1 import identity_service_pb2 as pb
from eid_client.client import EidClient
from eid_client.errors import EidError
from eid_client.keys_cache import key_set_from_response
from eid_client.offline import KeySet
from eid_client.receipts import verify_receipt
from tests.e2e.conftest import BIN, Deployment, Device, prepare, serving_two_workers
from tests.e2e.test_account_life import ID, PASSWORD, PHONE_E164, _activate, _register
from tests.polling import until

pytestmark = pytest.mark.e2e

KEY_CACHE_SECONDS = 5  # use_cases/signing_keys.py: KEY_CACHE_TTL_SECONDS
PARTY_CACHE_SECONDS = 10  # use_cases/party_cache.py: TTL_SECONDS
AT_ONCE = 16


@pytest.fixture
def served(tmp_path: Path, database_url: str) -> Iterator[Deployment]:
    """`make run`'s set-up on a fresh database of each kind, served by two workers."""
    env = {**prepare(tmp_path, EID_DATABASE_URL=database_url), "COLUMNS": "200"}
    with serving_two_workers(tmp_path, env) as d:
        yield d


def _at_once(d: Deployment, *args: str) -> list[subprocess.CompletedProcess[str]]:
    """`eid-server *args`, AT_ONCE copies started together; each one's outcome."""
    started = [
        subprocess.Popen(
            [str(BIN / "eid-server"), *args],
            cwd=d.workdir,
            env=d.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(AT_ONCE)
    ]
    done = []
    for process in started:
        out, err = process.communicate(timeout=120)
        done.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return done


def _bank(d: Deployment) -> str:
    """A party that may verify by password, as often as this test asks; its API key."""
    created = d.admin(
        "party", "create", "--name", "Race Bank", "--modes", "password",
        "--rate-limit", "100000", "--citizen-rate-limit", "100000",
    )  # fmt: skip
    return created.strip().splitlines()[-1]


def _citizen(d: Deployment) -> None:
    device = Device(d.target)
    try:
        _register(device)
        assert not isinstance(_activate(device, d.latest_code(PHONE_E164)), EidError)
    finally:
        device.channel.close()


def _published(d: Deployment) -> tuple[pb.GetVerificationKeysResponse, KeySet]:
    with EidClient(d.target) as anyone:
        response = anyone.get_verification_keys()
    return response, key_set_from_response(response)


def _current(response: pb.GetVerificationKeysResponse) -> list[str]:
    return [k.key_id for k in response.keys if k.state == pb.VERIFICATION_KEY_STATE_CURRENT]


class Receipts:
    """Verifies the citizen over and over in a thread, keeping each receipt."""

    def __init__(self, d: Deployment, api_key: str) -> None:
        # 16 Python processes starting on a small machine starve the server of
        # CPU for tens of seconds: calls wait rather than time out.
        self._client = EidClient(d.target, api_key=api_key, timeout=120)
        self.signed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self._stop.is_set():
            answer = self._client.verify_password(personal_id=ID, password=PASSWORD)
            assert answer.verified
            self.signed.append(answer.receipt)

    def one(self) -> str:
        answer = self._client.verify_password(personal_id=ID, password=PASSWORD)
        return answer.receipt

    def __enter__(self) -> Receipts:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)
        self._client.close()


def _key_of(receipt: str, keys: KeySet) -> str:
    """The id of the key that signed a genuine receipt."""
    verify_receipt(receipt, keys)
    header = receipt.split(".", 1)[0]
    kid: str = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
    return kid


@pytest.fixture
def soak_only() -> None:
    """Sixteen operator processes take ~15 s on 2 cores, set-up apart: make
    test races the same changes inside one process instead (test_share_keys.py,
    test_party_admin.py: 16 rotations at once, on both databases)."""
    if os.environ.get("EID_SOAK") != "1":
        pytest.skip("long (16 operator processes): `make soak` runs it")


@pytest.mark.soak
def test_sixteen_key_rotations_at_once_each_make_a_key_one_current_and_receipts_verify(
    soak_only: None, served: Deployment
) -> None:
    d = served
    api_key = _bank(d)
    _citizen(d)
    with Receipts(d, api_key) as receipts:
        done = _at_once(d, "keys", "rotate")
        response, keys = _published(d)
        current = _current(response)
        assert len(current) == 1, current
        # Once every worker's key cache has lapsed, receipts are signed by it.
        assert until(lambda: _key_of(receipts.one(), keys) == current[0], 3 * KEY_CACHE_SECONDS)

    failed = [p.stdout + p.stderr for p in done if p.returncode != 0]
    assert not failed, failed[0]
    made = [re.search(r"new current key (\S+)", p.stdout) for p in done]
    made_ids = {m.group(1) for m in made if m is not None}
    assert len(made_ids) == AT_ONCE
    response, keys = _published(d)
    assert set(_current(response)) <= made_ids  # the current key is one an operator was shown
    assert made_ids <= {k.key_id for k in response.keys}  # none lost
    assert receipts.signed
    for receipt in receipts.signed:  # signed meanwhile, by whichever key was current
        verify_receipt(receipt, keys)


def _meets(d: Deployment, api_key: str) -> str:
    """What a Verify with this key meets: "served" (as far as the missing
    credential) or the reason it was refused."""
    device = Device(d.target)
    try:
        answer = device("Verify", pb.VerifyRequest(), x_api_key=api_key)
    finally:
        device.channel.close()
    assert isinstance(answer, EidError)
    return "refused" if answer.reason == "API_KEY_INVALID" else "served"


def _leaky_bank(d: Deployment) -> tuple[str, str]:
    """A new party, its key now cached by a worker (for 10 s): its id and key."""
    created = d.admin("party", "create", "--name", "Leaky Bank")
    original = created.strip().splitlines()[-1]
    party_id = re.findall(r"rp_[0-9a-f]{16}", created)[0]
    assert _meets(d, original) == "served"
    return party_id, original


@pytest.mark.soak
def test_sixteen_party_key_rotations_at_once_make_one_key_and_refuse_the_rest(
    soak_only: None, served: Deployment
) -> None:
    """Each operator used to be shown a key, and every one but the last
    rotation's stopped at once: parties were handed dead keys. One rotates;
    the others are refused, naming --force, and print no key."""
    d = served
    party_id, original = _leaky_bank(d)

    done = _at_once(d, "party", "rotate-key", party_id, "--overlap", "0")

    rotated = [p for p in done if p.returncode == 0]
    refused = [p for p in done if p.returncode != 0]
    assert len(rotated) == 1, [p.stdout + p.stderr for p in done]
    assert len(refused) == AT_ONCE - 1
    for p in refused:
        assert p.returncode == 1, p.stdout + p.stderr
        assert "was made by a rotation" in p.stdout and "--force" in p.stdout, p.stdout
        assert "eidk_" not in p.stdout + p.stderr
    key = rotated[0].stdout.strip().splitlines()[-1]
    assert key.startswith("eidk_") and key not in rotated[0].stderr
    assert _meets(d, key) == "served"
    # The leaked key is refused once the workers' cache of it lapses.
    assert until(lambda: _meets(d, original) == "refused", 3 * PARTY_CACHE_SECONDS, every=0.5)
    assert _meets(d, key) == "served"


@pytest.mark.soak
def test_sixteen_forced_party_key_rotations_at_once_leave_one_working_key_an_operator_was_shown(
    soak_only: None, served: Deployment
) -> None:
    d = served
    party_id, original = _leaky_bank(d)

    done = _at_once(d, "party", "rotate-key", party_id, "--overlap", "0", "--force")

    failed = [p.stdout + p.stderr for p in done if p.returncode != 0]
    assert not failed, failed[0]
    shown = [p.stdout.strip().splitlines()[-1] for p in done]
    assert all(key.startswith("eidk_") for key in shown) and len(set(shown)) == AT_ONCE
    # The keys printed go to no log or error stream.
    assert not any(key in p.stderr for p in done for key in shown)
    working = [key for key in shown if _meets(d, key) == "served"]
    assert len(working) == 1  # the last rotation's: every other one it stopped
    # The leaked key is refused once the workers' cache of it lapses.
    assert until(lambda: _meets(d, original) == "refused", 3 * PARTY_CACHE_SECONDS, every=0.5)
    assert _meets(d, working[0]) == "served"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_keys_rotate_killed_between_its_writes_changes_nothing_and_can_be_run_again(
    served: Deployment, database_url: str
) -> None:
    """SIGKILL after the old key is retired and before the new one is in:
    a trigger holds the insert (PostgreSQL) while the process is killed."""
    import psycopg

    d = served
    api_key = _bank(d)
    _citizen(d)
    before, _ = _published(d)
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(
            "CREATE FUNCTION held_insert() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN PERFORM pg_sleep(3); RETURN NEW; END $$"
        )
        admin.execute(
            "CREATE TRIGGER held_insert BEFORE INSERT ON signing_keys"
            " FOR EACH ROW EXECUTE FUNCTION held_insert()"
        )
        rotating = subprocess.Popen(
            [str(BIN / "eid-server"), "keys", "rotate"],
            cwd=d.workdir,
            env=d.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def retired_and_held() -> bool:
            row = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'"
                " AND query LIKE 'INSERT INTO signing_keys%'"
            ).fetchone()
            return row is not None and row[0] == 1

        assert until(retired_and_held, 60, every=0.02), "the rotation never reached its insert"
        rotating.kill()
        rotating.wait()
        # Waits for the killed session's transaction to end (it holds the table).
        admin.execute("DROP TRIGGER held_insert ON signing_keys")
        admin.execute("DROP FUNCTION held_insert()")

    after, keys = _published(d)
    assert _current(after) == _current(before)  # nothing half-done: the old key still signs
    assert [k.key_id for k in after.keys] == [k.key_id for k in before.keys]
    with EidClient(d.target, api_key=api_key) as bank:
        receipt = bank.verify_password(personal_id=ID, password=PASSWORD).receipt
    assert _key_of(receipt, keys) == _current(before)[0]

    again = d.admin("keys", "rotate")  # the operator runs it again
    made = re.search(r"new current key (\S+)", again)
    assert made is not None
    # Published by each worker once its key cache has lapsed.
    assert until(lambda: _current(_published(d)[0]) == [made.group(1)], 3 * KEY_CACHE_SECONDS)
    _, keys = _published(d)
    verify_receipt(receipt, keys)  # what the old key signed still verifies
