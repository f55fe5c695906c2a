"""The search of tests/e2e/test_nothing_in_clear.py finds what is planted in
a dump, in each form it looks for, names where it is, and never prints it;
and finds nothing in a dump that holds only ciphertext."""

from __future__ import annotations

import os
import random
import struct
import unicodedata

from tests.cleartext import (
    Haystack,
    Kind,
    Needle,
    Segment,
    fold,
    iterdump_segments,
    pages,
    pg_dump_segments,
    report,
    search,
)

NAME = "Nguyễn Thị Lan"
ID = "001190791514"
PHONE = "0912345678"
PASSPORT = "M12345678"
DOCUMENT = "51F-123.45"
NEEDLES = [
    Needle(Kind.FULL_NAME, NAME),
    Needle(Kind.ID_NUMBER, ID),
    Needle(Kind.PHONE, PHONE),
    Needle(Kind.PASSPORT_NUMBER, PASSPORT),
    Needle(Kind.DOCUMENT_NUMBER, DOCUMENT),
]


def _ciphertext(n: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(n)


def _pg_dump(full_name: str, personal_id_enc: bytes) -> str:
    return "\n".join(
        [
            "SET client_encoding = 'UTF8';",
            "COPY public.accounts (id, full_name, personal_id_enc, gender) FROM stdin;",
            f"acc_1\t{full_name}\t\\\\x{personal_id_enc.hex()}\tfemale",
            "acc_2\tx\t\\N\tmale",
            "\\.",
            "",
        ]
    )


def _search_one(haystack: Haystack) -> list[str]:
    return [f"{f.kind.value}|{f.form}|{f.where}" for f in search([haystack], NEEDLES)]


def test_fold_makes_nfc_nfd_and_capitals_alike() -> None:
    nfd = unicodedata.normalize("NFD", NAME)
    assert fold(NAME) == fold(nfd) == fold(NAME.upper()) == "nguyen thi lan"
    assert fold("Đặng Văn Đức") == "dang van duc"


def test_an_nfd_name_in_a_pg_dump_column_is_found_and_named() -> None:
    nfd = unicodedata.normalize("NFD", NAME)
    segments, rows = pg_dump_segments(_pg_dump(nfd, _ciphertext(40)))
    assert rows == {"accounts": 2}
    found = _search_one(Haystack("pg_dump", segments))
    assert found == ["full name|UTF-8 NFD|accounts.full_name at byte 0"]


def test_an_id_number_in_a_bytea_column_is_found_decoded() -> None:
    blob = _ciphertext(20) + ID.encode() + _ciphertext(20, 2)
    segments, _ = pg_dump_segments(_pg_dump("x", blob))
    found = _search_one(Haystack("pg_dump", segments))
    assert found == ["ID number|as written|accounts.personal_id_enc at byte 20"]


def test_a_folded_or_capitalised_name_in_raw_bytes_is_found() -> None:
    for written in ("nguyen thi lan", "NGUYEN THI LAN", "Nguyen Thi Lan"):
        data = _ciphertext(5000) + written.encode() + _ciphertext(5000, 3)
        found = search([Haystack("file", pages("eid.db", data))], NEEDLES)
        assert [(f.kind, f.form) for f in found] == [
            (Kind.FULL_NAME, "case-folded without diacritics")
        ]
        assert "eid.db bytes 4096-" in found[0].where


def test_a_phone_is_found_in_each_form_whichever_was_typed() -> None:
    for stored, form in (("+84912345678", "E.164"), ("0912345678", "national")):
        for typed in ("0912345678", "+84912345678"):
            haystack = Haystack("rows", [Segment("outbox.destination", stored.encode())])
            found = search([haystack], [Needle(Kind.PHONE, typed)])
            assert [f.form for f in found] == [form]
    bare = Haystack("rows", [Segment("t.c", b"84912345678")])
    assert [f.form for f in search([bare], [Needle(Kind.PHONE, PHONE)])] == ["E.164 without +"]


def test_passport_and_document_numbers_in_any_case_or_compacted() -> None:
    haystack = Haystack("rows", [Segment("t.a", b"m12345678"), Segment("t.b", b"51f12345")])
    found = {f.kind: f.form for f in search([haystack], NEEDLES)}
    assert found == {
        Kind.PASSPORT_NUMBER: "as written",
        Kind.DOCUMENT_NUMBER: "letters and digits only",
    }


def test_a_template_in_raw_bytes_is_found() -> None:
    template = struct.pack("<128f", *(random.Random(5).gauss(0, 1) for _ in range(128)))
    data = _ciphertext(3000) + template + _ciphertext(3000, 4)
    found = search([Haystack("file", pages("eid.db", data))], [Needle(Kind.TEMPLATE, template)])
    assert [(f.kind, f.form) for f in found] == [(Kind.TEMPLATE, "float32 little-endian")]


def test_a_name_in_a_blob_of_an_iterdump_is_found_with_its_table() -> None:
    lines = [
        'CREATE TABLE "accounts" (id, full_name_enc);',
        f"INSERT INTO \"accounts\" VALUES('acc_1',X'{NAME.encode().hex()}');",
    ]
    segments, rows = iterdump_segments(lines)
    assert rows == {"accounts": 1}
    found = _search_one(Haystack("iterdump", segments))
    assert found == ["full name|UTF-8 NFC|accounts row (dump line 2) blob at byte 0"]


def test_ciphertext_and_other_peoples_data_are_not_found() -> None:
    segments, _ = pg_dump_segments(_pg_dump("Trần Văn Bình", _ciphertext(4000)))
    raw = pages("eid.db", os.urandom(20_000))
    assert search([Haystack("pg_dump", segments), Haystack("file", raw)], NEEDLES) == []


def test_a_report_names_the_place_and_kind_but_never_the_needle() -> None:
    row = f"'acc_1','{NAME}','{ID}','{PHONE}','+84{PHONE[1:]}','{PASSPORT}','2026-01-01'"
    haystack = Haystack("iterdump", [Segment("accounts row", row.encode())])
    findings = search([haystack], NEEDLES)
    assert {f.kind for f in findings} == {
        Kind.FULL_NAME,
        Kind.ID_NUMBER,
        Kind.PHONE,
        Kind.PASSPORT_NUMBER,
    }
    text = report(findings)
    assert "accounts row" in text and "<full name>" in text
    for secret in (NAME, fold(NAME), ID, PHONE, PHONE[1:], PASSPORT, "2026"):
        assert secret.casefold() not in text.casefold()
