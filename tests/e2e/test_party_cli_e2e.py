"""`eid-server party` as an operator runs it, next to a running server: what
each command prints, its exit status, and what the party's calls meet.

Servers cache a party for 10 s once it has called; each probe here uses a key
no server has seen yet, so what it meets is the stored state, at once."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from eid.v1 import identity_service_pb2 as pb
from eid_client.errors import EidError
from tests.e2e.conftest import BIN, Deployment, Device, prepare

pytestmark = pytest.mark.e2e


class Operator:
    """Runs `eid-server party ...` in a deployment's directory."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir, self.env = workdir, {**env, "COLUMNS": "200"}  # rich tables at full width

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "eid-server"), "party", *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,  # not a terminal: nothing is asked
            check=False,
        )


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _key(output: str) -> str:
    key = output.strip().splitlines()[-1]
    assert re.fullmatch(r"eidk_\S+", key), output
    return key


def _meets(d: Deployment, api_key: str) -> str:
    """The reason a Verify with this key meets: authentication comes first, so
    an ACTIVE party gets as far as the missing credential."""
    device = Device(d.target)
    try:
        answer = device("Verify", pb.VerifyRequest(), x_api_key=api_key)
    finally:
        device.channel.close()
    assert isinstance(answer, EidError)
    return f"{answer.code.name} {answer.reason}"


def test_an_operator_creates_shows_suspends_resumes_rotates_and_deletes_a_party(
    deployment: Deployment,
) -> None:
    d = deployment
    party = Operator(d.workdir, d.env)
    created = _ok(
        party("create", "--name", "E2E Bank", "--contact", "ops@e2e.vn", "--scopes", "basic")
    )
    found = re.search(r"rp_[0-9a-f]{16}", created)
    assert found is not None
    party_id, key = found.group(0), _key(created)
    assert "shown this once" in created
    assert "approval, demographic, one_time_code, qr_share" in created  # no password

    shown = _ok(party("show", party_id))
    for text in (
        "E2E Bank",
        "ops@e2e.vn",
        "active",
        "basic (birth_date, full_name, gender, nationality)",
    ):
        assert text in shown
    assert key not in shown
    listed = _ok(party("list"))
    assert party_id in listed and "600/10" in listed

    assert "suspended" in _ok(party("suspend", party_id))
    assert "nothing changed" in _ok(party("suspend", party_id))
    assert "suspended since" in _ok(party("show", party_id))
    assert _meets(d, key) == "PERMISSION_DENIED PARTY_SUSPENDED"
    assert "resumed" in _ok(party("resume", party_id))

    rotated = _ok(party("rotate-key", party_id, "--overlap", "30m"))
    new_key = _key(rotated)
    assert new_key != key and "the old API key keeps working until" in rotated
    assert _meets(d, new_key) == "INVALID_ARGUMENT CREDENTIAL_MISSING"  # served again
    assert "works until" in _ok(party("show", party_id))
    too_long = party("rotate-key", party_id, "--overlap", "31d")
    assert too_long.returncode == 2 and "0 to 30 days" in too_long.stderr

    # A key a rotation made moments ago (another operator's, maybe) is kept.
    again = party("rotate-key", party_id, "--overlap", "0")
    assert again.returncode == 1 and "--force" in again.stdout, again.stdout + again.stderr
    assert "was made by a rotation" in again.stdout and "eidk_" not in again.stdout
    assert len(again.stdout.strip().splitlines()) == 1
    assert _meets(d, new_key) == "INVALID_ARGUMENT CREDENTIAL_MISSING"
    last_key = _key(_ok(party("rotate-key", party_id, "--overlap", "0", "--force")))
    unconfirmed = party("delete", party_id)
    assert unconfirmed.returncode == 2 and "--yes" in unconfirmed.stdout
    assert "deleted" in _ok(party("delete", party_id, "--yes"))
    assert _meets(d, last_key) == "UNAUTHENTICATED API_KEY_INVALID"
    gone = party("show", party_id)
    assert gone.returncode == 1 and "no relying party has the id" in gone.stdout
    assert party_id not in _ok(party("list"))


def test_bad_input_is_named_by_its_option(tmp_path: Path) -> None:
    party = Operator(tmp_path, prepare(tmp_path))  # no server needed
    low = party("create", "--name", "B", "--rate-limit", "5", "--citizen-rate-limit", "6")
    assert low.returncode == 2 and "--citizen-rate-limit" in low.stdout
    blank = party("create", "--name", "  ")
    assert blank.returncode == 2 and "--name" in blank.stdout
    unknown = party("create", "--name", "B", "--scopes", "documents")
    assert unknown.returncode == 2 and "unknown scope 'documents'" in unknown.stderr
    missing = party("suspend", "rp_0000000000000000")
    assert missing.returncode == 1 and "rp_0000000000000000" in missing.stdout
