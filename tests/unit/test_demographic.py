"""Demographic verification: claim validation, name scoring and per-attribute matching."""

from __future__ import annotations

import dataclasses
import math
import unicodedata
from collections import Counter
from datetime import date
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eid_service.domain.citizen import Gender
from eid_service.domain.demographic import (
    DEFAULT_NAME_THRESHOLD,
    AttributeMatch,
    ClaimedBirthDate,
    DemographicClaim,
    DemographicResult,
    NameMatchStrategy,
    StoredDemographics,
    check_claim,
    match_demographics,
    name_score,
    normalise_name,
    parse_claimed_birth_date,
)
from eid_service.domain.errors import InvalidInput

TODAY = date(2026, 11, 23)
STORED = StoredDemographics("Nguyễn Văn An", date(1990, 5, 17), Gender.MALE)
EXACT = NameMatchStrategy.EXACT
PARTIAL = NameMatchStrategy.PARTIAL
MATCH, NO_MATCH, NOT_CLAIMED = (
    AttributeMatch.MATCH,
    AttributeMatch.NO_MATCH,
    AttributeMatch.NOT_CLAIMED,
)


def match_name(claimed: str, strategy: NameMatchStrategy, threshold: int = 80) -> DemographicResult:
    claim = DemographicClaim(full_name=claimed, name_strategy=strategy, name_threshold=threshold)
    return match_demographics(claim, STORED)


# --- normalise_name and name_score ----------------------------------------------


def test_normalise_name_strips_case_diacritics_and_punctuation() -> None:
    assert normalise_name("  Trần Thị BÍCH-Ngọc ") == ("tran", "thi", "bich", "ngoc")
    assert normalise_name(unicodedata.normalize("NFD", "Đặng Ê-đê")) == ("dang", "e", "de")
    assert normalise_name("O'Neil,  Jr.") == ("o", "neil", "jr")
    assert normalise_name(" - . ") == ()


@pytest.mark.parametrize(
    ("claimed", "stored"),
    [
        ("Nguyễn Văn An", "nguyen van an"),
        ("Trần Thị Bích Ngọc", "Ngoc Tran Thi Bich"),
        ("Đặng", "Dang"),
        ("ĐẶNG thị MAI", "mai dang thi"),
    ],
)
def test_same_words_score_100(claimed: str, stored: str) -> None:
    assert name_score(claimed, stored) == 100


def test_one_letter_typo_scores_high_but_below_100() -> None:
    assert 85 <= name_score("Trần Thị Bích Ngọc", "Tran Thi Bich Ngac") < 100
    assert DEFAULT_NAME_THRESHOLD <= name_score("Nguyễn Văn Am", "Nguyễn Văn An") < 100


def test_missing_middle_name_meets_the_default_threshold() -> None:
    assert name_score("Nguyễn An", "Nguyễn Văn An") == DEFAULT_NAME_THRESHOLD


@pytest.mark.parametrize("other", ["Lê Thị Hoa", "Phạm Minh Tuấn", "Nguyễn Thị Hoa"])
def test_a_different_person_scores_low(other: str) -> None:
    assert name_score(other, "Nguyễn Văn An") < 40


def test_names_without_words() -> None:
    assert name_score("", "") == 100
    assert name_score("-", "An") == 0


# Letters as (plain, accented) pairs: f, j, w and z are not Vietnamese letters,
# so a word made of them shares nothing with a generated name.
LETTERS = [("a", "ắ"), ("d", "đ"), ("e", "ệ"), ("o", "ợ"), ("u", "ư"), ("i", "ị")]
LETTERS += [("y", "ỹ"), ("n", "N"), ("g", "G"), ("h", "h"), ("t", "T"), ("m", "m")]
WORDS = st.lists(st.lists(st.sampled_from(LETTERS), min_size=1, max_size=6), min_size=1, max_size=4)


def plain(words: list[list[tuple[str, str]]]) -> str:
    return " ".join("".join(p for p, _ in word) for word in words)


def accented(words: list[list[tuple[str, str]]]) -> str:
    return "  ".join("".join(a for _, a in word) for word in reversed(words)).upper()


@given(st.text(), st.text())
def test_score_is_0_to_100_and_symmetric(a: str, b: str) -> None:
    assert 0 <= name_score(a, b) == name_score(b, a) <= 100


