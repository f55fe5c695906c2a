"""`eid-server party`: its help, argument parsing and output, without a store
(tests/e2e/test_party_cli_e2e.py runs the real commands)."""

from __future__ import annotations

import tracemalloc
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from eid_service.cli import build_parser, main
from eid_service.cli_party_args import parse_overlap
from eid_service.cli_party_views import describe_change, duration, party_table, party_view
from eid_service.domain.party import PartyStatus, RelyingParty, Scope, VerifyMode
from eid_service.domain.share import DOCUMENT_ATTRIBUTES, Attribute
from eid_service.security.tls import certificate_sha256
from eid_service.use_cases.parties import StatusChange
from eid_service.use_cases.ports import PartyRecord
from tests.unit.tls_kit import make_pki

AT = datetime(2026, 11, 24, 8, 30, tzinfo=UTC)
BANK = RelyingParty(
    "rp_3f2a9c0d1e4b5a67",
    "Demo [bold]Bank[/bold]",
    frozenset(Scope.BASIC.attributes | {Attribute.PERSONAL_ID}),
    frozenset({VerifyMode.QR_SHARE, VerifyMode.ONE_TIME_CODE}),
    contact="it@demobank.vn",
)


def _text(renderable: object) -> str:
    console = Console(width=200, record=True)
    console.print(renderable)
    return console.export_text()


def test_help_shows_real_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["party", "--help"])
    assert done.value.code == 0
    shown = capsys.readouterr().out
    for action in ("create", "list", "show", "suspend", "resume", "delete", "rotate-key"):
        assert action in shown
    for example in (
        'eid-server party create --name "Demo Bank"',
        "eid-server party rotate-key rp_3f2a9c0d1e4b5a67 --overlap 7d",
        "eid-server party delete rp_3f2a9c0d1e4b5a67 --yes",
        "default: all but password",
    ):
        assert example in shown


def test_create_keeps_its_old_form_and_gets_the_defaults() -> None:
    args = build_parser().parse_args(["party", "create", "--name", "Bench"])
    # Contact (phone, email) and linked documents are never granted by default.
    contact = {Attribute.PHONE_NUMBER, Attribute.EMAIL}
    assert args.scopes == frozenset(Attribute) - contact - DOCUMENT_ATTRIBUTES
    # Biometric Verify is allowed by the biometric_match scope, not as a mode.
    assert args.modes == frozenset(VerifyMode) - {VerifyMode.PASSWORD, VerifyMode.BIOMETRIC}
    assert args.grants == frozenset()
    assert (args.rate_limit, args.citizen_rate_limit, args.contact) == (600, 10, "")
    args = build_parser().parse_args(
        ["party", "create", "--name", "B", "--scopes", "basic", "--modes", "password,qr_share"]
    )
    assert Attribute.PERSONAL_ID not in args.scopes
    assert args.modes == {VerifyMode.PASSWORD, VerifyMode.QR_SHARE}
    args = build_parser().parse_args(
        ["party", "create", "--name", "Telco", "--scopes", "basic,id_number,contact"]
    )
    assert args.scopes == frozenset(Attribute) - DOCUMENT_ATTRIBUTES


def test_rotate_key_is_forced_only_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["party", "rotate-key", "rp_1", "--overlap", "0"])
    assert (args.overlap, args.force) == (timedelta(0), False)
    argv = ["party", "rotate-key", "rp_1", "--overlap", "0", "--force"]
    assert build_parser().parse_args(argv).force
    with pytest.raises(SystemExit):
        main(["party", "rotate-key", "--help"])
    shown = capsys.readouterr().out
    assert "less than 10 minutes ago" in shown
    assert "eid-server party rotate-key rp_3f2a9c0d1e4b5a67 --overlap 0 --force" in shown


