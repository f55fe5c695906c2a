"""Demographic verification: does a relying party's claim fit the registered citizen?

A relying party sends an ID number plus a claimed full name, birth date and/or
gender (like Aadhaar's "Pi" attributes), at least one of them more than the
number itself tells (the name or the full birth date); each claimed attribute
is answered MATCH or NO_MATCH. The result never carries a stored value. Names are compared
EXACT (diacritics and order count) or PARTIAL (a 0..100 score against a
threshold). Pure: no I/O and no logging.
"""

from __future__ import annotations

import enum
import hmac
import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from eid_service.domain.citizen import Gender, normalize_name, parse_birth_date, parse_full_name
from eid_service.domain.errors import FieldViolation, InvalidInput

# 80: the lowest score at which "Nguyễn An" still matches "Nguyễn Văn An" (middle
# name left out: 80) and a one-letter typo in a short word passes ("Am"/"An": 83),
# while sharing only the very common family name stays far below ("Nguyễn Thị Hoa":
# 33), as mostly does another given name after the same family and middle names
# ("Bình": 75). "Minh"/"Linh" (91) still pass: PARTIAL only corroborates the ID number.
DEFAULT_NAME_THRESHOLD = 80
# A party may ask for a closer match than the default, never a looser one: with
# a low threshold (or by moving it call by call) the verdict would tell how
# close any guess is, and guesses could climb to the stored name.
MIN_NAME_THRESHOLD = DEFAULT_NAME_THRESHOLD

NAME_FIELD = "demographic.full_name"
BIRTH_DATE_FIELD = "demographic.birth_date"
# A typed Gender is always valid; the API edge reports unknown values under this field.
GENDER_FIELD = "demographic.gender"
THRESHOLD_FIELD = "demographic.name_threshold"
_CLAIM_FIELD = "demographic"

# ASCII digits only: "\d" would also take full-width and other scripts' digits.
_CLAIMED_DATE = re.compile(r"([0-9]{4})(?:-([0-9]{2})-([0-9]{2}))?")


class NameMatchStrategy(enum.Enum):
    """EXACT: equal after NFC, case folding and whitespace collapsing
    (diacritics and word order count). PARTIAL: name_score >= the threshold."""

    EXACT = "exact"
    PARTIAL = "partial"


class AttributeMatch(enum.Enum):
    """The verdict on one attribute; NOT_CLAIMED when the claim left it out."""

    MATCH = "match"
    NO_MATCH = "no_match"
    NOT_CLAIMED = "not_claimed"


@dataclass(frozen=True)
class ClaimedBirthDate:
    """A claimed birth date: a full date, or a year alone (month and day None)."""

    # Kept out of repr (as all claimed and stored values) so a logged object never carries them.
    year: int = field(repr=False)
    month: int | None = field(default=None, repr=False)
    day: int | None = field(default=None, repr=False)


def parse_claimed_birth_date(text: str) -> ClaimedBirthDate:
    """Parse "YYYY-MM-DD" or "YYYY". Only the syntax is checked here; check_claim
    rejects impossible and out-of-range dates together with the other fields."""
    found = _CLAIMED_DATE.fullmatch(text.strip())
    if found is None:
        description = "the birth date must be written as YYYY-MM-DD or YYYY"
        raise InvalidInput.of(BIRTH_DATE_FIELD, "BIRTH_DATE_INVALID", description)
    year, month, day = found.groups()
    if month is None or day is None:
        return ClaimedBirthDate(int(year))
    return ClaimedBirthDate(int(year), int(month), int(day))


@dataclass(frozen=True)
class DemographicClaim:
    """What the relying party claims; None means "not claimed"."""

    full_name: str | None = field(default=None, repr=False)
    birth_date: ClaimedBirthDate | None = field(default=None, repr=False)
    gender: Gender | None = None
    name_strategy: NameMatchStrategy = NameMatchStrategy.EXACT
    name_threshold: int = DEFAULT_NAME_THRESHOLD  # MIN_NAME_THRESHOLD..100, PARTIAL only


@dataclass(frozen=True)
class StoredDemographics:
    """The registered attributes the claim is compared with."""

    full_name: str = field(repr=False)
    birth_date: date = field(repr=False)
    gender: Gender = field(repr=False)


