"""`eid-server rotate-keys`: a new key for the personal data sealed at rest
(field encryption, AES-256-GCM), and every sealed blob moved to it while the
servers keep serving; then the old key can leave the key ring.

Not to be confused with `eid-server keys rotate`, which rotates the Ed25519
keys that sign QR shares. The HMAC key behind the blind indexes is not
rotated (every index would change with it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from eid_service.app import bootstrap
from eid_service.cli_values import whole_number
from eid_service.config import Settings
from eid_service.key_rotation import DEFAULT_PAGE, Rotation, due_rows, reencrypt_all
from eid_service.security.key_watch import RELOAD_SECONDS
from eid_service.security.keys import (
    add_encryption_key,
    load_key_ring,
    replace_key_ring,
    retired_encryption_keys,
    without_retired_encryption_keys,
)

ROTATE_EXAMPLES = f"""\
examples:
  eid-server rotate-keys            add a new active encryption key to the key ring
                                    (EID_KEYS_FILE), then re-encrypt every sealed blob
                                    under an older key, a page of rows per transaction,
                                    while the servers serve (they load the new ring
                                    within {RELOAD_SECONDS:g} s)
  eid-server rotate-keys --resume   re-encrypt what is left under older keys (after an
                                    interrupted run, or a ring installed by other means)
                                    and seal what rows written before revision 0020
                                    hold in clear (gender)
  eid-server rotate-keys --status   the ring's encryption keys and the rows still due
  eid-server rotate-keys --remove-old
                                    once nothing is due: drop the older encryption keys
                                    from the ring (refused while any blob needs one)

Not the QR share signing keys: those are `eid-server keys rotate`.
"""


MAX_PAGE = 100_000
MAX_WAIT = 3_600.0


# 0 moved nothing and reported rows still due; a negative size was SQLite's
# "no LIMIT" (the whole table in one transaction) and an error on PostgreSQL;
# a huge one overflowed the driver.
_page_size = whole_number(1, MAX_PAGE, out_of_range=f"rows per transaction: 1 to {MAX_PAGE:,}")


def _wait_seconds(text: str) -> float:
    # "inf" slept forever with the lock held; "nan" skipped the wait unsaid.
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= MAX_WAIT:  # also false for nan
        raise argparse.ArgumentTypeError(f"seconds: 0 to {MAX_WAIT:g}")
    return value


def add_rotate_keys_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rotate = commands.add_parser(
        "rotate-keys",
        help="new encryption key for personal data at rest; re-encrypt everything under it",
        description="Rotate the field-encryption key: every sealed column, while serving.",
        epilog=ROTATE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = rotate.add_mutually_exclusive_group()
    mode.add_argument(
        "--resume",
        action="store_true",
        help="no new key: re-encrypt what is left under older keys, seal what is in clear",
    )
    mode.add_argument(
        "--status",
        action="store_true",
        help="show the encryption keys and the rows still due; change nothing",
    )
    mode.add_argument(
        "--remove-old",
        action="store_true",
        help="drop the older encryption keys from the ring once no blob needs them",
    )
    rotate.add_argument(
        "--page",
        type=_page_size,
        default=DEFAULT_PAGE,
        metavar="N",
        help=f"rows per transaction (default {DEFAULT_PAGE})",
    )
    rotate.add_argument(
        "--wait",
        type=_wait_seconds,
        default=2 * RELOAD_SECONDS,
        metavar="SECONDS",
        help="after adding the key, how long servers get to load it before blobs move "
        f"(default {2 * RELOAD_SECONDS:g}; a server still on the old ring reloads as soon "
        "as it meets a blob under the new key)",
    )


def _due_table(due: dict[str, int], title: str) -> Table:
    table = Table(title=title)
    table.add_column("table")
    table.add_column("rows due", justify="right")
    for name, count in due.items():
        table.add_row(name, f"{count:,}")
    return table


class RotationRunning(Exception):
    """Another run that changes the ring holds its lock."""


@contextlib.contextmanager
def _ring_lock(keys_file: Path) -> Iterator[None]:
    """Held by a run that changes the ring, from reading it until its blobs
    have moved: two runs each read, changed and replaced the file, so the key
    one added (and sealed data under) could vanish with the other's write."""
    lock = keys_file.with_name(f".{keys_file.name}.lock")
    # O_NOFOLLOW: a symlink planted there is refused, not followed.
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RotationRunning(str(lock)) from None
        yield
    finally:
        os.close(fd)


