"""`eid-server demo-portrait`: a face "capture" that matches the portrait the
demo registry enrolled for an ID number (demo.portrait_capture), written as
the raw float32 file `eid register --portrait FILE` sends.

A development helper: the demo registry's portraits are derived from the ID
numbers, so a matching capture can be made without a camera or the database.
A real registry's portraits come from enrolment cameras, and no command can
make a capture that matches them; a production server refuses this one."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from eid_service.config import Settings
from eid_service.demo import DEMO_CAPTURE_SIMILARITY, demo_people, portrait_capture
from eid_service.domain.errors import InvalidInput
from eid_service.domain.personal_id import parse_personal_id

DEMO_PORTRAIT_EXAMPLES = """\
examples:
  eid-server demo-portrait --id 001190791514 --out face.f32
        a capture of Nguyễn Thị Lan's face for `eid register ... --portrait face.f32`
  eid-server demo-portrait --id 900000100001 --out face.f32
        a foreigner's (Kim Min-jun): the ID number the registry assigned
  eid-server demo-portrait --id 001190791514 --similarity 0.5 --out poor.f32
        a capture too far from the enrolled portrait: Register answers REGISTRY_MISMATCH
  eid-server demo-portrait --all --out portraits/
        one file per demo person, named <ID number>.f32
"""


def _similarity(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not -1.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("a cosine similarity is between -1 and 1")
    return value


def add_demo_portrait_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    cmd = commands.add_parser(
        "demo-portrait",
        help="write a face capture matching a demo person's enrolled portrait (development)",
        description=(
            "Writes the captured-face vector the app would send at Register for a person of"
            " the demo registry (load-demo): 128 little-endian float32 values (512 bytes)."
            " Development only: demo portraits are derived from the ID number."
        ),
        epilog=DEMO_PORTRAIT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    who = cmd.add_mutually_exclusive_group(required=True)
    who.add_argument("--id", dest="personal_id", help="the person's 12-digit ID number")
    who.add_argument("--all", action="store_true", help="every demo person (--out is a folder)")
    cmd.add_argument("--out", required=True, type=Path, help="the file (or, with --all, folder)")
    cmd.add_argument(
        "--similarity",
        type=_similarity,
        default=DEMO_CAPTURE_SIMILARITY,
        help=f"cosine similarity with the enrolled portrait (default {DEMO_CAPTURE_SIMILARITY})",
    )


def run_demo_portrait(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    if settings.production:
        console.print(
            "[red]demo-portrait is for the demo registry[/red]: a production registry's"
            " portraits come from enrolment cameras (EID_ENV=production)"
        )
        return 2
    try:
        return _write(args, console)
    except OSError as error:  # a folder that is not one, a file that is a folder, ...
        console.print(
            f"[red]cannot write {escape(str(args.out))}[/red] ({escape(error.strerror or '')})",
            soft_wrap=True,
        )
        return 2


def _write(args: argparse.Namespace, console: Console) -> int:
    if args.all:
        args.out.mkdir(parents=True, exist_ok=True)
        people = demo_people()
        for person in people:
            pid = person.demographics.personal_id
            (args.out / f"{pid}.f32").write_bytes(portrait_capture(pid, args.similarity))
        # Not wrapped: a path cut in two cannot be copied.
        console.print(
            f"wrote {len(people)} captures to {escape(str(args.out))}/<ID number>.f32",
            soft_wrap=True,
        )
        return 0
    try:
        pid = parse_personal_id(args.personal_id, "--id").value
    except InvalidInput as bad:
        console.print(f"[red]--id[/red]: {bad.message}")
        return 2
    args.out.write_bytes(portrait_capture(pid, args.similarity))
    console.print(
        f"wrote {escape(str(args.out))}: a capture with cosine similarity"
        f" {args.similarity:g} to the demo portrait enrolled for that ID number",
        soft_wrap=True,
    )
    return 0