@dataclass(frozen=True)
class DemographicResult:
    """Per-attribute verdicts; by construction it holds no stored value."""

    name: AttributeMatch
    # The PARTIAL score when the name matched (the threshold..100); otherwise 0,
    # so a failed claim tells nothing of how close it came. EXACT: 100 or 0.
    name_score: int
    birth_date: AttributeMatch
    gender: AttributeMatch

    @property
    def matched(self) -> bool:
        """At least one attribute was claimed and every claimed one matches."""
        verdicts = (self.name, self.birth_date, self.gender)
        claimed = [v for v in verdicts if v is not AttributeMatch.NOT_CLAIMED]
        return bool(claimed) and all(v is AttributeMatch.MATCH for v in claimed)


def check_claim(claim: DemographicClaim, today: date) -> None:
    """Raise InvalidInput listing every invalid field of the claim at once."""
    found: list[FieldViolation] = []
    if claim.full_name is None and claim.birth_date is None and claim.gender is None:
        description = "claim at least one of full name, birth date and gender"
        found.append(FieldViolation(_CLAIM_FIELD, "DEMOGRAPHIC_CLAIM_EMPTY", description))
    elif not _beyond_the_id_number(claim):
        description = (
            "claim the full name or the full birth date (YYYY-MM-DD): the gender and"
            " birth year alone are encoded in the ID number itself"
        )
        found.append(FieldViolation(_CLAIM_FIELD, "DEMOGRAPHIC_CLAIM_TOO_WEAK", description))
    if claim.full_name is not None:
        found.extend(_name_violations(claim.full_name))
    if claim.birth_date is not None:
        found.extend(_birth_date_violations(claim.birth_date, today))
    partial = claim.name_strategy is NameMatchStrategy.PARTIAL
    if partial and not MIN_NAME_THRESHOLD <= claim.name_threshold <= 100:
        description = (
            f"the name match threshold must be between {MIN_NAME_THRESHOLD} and 100"
            f" (a closer match than the default {DEFAULT_NAME_THRESHOLD}, never a looser one)"
        )
        found.append(FieldViolation(THRESHOLD_FIELD, "NAME_THRESHOLD_INVALID", description))
    if found:
        # Same shape as use_cases.validation.Violations (which the domain may not import).
        reason = found[0].reason if len(found) == 1 else "INVALID_FIELDS"
        message = "; ".join(v.description for v in found)
        raise InvalidInput(reason=reason, message=message, violations=found)


def _beyond_the_id_number(claim: DemographicClaim) -> bool:
    """Whether the claim holds something the ID number does not tell.

    A citizen's number encodes the gender and the birth year (personal_id.py),
    so a claim of those alone always fits an active account: one call would
    tell whether the number has an account, never failing (so never counted
    by the party's failure throttle), and leave the party a receipt. Only the
    name and the birth date's month and day are not in the number. The rule
    holds for a foreigner's number too (which encodes neither): it depends on
    the claim alone, checked before any lookup, so the refusal is the same
    for every number; and a gender or year alone, a one-in-two or
    one-in-a-hundred guess, is no check of a form anyway.
    """
    birth = claim.birth_date
    # A date with a month or a day (malformed or not) claims more than the year.
    dated = birth is not None and (birth.month is not None or birth.day is not None)
    return claim.full_name is not None or dated


def _name_violations(name: str) -> list[FieldViolation]:
    categories = {unicodedata.category(ch) for ch in name}
    if "Cc" in categories:
        description = "the full name contains a control character"
    elif "Cs" in categories:
        description = "the full name contains an unpaired surrogate"
    else:
        # A claim that could never be a registered name is malformed, so the
        # registry's own rules apply (length, letters, allowed punctuation).
        try:
            parse_full_name(name, NAME_FIELD)
        except InvalidInput as e:
            description = e.message
        else:
            return []
    return [FieldViolation(NAME_FIELD, "NAME_INVALID", description)]


def _birth_date_violations(claimed: ClaimedBirthDate, today: date) -> list[FieldViolation]:
    if (claimed.month is None) != (claimed.day is None):
        description = "the birth date must be a full date or a year alone"
        return [FieldViolation(BIRTH_DATE_FIELD, "BIRTH_DATE_INVALID", description)]
    # A year alone is valid exactly when its 1 January is: from 1900 up to this year.
    month = 1 if claimed.month is None else claimed.month
    day = 1 if claimed.day is None else claimed.day
    try:
        parse_birth_date(f"{claimed.year:04d}-{month:02d}-{day:02d}", today, BIRTH_DATE_FIELD)
    except InvalidInput as e:
        return e.violations
    return []