async def run_rotate_keys(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    if args.status:
        return await _status(settings, console)
    try:
        with _ring_lock(settings.keys_file):
            return await _change(settings, args, console)
    except RotationRunning as running:
        console.print(
            "[red]refused[/red]: another `eid-server rotate-keys` is changing the key ring"
            f" (it holds {escape(str(running))}); run this once it has finished"
        )
        return 1


async def _status(settings: Settings, console: Console) -> int:
    ring = load_key_ring(settings.keys_file)
    runtime = bootstrap(settings)
    try:
        due = await due_rows(runtime.uow)
    finally:
        await runtime.close()
    console.print(
        f"active encryption key [bold]{ring.active_encryption_key_id}[/bold];"
        f" older: {', '.join(retired_encryption_keys(ring)) or 'none'}"
    )
    console.print(_due_table(due, "Rows with a blob under an older key or gender in clear"))
    return 0


async def _change(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    if args.remove_old:
        return await _remove_old(settings, console)
    path = settings.keys_file
    ring = load_key_ring(path)
    if not args.resume:
        ring = add_encryption_key(ring)
        replace_key_ring(ring, path)
        console.print(
            f"new active encryption key [bold]{ring.active_encryption_key_id}[/bold] in {path};"
            f" kept for reading: {', '.join(retired_encryption_keys(ring))}"
        )
        if args.wait > 0:
            console.print(f"giving running servers {args.wait:g} s to load it")
            await asyncio.sleep(args.wait)
    return await _reencrypt(settings, args.page, console)


async def _reencrypt(settings: Settings, page: int, console: Console) -> int:
    runtime = bootstrap(settings)
    started = time.perf_counter()
    try:
        due = await due_rows(runtime.uow)
        with Progress(
            TextColumn("re-encrypting {task.fields[table]:<20}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.completed:,}/{task.total:,} rows"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            bar = progress.add_task("rotate", total=max(sum(due.values()), 1), table="")

            def advance(table: str, rows: int) -> None:
                task = progress.tasks[0]
                # A later pass, or rows written meanwhile: more than counted at first.
                if task.total is not None and task.completed + rows > task.total:
                    progress.update(bar, total=task.completed + rows)
                progress.update(bar, advance=rows, table=table)

            done = await reencrypt_all(runtime.uow, page=page, progress=advance)
    finally:
        await runtime.close()
    _summary(done, time.perf_counter() - started, console)
    if done.done:
        console.print(
            "every blob is under the active key: `eid-server rotate-keys --remove-old`"
            " drops the older keys from the ring"
        )
        return 0
    console.print(
        "[yellow]some rows are still due[/yellow] (a server still on the old ring, or blobs"
        " that do not open): run `eid-server rotate-keys --resume` again"
    )
    return 1


def _summary(done: Rotation, seconds: float, console: Console) -> None:
    table = Table(title=f"Re-encrypted in {seconds:.1f} s ({done.passes} pass(es))")
    for column in ("table", "blobs (re-)sealed", "rows written", "rows still due"):
        table.add_column(column, justify="left" if column == "table" else "right")
    for name in done.left:
        table.add_row(
            name,
            f"{done.blobs.get(name, 0):,}",
            f"{done.rows.get(name, 0):,}",
            f"{done.left[name]:,}",
        )
    console.print(table)
    for name, count in done.unreadable.items():
        console.print(
            f"[red]{count:,} blob(s) in {name} do not open[/red] (unknown key or damaged)"
        )


async def _remove_old(settings: Settings, console: Console) -> int:
    ring = load_key_ring(settings.keys_file)
    retired = retired_encryption_keys(ring)
    if not retired:
        console.print(f"the ring holds one encryption key ({ring.active_encryption_key_id})")
        return 0
    runtime = bootstrap(settings)
    try:
        due = await due_rows(runtime.uow)
    finally:
        await runtime.close()
    if any(due.values()):
        console.print(_due_table({k: v for k, v in due.items() if v}, "Still due"))
        console.print(
            "[red]refused[/red]: rows still hold blobs under an older key (or gender in"
            " clear); run `eid-server rotate-keys --resume` first"
        )
        return 1
    replace_key_ring(without_retired_encryption_keys(ring), settings.keys_file)
    console.print(
        f"removed {', '.join(retired)} from {settings.keys_file}; servers follow within"
        f" {RELOAD_SECONDS:g} s"
    )
    return 0