@given(st.text(), st.text())
def test_score_is_100_iff_the_word_multisets_are_equal(a: str, b: str) -> None:
    assert name_score(a, a) == 100
    equal = Counter(normalise_name(a)) == Counter(normalise_name(b))
    assert (name_score(a, b) == 100) == equal


@given(WORDS, WORDS)
def test_score_ignores_case_diacritics_and_word_order(
    words: list[list[tuple[str, str]]], other: list[list[tuple[str, str]]]
) -> None:
    assert name_score(accented(words), plain(words)) == 100
    assert name_score(accented(words), plain(other)) == name_score(plain(words), plain(other))


def _reference_score(claimed: str, stored: str) -> int:
    """name_score as first written (every pair's similarity as a Fraction,
    then greedy): the faster one must score every pair of names alike."""

    def similarity(x: str, y: str) -> Fraction:
        previous = list(range(len(y) + 1))
        for i, cx in enumerate(x, 1):
            current = [i]
            for j, cy in enumerate(y, 1):
                current.append(
                    min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (cx != cy))
                )
            previous = current
        longest = max(len(x), len(y))
        return Fraction(longest - previous[-1], longest)

    a, b = sorted(normalise_name(claimed)), sorted(normalise_name(stored))
    if not a or not b:
        return 100 if a == b else 0
    pairs = sorted(
        (-similarity(x, y), min(x, y), max(x, y), i, j)
        for i, x in enumerate(a)
        for j, y in enumerate(b)
    )
    used_a: set[int] = set()
    used_b: set[int] = set()
    total = Fraction(0)
    for negated, _, _, i, j in pairs:
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            total -= negated
    return math.floor(100 * 2 * total / (len(a) + len(b)))


# Few letters, so that words repeat and pairs tie.
NEAR_NAMES = st.lists(st.text("abcđ", min_size=1, max_size=5), min_size=0, max_size=5).map(" ".join)


@settings(max_examples=500)
@given(NEAR_NAMES, NEAR_NAMES)
def test_score_is_the_reference_greedy_pairing(a: str, b: str) -> None:
    assert name_score(a, b) == _reference_score(a, b)


@given(st.text(), st.text())
def test_score_is_the_reference_greedy_pairing_on_any_text(a: str, b: str) -> None:
    assert name_score(a, b) == _reference_score(a, b)


@given(WORDS, WORDS, st.text("fjwz", min_size=1, max_size=6))
def test_an_extra_unrelated_word_lowers_the_score(
    claimed: list[list[tuple[str, str]]], stored: list[list[tuple[str, str]]], extra: str
) -> None:
    before = name_score(plain(claimed), plain(stored))
    after = name_score(f"{plain(claimed)} {extra}", plain(stored))
    assert after <= before
    if before >= 50:  # at most 9 words: one more costs at least a ninth of the score
        assert after < before
    assert name_score(f"{plain(stored)} {extra}", plain(stored)) < 100


# --- names under each strategy --------------------------------------------------


def test_exact_ignores_case_spacing_and_composition_only() -> None:
    assert match_name(" NGUYỄN  văn an ", EXACT).name is MATCH
    assert match_name(unicodedata.normalize("NFD", "Nguyễn Văn An"), EXACT).name is MATCH
    assert match_name("nguyen van an", EXACT).name is NO_MATCH  # diacritics count
    assert match_name("An Nguyễn Văn", EXACT).name is NO_MATCH  # order counts


def test_exact_reports_only_the_verdict_as_score() -> None:
    assert match_name("Nguyễn Văn An", EXACT).name_score == 100
    assert match_name("Nguyễn Văn Anh", EXACT).name_score == 0


def test_partial_compares_the_score_with_the_threshold() -> None:
    result = match_name("nguyen van an", PARTIAL)
    assert (result.name, result.name_score) == (MATCH, 100)
    typo = match_name("Nguyễn Văn Anh", PARTIAL)
    assert typo.name is MATCH and typo.name_score < 100
    assert match_name("Nguyễn Văn Anh", PARTIAL, threshold=100).name is NO_MATCH


