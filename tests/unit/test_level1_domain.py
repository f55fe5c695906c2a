"""Level-1 registration's parts: the portrait policy and its setting, the
passport a foreigner declares, the demo registry's portraits and foreigners,
and `eid-server demo-portrait`."""

from __future__ import annotations

import struct
from datetime import date
from pathlib import Path

import pytest

from eid_service.cli import main
from eid_service.config import Settings
from eid_service.config_view import settings_lines
from eid_service.demo import (
    DEMO_CAPTURE_SIMILARITY,
    demo_citizens,
    demo_foreigners,
    demo_people,
    enrolled_portrait,
    portrait_capture,
)
from eid_service.domain.biometrics import FACE_DIMENSIONS, cosine_similarity, parse_template
from eid_service.domain.citizen import parse_full_name
from eid_service.domain.errors import InvalidInput
from eid_service.domain.foreigner import (
    parse_issue_date,
    parse_issue_place,
    parse_nationality,
    parse_passport_number,
    passports_match,
)
from eid_service.domain.personal_id import parse_personal_id
from eid_service.domain.portrait import (
    DEFAULT_PORTRAIT_MATCH_THRESHOLD,
    PortraitPolicy,
    parse_portrait,
)
from eid_service.domain.registry_person import Passport, PersonKind
from eid_service.settings_values import SettingError

TODAY = date(2026, 11, 24)
LAN_ID = "001190791514"


def _capture(similarity: float, pid: str = LAN_ID) -> bytes:
    return portrait_capture(pid, similarity)


def _reason(call: object, *args: object) -> tuple[str, str]:
    assert callable(call)
    with pytest.raises(InvalidInput) as caught:
        call(*args)
    (violation,) = caught.value.violations
    return violation.field, violation.reason


# ---- the portrait policy ----------------------------------------------------------


def test_the_policy_matches_at_or_above_its_threshold() -> None:
    enrolled = enrolled_portrait(LAN_ID)
    policy = PortraitPolicy()
    assert policy.threshold == DEFAULT_PORTRAIT_MATCH_THRESHOLD == 0.60
    assert policy.matches(parse_portrait(_capture(0.61)), enrolled)
    assert not policy.matches(parse_portrait(_capture(0.59)), enrolled)
    # Nothing enrolled, or a template of another length: never a match.
    assert not policy.matches(parse_portrait(_capture(0.99)), None)
    fingerprint = parse_template(struct.pack("<64f", *[1.0] * 64), 64, "f")
    assert not policy.matches(parse_portrait(_capture(0.99)), fingerprint)


