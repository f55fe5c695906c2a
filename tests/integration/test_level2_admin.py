"""The operator's side of level 2, with the real `eid-server` commands on a
SQLite file: officers created with roles and given others, parties granted
the biometric_match scope, and the match thresholds as settings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import text

from eid_service.cli import build_parser, main
from eid_service.config import Settings
from eid_service.domain.officer import OfficerRole
from eid_service.domain.party import Grant, VerifyMode, parse_grants, parse_scopes, scope_names
from eid_service.domain.share import Attribute
from eid_service.settings_values import SettingError
from eid_service.store.database import create_engine


@pytest.fixture
def operator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> str:
    """A migrated SQLite database and a key ring, as `make run` leaves them."""
    url = f"sqlite:///{tmp_path / 'eid.db'}"
    monkeypatch.setenv("EID_DATABASE_URL", url)
    monkeypatch.setenv("EID_KEYS_FILE", str(tmp_path / "keys.json"))
    assert main(["init-dev"]) == 0
    assert main(["migrate"]) == 0
    capsys.readouterr()
    return url


def _rows(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(r) for r in connection.execute(text(sql))]
    finally:
        engine.dispose()


def test_officers_are_created_with_roles_and_given_others(
    operator: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["officer", "create", "--name", "Quầy 2"]) == 0
    both = capsys.readouterr().out
    assert "roles: registration, unlock" in both
    assert re.fullmatch(r"eido_\S+", both.strip().splitlines()[-1])

    assert main(["officer", "create", "--name", "Quầy 3", "--roles", "unlock"]) == 0
    unlock_only = capsys.readouterr().out
    officer_id = re.search(r"off_[0-9a-f]{16}", unlock_only)
    assert officer_id is not None and "roles: unlock" in unlock_only
    stored = {name: roles for name, roles in _rows(operator, "SELECT name, roles FROM officers")}
    assert stored == {"Quầy 2": "registration,unlock", "Quầy 3": "unlock"}

    assert main(["officer", "set-roles", officer_id[0], "--roles", "registration,unlock"]) == 0
    assert "roles: registration, unlock" in capsys.readouterr().out
    assert _rows(operator, "SELECT DISTINCT roles FROM officers") == [("registration,unlock",)]
    assert main(["officer", "set-roles", "off_0000000000000000", "--roles", "unlock"]) == 1
    assert "no enabled officer" in capsys.readouterr().out


def test_officers_are_listed_with_roles_and_state_but_never_a_key(
    operator: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # one table row a line
    assert main(["officer", "list"]) == 0
    assert "no officers yet" in capsys.readouterr().out

    assert main(["officer", "create", "--name", "Quầy 2"]) == 0
    first = capsys.readouterr().out
    key = first.strip().splitlines()[-1]
    assert main(["officer", "create", "--name", "Quầy 3", "--roles", "unlock"]) == 0
    second = re.search(r"off_[0-9a-f]{16}", capsys.readouterr().out)
    assert second is not None
    assert main(["officer", "disable", second[0]]) == 0
    capsys.readouterr()

    assert main(["officer", "list"]) == 0
    listed = capsys.readouterr().out
    rows = [line for line in listed.splitlines() if "off_" in line]
    assert len(rows) == 2
    assert "Quầy 2" in rows[0] and "registration, unlock" in rows[0] and "enabled" in rows[0]
    assert second[0] in rows[1] and "unlock" in rows[1] and "disabled 20" in rows[1]
    assert key not in listed and "eido_" not in listed
    # A disabled officer stays disabled: neither disabled again nor given roles.
    assert main(["officer", "disable", second[0]]) == 1
    assert main(["officer", "set-roles", second[0], "--roles", "registration"]) == 1


@pytest.mark.parametrize("name", ["Công an phường [/] quầy 2", "Quầy [bold]2[/bold]"])
def test_an_officer_name_with_brackets_is_shown_as_typed_and_its_key_printed(
    name: str, operator: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rich reads brackets as markup: "[/]" raised after the officer was
    committed but before its key (shown only then) was printed, and broke
    `officer list` for every officer; "[bold]" vanished, so the operator saw
    another name than the one stored and audited."""
    monkeypatch.setenv("COLUMNS", "200")  # one line each
    assert main(["officer", "create", "--name", name]) == 0
    created = capsys.readouterr().out
    assert f"({name})" in created
    assert re.fullmatch(r"eido_\S+", created.strip().splitlines()[-1])

    assert main(["officer", "list"]) == 0
    [row] = [line for line in capsys.readouterr().out.splitlines() if "off_" in line]
    assert name in row