def test_a_partial_miss_tells_nothing_of_how_close_it_came() -> None:
    """A score under the threshold would show a guesser which way to move:
    a near miss and a wild one answer the same, 0."""
    near = match_name("Nguyễn Văn Bình", PARTIAL)  # another given name: 75
    assert name_score("Nguyễn Văn Bình", STORED.full_name) > 0
    wild = match_name("Lê Thị Hoa", PARTIAL)
    assert (near.name, near.name_score) == (wild.name, wild.name_score) == (NO_MATCH, 0)
    typo = match_name("Nguyễn Văn Anh", PARTIAL)
    assert typo.name is MATCH and 80 <= typo.name_score < 100


def test_partial_refuses_an_unchecked_threshold() -> None:
    for unchecked in (0, 1, 79):
        with pytest.raises(ValueError, match="check_claim"):
            match_name("Lê Thị Hoa", PARTIAL, threshold=unchecked)


# --- birth date and gender ------------------------------------------------------


def test_parse_claimed_birth_date() -> None:
    assert parse_claimed_birth_date(" 1990 ") == ClaimedBirthDate(1990)
    assert parse_claimed_birth_date("1990-05-17") == ClaimedBirthDate(1990, 5, 17)
    # Syntax only: check_claim rejects the impossible date.
    assert parse_claimed_birth_date("2023-02-30") == ClaimedBirthDate(2023, 2, 30)


