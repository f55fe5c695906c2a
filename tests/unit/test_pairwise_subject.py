"""Pairwise subjects: one stable id per (party, citizen), unlinkable across parties."""

from __future__ import annotations

import base64
import re

import pytest

from eid_service.security.keyed_hash import KeyedHasher
from eid_service.security.pairwise import pairwise_subject

HASHER = KeyedHasher(b"k" * 32)
SUBJECT = re.compile(r"sub_[a-z2-7]{32}", re.ASCII)


def test_stable_for_the_same_party_and_account() -> None:
    first = pairwise_subject(HASHER, "rp_bank", "acc_1")
    assert pairwise_subject(HASHER, "rp_bank", "acc_1") == first
    assert pairwise_subject(KeyedHasher(b"k" * 32), "rp_bank", "acc_1") == first


def test_different_for_two_parties_and_for_two_accounts() -> None:
    subjects = {
        pairwise_subject(HASHER, party, account)
        for party in ("rp_bank", "rp_telco", "rp_hospital")
        for account in ("acc_1", "acc_2", "acc_3")
    }
    assert len(subjects) == 9


def test_no_collision_from_where_the_inputs_are_split() -> None:
    splits = [("a", "b\x00c"), ("a", "bc"), ("ab", "c"), ("abc", ""), ("", "abc"), ("a", "\x00bc")]
    assert len({pairwise_subject(HASHER, party, account) for party, account in splits}) == 6
    with pytest.raises(ValueError, match="NUL"):  # the one split that would hash "a\0b\0c" again
        pairwise_subject(HASHER, "a\x00b", "c")


def test_another_server_key_gives_other_subjects() -> None:
    other = KeyedHasher(b"o" * 32)
    assert pairwise_subject(other, "rp_bank", "acc_1") != pairwise_subject(
        HASHER, "rp_bank", "acc_1"
    )


def test_the_subject_is_the_documented_hash() -> None:
    digest = HASHER.digest("pairwise-subject", "rp_bank\x00acc_1")
    expected = "sub_" + base64.b32encode(digest[:20]).decode().lower()
    assert pairwise_subject(HASHER, "rp_bank", "acc_1") == expected


@pytest.mark.parametrize("account", ["acc_1", "", "00119079151 4", "Nguyễn"])
def test_format(account: str) -> None:
    subject = pairwise_subject(HASHER, "rp_bank", account)
    assert SUBJECT.fullmatch(subject), subject
    assert account not in subject.removeprefix("sub_") or not account
