"""``eid modes``, ``eid lock-mode`` and ``eid unlock-mode``: the signed-in
citizen locks single Verify modes (for example the one-time code) and
unlocks them, for good or for a few minutes."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from rich.table import Column

from eid.v1 import identity_service_pb2 as pb
from eid_client import _output
from eid_client._cli_common import Subparsers, request_id_option, session_option, subcommand
from eid_client._commands import session_of
from eid_client._mode_lock_calls import LOCKABLE_MODES
from eid_client._output import Output
from eid_client.client import EidClient

_MODES = ", ".join(LOCKABLE_MODES)
_DETAILS = """
    Lockable modes: password, one_time_code (or otp), approval, demographic, biometric.
    While a mode is locked, a relying party that proves the credential in it
    (a right password or code) is refused with AUTH_MODE_LOCKED, anyone else
    gets the answer of a wrong credential, and no one-time code is sent. QR
    shares cannot be locked: revoke them with `eid revoke-share`.
"""


def add_commands(sub: Subparsers) -> None:
    p = subcommand(
        sub,
        "modes",
        modes,
        "Citizen: your lockable Verify modes, each locked or not.",
        """
          eid modes                                  # the session in EID_SESSION
          eid --json modes
        """,
        details=_DETAILS,
    )
    session_option(p)

    p = subcommand(
        sub,
        "lock-mode",
        lock_mode,
        "Citizen: lock one Verify mode, so that no relying party verifies you by it.",
        """
          eid lock-mode one_time_code      # no party can text you a code to verify you
          eid lock-mode password
          eid lock-mode demographic
        """,
        details=_DETAILS,
    )
    _mode_argument(p)
    session_option(p)
    request_id_option(p)

    p = subcommand(
        sub,
        "unlock-mode",
        unlock_mode,
        "Citizen: unlock one Verify mode, for good or for a few minutes.",
        """
          eid unlock-mode one_time_code --minutes 10   # the bank may text you a code for
                                                       # 10 minutes; then it is locked again
          eid unlock-mode password                     # unlocked for good
        """,
        details=_DETAILS
        + """
    With --minutes (1 to 1440) the mode is open for that long and locked again
    afterwards, even if it was not locked before.
""",
    )
    _mode_argument(p)
    p.add_argument(
        "--minutes",
        type=_minutes,
        metavar="N",
        help="unlock for N minutes only (1 to 1440), then lock again",
    )
    session_option(p)
    request_id_option(p)


def _mode_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("mode", metavar="MODE", help=f"one of {_MODES} (or otp)")


def _minutes(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of minutes: {text!r}") from None
    if not 1 <= value <= 24 * 60:
        raise argparse.ArgumentTypeError("a temporary unlock lasts 1 to 1440 minutes")
    return value


def modes(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    token = session_of(args, "modes")
    _show(out, client.verify_mode_locks(session_token=token))
    return 0


def lock_mode(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    token = session_of(args, "lock-mode")
    response = client.lock_verify_mode(args.mode, request_id=args.request_id, session_token=token)
    _show(out, response.modes)
    return 0


def unlock_mode(args: argparse.Namespace, client: EidClient, out: Output) -> int:
    token = session_of(args, "unlock-mode")
    response = client.unlock_verify_mode(
        args.mode, minutes=args.minutes, request_id=args.request_id, session_token=token
    )
    _show(out, response.modes)
    return 0


def _columns() -> list[Column]:
    return [Column("Mode", no_wrap=True), Column("State", no_wrap=True), Column("Locks again")]


def _show(out: Output, locks: Sequence[pb.VerifyModeLock]) -> None:
    if out.as_json:
        out.json(pb.GetVerifyModeLocksResponse(modes=locks))
        return
    rows = [
        [
            pb.VerificationMethod.Name(lock.mode).removeprefix("VERIFICATION_METHOD_").lower(),
            "locked" if lock.locked else "unlocked",
            _output.when(lock.relock_time) if lock.HasField("relock_time") else "-",
        ]
        for lock in locks
    ]
    out.grid("Verify modes", _columns, rows, caption=f"times in {_output.local_zone()}")