@pytest.mark.parametrize(
    "name",
    [
        "",
        "   ",
        "Quầy\n2",  # a second line in every table and audit entry
        "\x1b[2JQuầy 2",  # a terminal escape: clears the operator's screen
        "x" * 201,  # wider than the column
    ],
)
def test_an_officer_name_is_checked_as_a_party_name_before_anything_is_written(
    name: str, operator: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["officer", "create", "--name", name]) == 2
    said = capsys.readouterr().out
    assert "--name: a name is 1 to 200 printable characters" in said
    assert "eido_" not in said
    assert _rows(operator, "SELECT id FROM officers") == []


def test_an_officer_name_is_stored_without_surrounding_spaces(
    operator: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["officer", "create", "--name", "  Quầy 2 "]) == 0
    assert _rows(operator, "SELECT name FROM officers") == [("Quầy 2",)]


@pytest.mark.parametrize("action", [["disable"], ["set-roles", "--roles", "unlock"]])
def test_an_unknown_officer_id_is_named_as_typed(
    action: list[str], operator: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["officer", action[0], "off_[/]", *action[1:]]) == 1
    assert "no enabled officer has the id off_[/]" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["officer", "create", "--name", "X", "--roles", "police"], "unknown role 'police'"),
        (["officer", "create", "--name", "X", "--roles", " , "], "at least one role"),
        (["officer", "set-roles", "off_1"], "--roles"),
    ],
)
def test_a_bad_role_is_explained(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(argv)
    assert stopped.value.code == 2
    assert said in capsys.readouterr().err


def test_a_party_is_granted_biometric_match_with_its_scopes(
    operator: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["party", "create", "--name", "Counter Bank", "--scopes", "basic,biometric_match"])
        == 0
    )
    created = capsys.readouterr().out
    party_id = re.search(r"rp_[0-9a-f]{16}", created)
    assert party_id is not None and "biometric_match" in created
    [(scopes, modes)] = _rows(operator, "SELECT scopes, modes FROM relying_parties")
    assert scopes == "biometric_match,birth_date,full_name,gender,nationality"
    assert "biometric" not in str(modes).split(",")  # a scope, not a mode

    assert main(["party", "set-scopes", party_id[0], "--scopes", "basic"]) == 0
    assert "biometric_match" not in capsys.readouterr().out
    assert _rows(operator, "SELECT scopes FROM relying_parties") == [
        ("birth_date,full_name,gender,nationality",)
    ]
    assert main(["party", "set-scopes", party_id[0], "--scopes", "biometric_match"]) == 0
    assert _rows(operator, "SELECT scopes FROM relying_parties") == [("biometric_match",)]


def test_biometric_is_granted_as_a_scope_not_a_mode(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(
        ["party", "create", "--name", "B", "--scopes", "basic,biometric_match"]
    )
    assert args.grants == {Grant.BIOMETRIC_MATCH}
    assert Attribute.FULL_NAME in args.scopes and VerifyMode.BIOMETRIC not in args.modes
    with pytest.raises(SystemExit):
        build_parser().parse_args(["party", "create", "--name", "B", "--modes", "biometric"])
    assert "--scopes ...,biometric_match" in capsys.readouterr().err
    assert parse_scopes("biometric_match") == frozenset()
    assert parse_grants("basic, Biometric_Match") == {Grant.BIOMETRIC_MATCH}
    shown = scope_names(parse_scopes("basic"), frozenset({Grant.BIOMETRIC_MATCH}))
    assert shown == ["basic", "biometric_match"]


def test_the_thresholds_are_settings() -> None:
    default = Settings.from_env({}).biometric_thresholds
    assert (default.face, default.fingerprint) == (0.8, 0.8)
    set_ = Settings.from_env(
        {"EID_FACE_MATCH_THRESHOLD": "0.9", "EID_FINGERPRINT_MATCH_THRESHOLD": "1"}
    ).biometric_thresholds
    assert (set_.face, set_.fingerprint) == (0.9, 1.0)
    for name, value, said in (
        ("EID_FACE_MATCH_THRESHOLD", "1.5", "at most 1"),
        ("EID_FINGERPRINT_MATCH_THRESHOLD", "0", "more than 0"),
        ("EID_FACE_MATCH_THRESHOLD", "high", "a number"),
    ):
        with pytest.raises(SettingError, match=said) as bad:
            Settings.from_env({name: value})
        assert bad.value.name == name
    assert OfficerRole.REGISTRATION.value == "registration"


def test_revoking_a_key_id_typed_with_markup_prints_it_as_typed(
    operator: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`eid-server keys revoke` printed the id into rich markup: a '[/]' in
    it crashed the command (found in review)."""
    typed = "sk_[/]x"
    assert main(["keys", "revoke", typed]) == 1
    assert f"no unrevoked key has the id {typed}" in capsys.readouterr().out
