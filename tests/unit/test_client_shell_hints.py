"""The commands ``eid`` suggests next ("Next: eid approval wait ID") hold values
the server sent (approval ids, codes, page tokens, account ids). People paste
them into a shell, so each value is one shell word, quoted when it needs it: a
server that is not eid (a wrong --target, a proxy on a plaintext channel) must
not be able to hand the reader ``$(...)`` or ``; cmd`` to run."""

from __future__ import annotations

import shlex

import pytest

from eid.v1 import identity_service_pb2 as pb
from eid_client.cli import main
from tests.unit.client_cli_kit import fresh_terminal
from tests.unit.test_client_calls import FakeEid

# Runs a command if pasted unquoted: a subshell, a second command, a glob.
HOSTILE = "x$(touch pwned);touch pwned2 *"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh_terminal(monkeypatch)


def suggested_commands(err: str) -> list[list[str]]:
    """Each ``eid ...`` command in the hints, split as a POSIX shell would."""
    commands = []
    for line in err.splitlines():
        start = line.find("eid ")
        if start >= 0 and "<" not in line:  # a command, not a template to fill in
            commands.append(shlex.split(line[start:]))
    return commands


def run(target: str, *argv: str) -> int:
    return main(["--target", target, *argv])


def test_an_approval_start_suggests_waiting_for_the_id_as_one_word(
    capsys: pytest.CaptureFixture[str],
) -> None:
    started = pb.StartApprovalResponse(approval_id=HOSTILE, verification_code="4821")
    with FakeEid(StartApproval=started).serve() as target:
        assert run(target, "--api-key", "k", "approval", "start", "--id", "001190791514") == 0
    assert ["eid", "approval", "wait", HOSTILE] in suggested_commands(capsys.readouterr().err)


def test_a_claimed_request_suggests_approve_and_decline_with_quoted_values(
    capsys: pytest.CaptureFixture[str],
) -> None:
    request = pb.ApprovalRequest(
        approval_id=HOSTILE,
        party_id="rp_shop",
        party_name="Shop",
        verification_code=HOSTILE,
        state=pb.APPROVAL_STATE_PENDING,
    )
    claimed = pb.ClaimApprovalResponse(approval_request=request)
    with FakeEid(ClaimApproval=claimed).serve() as target:
        assert run(target, "claim", "eid-apr.x", "--session", "s") == 0
    commands = suggested_commands(capsys.readouterr().err)
    assert ["eid", "approve", HOSTILE, "--code", HOSTILE] in commands
    assert ["eid", "decline", HOSTILE] in commands


def test_the_next_page_of_approvals_and_of_history_is_one_word(
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake = FakeEid(
        ListApprovalRequests=pb.ListApprovalRequestsResponse(next_page_token=HOSTILE),
        ListAccessHistory=pb.ListAccessHistoryResponse(next_page_token=HOSTILE),
    )
    with fake.serve() as target:
        assert run(target, "approvals", "--session", "s") == 0
        assert run(target, "history", "--session", "s", "--dependant", "acc 1") == 0
    commands = suggested_commands(capsys.readouterr().err)
    assert ["eid", "approvals", "--page-token", HOSTILE] in commands
    assert ["eid", "history", "--page-token", HOSTILE, "--dependant", "acc 1"] in commands


def test_a_new_dependant_is_shared_by_an_account_id_of_one_word(
    capsys: pytest.CaptureFixture[str],
) -> None:
    child = pb.Dependant(account=pb.Account(account_id=HOSTILE))
    with FakeEid(RegisterDependant=pb.RegisterDependantResponse(dependant=child)).serve() as target:
        argv = ["dependant-add", "--session", "s", "--id", "079215000123"]
        argv += ["--name", "Phạm Minh Khang", "--birth-date", "2015-03-10", "--gender", "male"]
        assert run(target, *argv) == 0
    commands = suggested_commands(capsys.readouterr().err)
    assert ["eid", "share", "--dependant", HOSTILE] in commands


def test_plain_values_are_shown_as_they_are(capsys: pytest.CaptureFixture[str]) -> None:
    """Quoting only what needs it: an ordinary id reads as before."""
    started = pb.StartApprovalResponse(approval_id="apr_01HZX3", verification_code="4821")
    with FakeEid(StartApproval=started).serve() as target:
        assert run(target, "--api-key", "k", "approval", "start", "--id", "001190791514") == 0
    assert "Next: eid approval wait apr_01HZX3\n" in capsys.readouterr().err