@pytest.mark.parametrize(
    "raw", ["", "90", "1990-05", "17/05/1990", "19900517", "\uff11\uff19\uff19\uff10"]
)
def test_parse_claimed_birth_date_rejects_malformed(raw: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_claimed_birth_date(raw)
    assert [(v.field, v.reason) for v in info.value.violations] == [
        ("demographic.birth_date", "BIRTH_DATE_INVALID")
    ]


@pytest.mark.parametrize(
    ("claimed", "expected"),
    [
        (ClaimedBirthDate(1990), MATCH),
        (ClaimedBirthDate(1991), NO_MATCH),
        (ClaimedBirthDate(1990, 5, 17), MATCH),
        (ClaimedBirthDate(1990, 5, 18), NO_MATCH),
        (ClaimedBirthDate(1990, 6, 17), NO_MATCH),
        (ClaimedBirthDate(1991, 5, 17), NO_MATCH),
    ],
)
def test_birth_date_year_only_or_full(claimed: ClaimedBirthDate, expected: AttributeMatch) -> None:
    result = match_demographics(DemographicClaim(birth_date=claimed), STORED)
    assert (result.birth_date, result.name, result.gender) == (expected, NOT_CLAIMED, NOT_CLAIMED)
    assert result.matched is (expected is MATCH)


def test_gender() -> None:
    assert match_demographics(DemographicClaim(gender=Gender.MALE), STORED).gender is MATCH
    assert match_demographics(DemographicClaim(gender=Gender.FEMALE), STORED).gender is NO_MATCH


def test_matched_needs_every_claimed_attribute() -> None:
    claim = DemographicClaim("Nguyễn Văn An", ClaimedBirthDate(1990), Gender.MALE)
    assert match_demographics(claim, STORED).matched
    wrong_gender = dataclasses.replace(claim, gender=Gender.FEMALE)
    result = match_demographics(wrong_gender, STORED)
    assert (result.name, result.birth_date, result.gender) == (MATCH, MATCH, NO_MATCH)
    assert not result.matched
    assert not DemographicResult(NOT_CLAIMED, 0, NOT_CLAIMED, NOT_CLAIMED).matched


def test_the_result_never_carries_stored_values() -> None:
    claim = DemographicClaim("Nguyen Van Anh", ClaimedBirthDate(1990), Gender.FEMALE, PARTIAL)
    result = match_demographics(claim, STORED)
    values = [getattr(result, f.name) for f in dataclasses.fields(result)]
    assert all(isinstance(v, AttributeMatch | int) for v in values)
    for text in (repr(result), repr(STORED)):
        for secret in ("nguy", "van an", "1990", "male"):
            assert secret not in text.casefold()
    assert "Nguyen" not in repr(claim) and "1990" not in repr(claim)  # claims are personal data too


# --- check_claim ----------------------------------------------------------------


def violations(claim: DemographicClaim) -> list[tuple[str, str]]:
    with pytest.raises(InvalidInput) as info:
        check_claim(claim, TODAY)
    return [(v.field, v.reason) for v in info.value.violations]


@pytest.mark.parametrize(
    "claim",
    [
        DemographicClaim(full_name="Nguyễn Văn An"),
        DemographicClaim(birth_date=ClaimedBirthDate(2026, 11, 23)),  # born today
        DemographicClaim("An", birth_date=ClaimedBirthDate(1900)),
        DemographicClaim("An", birth_date=ClaimedBirthDate(2026)),
        DemographicClaim("An", gender=Gender.FEMALE, name_threshold=0),  # unused by EXACT
        DemographicClaim(birth_date=ClaimedBirthDate(1990, 5, 17), gender=Gender.MALE),
        DemographicClaim("H'Hen Niê", name_strategy=PARTIAL, name_threshold=100),
    ],
)
def test_check_claim_accepts(claim: DemographicClaim) -> None:
    check_claim(claim, TODAY)


def test_an_empty_claim_is_rejected() -> None:
    assert violations(DemographicClaim()) == [("demographic", "DEMOGRAPHIC_CLAIM_EMPTY")]


@pytest.mark.parametrize(
    "claim",
    [
        DemographicClaim(gender=Gender.FEMALE),
        DemographicClaim(birth_date=ClaimedBirthDate(1990)),
        DemographicClaim(birth_date=ClaimedBirthDate(1990), gender=Gender.MALE),
        # A PARTIAL strategy with no name claims no name.
        DemographicClaim(gender=Gender.MALE, name_strategy=PARTIAL, name_threshold=90),
    ],
)
def test_a_claim_of_what_the_id_number_encodes_alone_is_rejected(claim: DemographicClaim) -> None:
    """The number's 4th digit is the century and gender, the 5th and 6th the
    birth year: such a claim fits every account the number has."""
    assert violations(claim) == [("demographic", "DEMOGRAPHIC_CLAIM_TOO_WEAK")]


@pytest.mark.parametrize(
    ("name", "described"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("x" * 101, "longer than 100"),
        ("Nguyễn\x07Văn", "control character"),
        ("Nguyễn\ud800", "unpaired surrogate"),
        ("Nguyễn Văn 2", "only letters"),
    ],
)
def test_invalid_names(name: str, described: str) -> None:
    with pytest.raises(InvalidInput) as info:
        check_claim(DemographicClaim(full_name=name), TODAY)
    (violation,) = info.value.violations
    assert (violation.field, violation.reason) == ("demographic.full_name", "NAME_INVALID")
    assert described in violation.description
    assert info.value.reason == "NAME_INVALID"


@pytest.mark.parametrize(
    ("claimed", "described"),
    [
        (ClaimedBirthDate(2023, 2, 30), "not a valid calendar date"),
        (ClaimedBirthDate(1990, 13, 1), "not a valid calendar date"),
        (ClaimedBirthDate(1899, 12, 31), "before 1900"),
        (ClaimedBirthDate(1899), "before 1900"),
        (ClaimedBirthDate(2026, 11, 24), "future"),
        (ClaimedBirthDate(2027), "future"),
        (ClaimedBirthDate(1990, 5, None), "full date or a year alone"),
    ],
)
def test_invalid_birth_dates(claimed: ClaimedBirthDate, described: str) -> None:
    with pytest.raises(InvalidInput) as info:
        check_claim(DemographicClaim("Nguyễn Văn An", birth_date=claimed), TODAY)
    (violation,) = info.value.violations
    assert (violation.field, violation.reason) == ("demographic.birth_date", "BIRTH_DATE_INVALID")
    assert described in violation.description


@pytest.mark.parametrize("threshold", [0, -5, 1, 50, 79, 101])
def test_invalid_partial_threshold(threshold: int) -> None:
    """Only a closer match than the default: a low threshold would let the
    verdict say how close any guess came."""
    claim = DemographicClaim("An", name_strategy=PARTIAL, name_threshold=threshold)
    assert violations(claim) == [("demographic.name_threshold", "NAME_THRESHOLD_INVALID")]


def test_all_violations_are_reported_together() -> None:
    claim = DemographicClaim("", ClaimedBirthDate(2023, 2, 30), None, PARTIAL, 101)
    with pytest.raises(InvalidInput) as info:
        check_claim(claim, TODAY)
    assert info.value.reason == "INVALID_FIELDS"
    assert [v.field for v in info.value.violations] == [
        "demographic.full_name",
        "demographic.birth_date",
        "demographic.name_threshold",
    ]