def normalise_name(name: str) -> tuple[str, ...]:
    """The words of a name for PARTIAL matching: case folded, without diacritics
    (Vietnamese đ becomes d), split on whitespace and punctuation."""
    # NFKD, case fold, NFKD again: Unicode's compatibility caseless matching.
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", name).casefold())
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    # đ has no decomposition, so stripping marks leaves it; people type it as d.
    text = text.replace("đ", "d")
    # Spacing marks (Mc) stay: they are vowel signs in Indic scripts, not accents.
    return tuple(
        "".join(ch if unicodedata.category(ch)[0] in "LMN" else " " for ch in text).split()
    )


def _distance(a: str, b: str) -> int:
    """The Levenshtein distance of two words."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def name_score(claimed: str, stored: str) -> int:
    """How alike two names are, 0..100, ignoring case, diacritics and word order.

    Words are paired greedily, most similar pair first (Levenshtein similarity:
    1 - distance / longer length); the score is the Dice coefficient
    2 * sum(similarity) / (claimed words + stored words), so a missing or an
    extra word costs the same. 100 iff the normalised words are equal as
    multisets. Expects names of registry size.
    """
    # Greedy, not an optimal assignment. Equal words (similarity 1, more than
    # any other pair) are paired first, as many of each word as both names
    # have; the rest in order of (similarity, words), ties being between equal
    # words: the result depends on the word multisets alone, order-insensitive
    # and symmetric. A claim that fits (the usual case) computes no distance.
    a, b = sorted(normalise_name(claimed)), sorted(normalise_name(stored))
    if not a or not b:
        return 100 if a == b else 0
    count_a, count_b = Counter(a), Counter(b)
    rest_a = sorted((count_a - count_b).elements())
    rest_b = sorted((count_b - count_a).elements())
    exact = len(a) - len(rest_a)
    # Similarities as integers over a common denominator: exact, like
    # fractions, at a fraction of their cost.
    scored = [
        (i, j, x, y, max(len(x), len(y)), _distance(x, y))
        for i, x in enumerate(rest_a)
        for j, y in enumerate(rest_b)
    ]
    denominator = math.lcm(*(longest for *_, longest, _ in scored)) if scored else 1
    pairs = sorted(
        (-(longest - distance) * (denominator // longest), min(x, y), max(x, y), i, j)
        for i, j, x, y, longest, distance in scored
    )
    used_a: set[int] = set()
    used_b: set[int] = set()
    total = exact * denominator
    for negated, _, _, i, j in pairs:
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            total -= negated
    # Exact integers and floor: nothing short of equal words can round up to 100.
    return (100 * 2 * total) // (denominator * (len(a) + len(b)))


def _verdict(claimed: bool, matches: bool) -> AttributeMatch:
    if not claimed:
        return AttributeMatch.NOT_CLAIMED
    return AttributeMatch.MATCH if matches else AttributeMatch.NO_MATCH


def match_demographics(claim: DemographicClaim, stored: StoredDemographics) -> DemographicResult:
    """Compare a claim (already accepted by check_claim) with the stored attributes.

    Every claimed attribute is compared, with no early exit on a mismatch, so the
    work does not depend on which stored attribute differs.
    """
    name_matches, score = False, 0
    if claim.full_name is not None:
        if claim.name_strategy is NameMatchStrategy.PARTIAL:
            if not MIN_NAME_THRESHOLD <= claim.name_threshold <= 100:
                # A low threshold would match (and score) any guess: never unchecked.
                raise ValueError(
                    f"name_threshold must be {MIN_NAME_THRESHOLD}..100; call check_claim first"
                )
            score = name_score(claim.full_name, stored.full_name)
            name_matches = score >= claim.name_threshold
            if not name_matches:
                # Withheld, as a biometric score is: how far a guess missed
                # would guide the next (and tell an account from none).
                score = 0
        else:
            name_matches = hmac.compare_digest(
                normalize_name(claim.full_name).encode("utf-8", "surrogatepass"),
                normalize_name(stored.full_name).encode("utf-8", "surrogatepass"),
            )
            # Only the verdict: a graded score would tell more than EXACT promises.
            score = 100 if name_matches else 0
    birth, born = claim.birth_date, stored.birth_date
    birth_matches = False
    if birth is not None and birth.month is None and birth.day is None:  # a year alone
        birth_matches = birth.year == born.year
    elif birth is not None:
        birth_matches = (birth.year, birth.month, birth.day) == (born.year, born.month, born.day)
    return DemographicResult(
        name=_verdict(claim.full_name is not None, name_matches),
        name_score=score,
        birth_date=_verdict(birth is not None, birth_matches),
        gender=_verdict(claim.gender is not None, claim.gender is stored.gender),
    )