def test_set_scopes_takes_the_party_and_the_new_scopes() -> None:
    argv = ["party", "set-scopes", "rp_3f2a9c0d1e4b5a67", "--scopes", "contact,full_name"]
    args = build_parser().parse_args(argv)
    assert args.party_id == "rp_3f2a9c0d1e4b5a67"
    assert args.scopes == {Attribute.PHONE_NUMBER, Attribute.EMAIL, Attribute.FULL_NAME}


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["create", "--name", "B", "--scopes", "basic,documents"], "unknown scope 'documents'"),
        (["create", "--name", "B", "--modes", "sms"], "unknown Verify mode 'sms'"),
        (["set-scopes", "rp_1"], "--scopes"),
        (["set-scopes", "rp_1", "--scopes", "phone"], "unknown scope 'phone'"),
        (["rotate-key", "rp_1", "--overlap", "31d"], "0 to 30 days"),
        (["rotate-key", "rp_1", "--overlap", "24"], "such as 30m, 24h or 7d"),
        (["delete"], "PARTY_ID"),
    ],
)
def test_bad_arguments_are_explained(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(["party", *argv])
    assert done.value.code == 2
    assert said in capsys.readouterr().err


def test_overlaps_are_written_as_operators_write_them() -> None:
    assert parse_overlap("30m") == timedelta(minutes=30)
    assert parse_overlap("24h") == timedelta(hours=24)
    assert parse_overlap(" 7D ") == timedelta(days=7)
    assert parse_overlap("0") == timedelta(0)
    assert parse_overlap("90s") == timedelta(seconds=90)
    assert [duration(parse_overlap(t)) for t in ("30m", "24h", "7d", "90s", "0")] == [
        "30m",
        "1d",
        "7d",
        "90s",
        "0s",
    ]


def test_a_party_is_shown_with_its_fields_and_its_name_escaped() -> None:
    record = PartyRecord(BANK, AT, None, AT + timedelta(days=3650))
    shown = _text(party_view(record, "created"))
    for text in (
        "Relying party rp_3f2a9c0d1e4b5a67 created",
        "Demo [bold]Bank[/bold]",  # as typed, not as markup
        "active",
        "it@demobank.vn",
        "basic, id_number (birth_date, full_name, gender, nationality, personal_id)",
        "one_time_code, qr_share",
        "600/min, 10/min per citizen",
        "2026-11-24T08:30:00+00:00",
        "works until 2036",
        "made when the party was created",
    ):
        assert text in shown


def test_a_party_shows_when_a_rotation_made_its_current_key() -> None:
    rotated = PartyRecord(BANK, AT, None, AT + timedelta(hours=1), AT + timedelta(minutes=5))
    shown = _text(party_view(rotated))
    assert "made by a rotation at 2026-11-24T08:35:00+00:00" in shown


def test_the_list_shows_status_scopes_modes_and_limits() -> None:
    clinic = RelyingParty(
        "rp_2", "Clinic", frozenset({Attribute.BIRTH_DATE}), status=PartyStatus.SUSPENDED
    )
    shown = _text(
        party_table([PartyRecord(BANK, AT, None, None), PartyRecord(clinic, AT, AT, None)])
    )
    assert "Relying parties (2)" in shown
    lines = shown.splitlines()
    first = next(n for n, line in enumerate(lines) if "rp_2" in line)
    row = "\n".join(lines[first:])
    for text in (
        "Clinic",
        "suspended",
        "birth_date",
        "approval",
        "qr_share",
        "600/10",
        "2026-11-24",
    ):
        assert text in row
    assert "Demo [bold]Bank[/bold]" in shown
    assert "basic" in shown and "id_number" in shown


def test_status_changes_say_what_happens_and_when() -> None:
    record = PartyRecord(BANK, AT, None, None)
    assert "nothing changed" in describe_change(StatusChange(record, changed=False))
    suspended = PartyRecord(
        RelyingParty(BANK.id, "Bank", BANK.scopes, status=PartyStatus.SUSPENDED), AT, AT, None
    )
    said = describe_change(StatusChange(suspended, changed=True))
    assert "PERMISSION_DENIED (PARTY_SUSPENDED) within 10 s" in said
    assert "eid-server party resume rp_3f2a9c0d1e4b5a67" in said


def test_a_party_is_bound_by_certificate_file_or_fingerprint(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    digest = certificate_sha256(pki.client.cert.read_bytes())
    parse = build_parser().parse_args
    assert parse(["party", "create", "--name", "B"]).client_cert is None
    by_file = parse(["party", "create", "--name", "B", "--client-cert", str(pki.client.cert)])
    by_hash = parse(["party", "client-cert", "rp_1", "--client-cert-sha256", digest.hex(":")])
    assert by_file.client_cert == by_hash.client_cert == digest
    cleared = parse(["party", "client-cert", "rp_1", "--clear"])
    assert (cleared.client_cert, cleared.clear) == (None, True)
    with pytest.raises(SystemExit):
        parse(["party", "client-cert", "rp_1", "--clear", "--client-cert-sha256", digest.hex()])


def test_a_certificate_file_is_not_read_whole_when_it_is_far_too_large(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before, --client-cert read the whole file: /dev/zero took memory until
    the process was killed. A 64 MB (sparse) file is now refused after its
    first MiB."""
    huge = tmp_path / "huge.crt"
    with huge.open("wb") as file:
        file.truncate(64 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(SystemExit) as refused:
            build_parser().parse_args(["party", "client-cert", "rp_1", "--client-cert", str(huge)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert refused.value.code == 2
    assert "over 1 MiB: not a certificate file" in capsys.readouterr().err
    assert peak < 8 << 20


def test_a_bound_partys_fingerprint_is_shown_whole_on_a_narrow_terminal() -> None:
    bound = replace(BANK, client_cert_sha256=bytes(range(32)))
    console = Console(width=80, record=True)
    console.print(party_view(PartyRecord(bound, AT, None, None)))
    # Folded over lines inside the table's borders.
    shown = "".join(console.export_text().replace("│", " ").split())
    assert bytes(range(32)).hex(":").upper() in shown
    assert "(APIkeyalone)" in "".join(_text(party_view(PartyRecord(BANK, AT, None, None))).split())