@pytest.mark.parametrize("threshold", [0.29, -0.5, 1.0, 1.5])
def test_an_unsafe_or_impossible_threshold_is_refused(threshold: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        PortraitPolicy(threshold)


def test_the_setting_is_read_validated_and_shown() -> None:
    settings = Settings.from_env({"EID_PORTRAIT_MATCH_THRESHOLD": "0.75"})
    assert settings.portrait == PortraitPolicy(0.75)
    assert ("portrait.threshold", "0.75") in list(settings_lines(settings))
    assert Settings.from_env({}).portrait.threshold == 0.60
    for raw, says in (("0.1", "at least 0.3"), ("1", "below 1"), ("high", "a number")):
        with pytest.raises(SettingError) as caught:
            Settings.from_env({"EID_PORTRAIT_MATCH_THRESHOLD": raw})
        assert caught.value.name == "EID_PORTRAIT_MATCH_THRESHOLD"
        assert says in str(caught.value)


def test_a_missing_portrait_is_required_and_a_bad_one_invalid() -> None:
    assert _reason(parse_portrait, b"") == ("portrait", "PORTRAIT_REQUIRED")
    assert _reason(parse_portrait, b"\x00" * 512) == ("portrait", "BIOMETRIC_TEMPLATE_INVALID")
    assert parse_portrait(_capture(0.9)).dimensions == FACE_DIMENSIONS
    assert "packed" not in repr(parse_portrait(_capture(0.9)))  # never in a log line


# ---- the passport -----------------------------------------------------------------


def test_passport_fields_are_normalised() -> None:
    assert parse_passport_number("  m1234567 ") == "M1234567"
    assert parse_nationality(" kor ") == "KOR"
    assert parse_issue_date(" 2019-03-04 ", TODAY, date(1988, 7, 21)) == date(2019, 3, 4)
    assert parse_issue_place("  Ministry of   Foreign Affairs (Seoul) ") == (
        "Ministry of Foreign Affairs (Seoul)"
    )


@pytest.mark.parametrize(
    ("call", "raw", "reason"),
    [
        (parse_passport_number, "M-123456", "PASSPORT_NUMBER_INVALID"),
        (parse_passport_number, "12345", "PASSPORT_NUMBER_INVALID"),
        (parse_passport_number, "1234567890", "PASSPORT_NUMBER_INVALID"),
        (parse_nationality, "KR", "NATIONALITY_INVALID"),
        (parse_nationality, "VNM", "NATIONALITY_INVALID"),
        (parse_nationality, "K0R", "NATIONALITY_INVALID"),
        (parse_issue_place, "", "PASSPORT_ISSUE_PLACE_INVALID"),
        (parse_issue_place, "1234", "PASSPORT_ISSUE_PLACE_INVALID"),
        (parse_issue_place, "Seoul\x00", "PASSPORT_ISSUE_PLACE_INVALID"),
        (parse_issue_place, "S" * 101, "PASSPORT_ISSUE_PLACE_INVALID"),
    ],
)
def test_bad_passport_fields_are_named(call: object, raw: str, reason: str) -> None:
    assert _reason(call, raw)[1] == reason


@pytest.mark.parametrize(
    ("raw", "born"),
    [
        ("2019/03/04", None),
        ("20190304", None),
        ("2027-01-01", None),
        ("1987-01-01", date(1988, 1, 1)),
    ],
)
def test_bad_issue_dates_are_named(raw: str, born: date | None) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_issue_date(raw, TODAY, born)
    assert caught.value.reason == "PASSPORT_ISSUE_DATE_INVALID"
    assert caught.value.violations[0].field == "passport.issue_date"


def test_passports_match_on_every_detail_with_places_compared_as_names() -> None:
    recorded = Passport("M12345678", "KOR", date(2019, 3, 4), "Thành phố Hồ Chí Minh")
    typed = Passport("M12345678", "KOR", date(2019, 3, 4), "thành  PHỐ hồ chí minh")
    assert passports_match(typed, recorded)
    assert not passports_match(Passport("M12345678", "KOR", date(2019, 3, 5), "Seoul"), recorded)
    assert not passports_match(
        Passport("M12345678", "JPN", date(2019, 3, 4), recorded.issue_place), recorded
    )
    assert "M12345678" not in repr(recorded)


# ---- the demo registry ------------------------------------------------------------


def test_demo_portraits_depend_on_the_id_number_alone() -> None:
    assert enrolled_portrait(LAN_ID) == enrolled_portrait(LAN_ID)
    assert enrolled_portrait(LAN_ID) != enrolled_portrait("079085603693")
    values = enrolled_portrait(LAN_ID).values()
    assert len(values) == FACE_DIMENSIONS
    assert sum(v * v for v in values) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("similarity", [0.99, DEMO_CAPTURE_SIMILARITY, 0.61, 0.59, 0.0])
def test_a_capture_has_the_similarity_asked_for(similarity: float) -> None:
    capture = parse_portrait(portrait_capture(LAN_ID, similarity))
    assert cosine_similarity(capture, enrolled_portrait(LAN_ID)) == pytest.approx(
        similarity, abs=1e-6
    )
    other = parse_portrait(portrait_capture(LAN_ID, similarity, attempt=1))
    assert other != capture  # another capture of the same face


def test_other_peoples_demo_faces_are_far_below_the_threshold() -> None:
    people = demo_people()
    lan = parse_portrait(portrait_capture(LAN_ID))
    others = [p.portrait for p in people if p.demographics.personal_id != LAN_ID]
    assert all(o is not None and cosine_similarity(lan, o) < 0.45 for o in others)


def test_demo_foreigners_are_well_formed() -> None:
    foreigners = demo_foreigners()
    assert len(foreigners) >= 3
    citizens = {c.personal_id for c in demo_citizens()}
    for f in foreigners:
        d, p = f.demographics, f.passport
        assert f.kind is PersonKind.FOREIGNER and p is not None and f.portrait is not None
        assert parse_personal_id(d.personal_id).is_foreigner
        assert d.personal_id not in citizens
        assert parse_full_name(d.full_name) == d.full_name
        assert parse_passport_number(p.number) == p.number
        assert parse_nationality(p.nationality) == p.nationality
        assert parse_issue_date(p.issue_date.isoformat(), TODAY, d.birth_date) == p.issue_date
        assert parse_issue_place(p.issue_place) == p.issue_place
        assert (TODAY - d.birth_date).days > 18 * 366


def test_load_demo_enrols_everyone_with_a_portrait() -> None:
    people = demo_people(synthetic=3)
    assert len(people) == len(demo_citizens()) + len(demo_foreigners()) + 3
    assert all(p.portrait == enrolled_portrait(p.demographics.personal_id) for p in people)


# ---- eid-server demo-portrait -----------------------------------------------------


def test_demo_portrait_writes_a_matching_capture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("EID_ENV", raising=False)
    out = tmp_path / "face.f32"
    assert main(["demo-portrait", "--id", LAN_ID, "--out", str(out)]) == 0
    assert out.read_bytes() == portrait_capture(LAN_ID)
    assert main(["demo-portrait", "--id", LAN_ID, "--similarity", "0.5", "--out", str(out)]) == 0
    assert out.read_bytes() == portrait_capture(LAN_ID, 0.5)
    assert main(["demo-portrait", "--all", "--out", str(tmp_path / "all")]) == 0
    files = sorted(p.stem for p in (tmp_path / "all").iterdir())
    assert files == sorted(p.demographics.personal_id for p in demo_people())
    said = capsys.readouterr().out
    # Whole paths, whatever their length: a path cut in two cannot be copied
    # (a long temporary directory once cut "face.f32" in two).
    assert str(out) in said and f"{tmp_path / 'all'}/<ID number>.f32" in said
    assert LAN_ID not in said


def test_demo_portrait_says_which_out_it_cannot_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before, each ended in a Python traceback (FileNotFoundError,
    IsADirectoryError, FileExistsError), and a path with "[/]" in it in
    rich's MarkupError after the file was written."""
    monkeypatch.delenv("EID_ENV", raising=False)
    a_file = tmp_path / "face.f32"
    a_file.write_bytes(b"")
    for argv in (
        ["--id", LAN_ID, "--out", str(tmp_path / "no-such-folder" / "face.f32")],
        ["--id", LAN_ID, "--out", str(tmp_path)],
        ["--all", "--out", str(a_file)],
    ):
        assert main(["demo-portrait", *argv]) == 2
        said = capsys.readouterr().out
        assert "cannot write" in said and argv[-1] in said
    (tmp_path / "[").mkdir()
    odd = tmp_path / "[" / "]face.f32"  # "[/]" in the path
    assert main(["demo-portrait", "--id", LAN_ID, "--out", str(odd)]) == 0
    assert str(odd) in capsys.readouterr().out


def test_demo_portrait_refuses_a_bad_id_and_production(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "face.f32"
    monkeypatch.delenv("EID_ENV", raising=False)
    assert main(["demo-portrait", "--id", "12345", "--out", str(out)]) == 2
    assert "not 12 digits" in capsys.readouterr().out
    monkeypatch.setenv("EID_ENV", "production")
    assert main(["demo-portrait", "--id", LAN_ID, "--out", str(out)]) == 2
    assert "production" in capsys.readouterr().out
    assert not out.exists()
