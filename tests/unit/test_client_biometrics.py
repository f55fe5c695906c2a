"""The SDK's biometric helpers: templates packed as the API carries them,
fingers by name or number, and the registration office client's requests."""

from __future__ import annotations

import struct

import pytest

from eid.v1 import identity_service_pb2 as pb
from eid_client.biometrics import fingerprints_pb, pack_template, parse_finger
from eid_client.registration_office import RegistrationOfficeClient, capture_pb


def test_templates_are_little_endian_float32() -> None:
    packed = pack_template([1.0, -2.5, 0.25])
    assert packed == struct.pack("<3f", 1.0, -2.5, 0.25)
    assert pack_template(packed) == packed  # bytes go as they are
    assert len(pack_template([0.1] * 128, 128)) == 512
    with pytest.raises(ValueError, match="128 values, not 127"):
        pack_template([0.1] * 127, 128)
    with pytest.raises(ValueError, match="finite"):
        pack_template([float("inf")] * 64, 64)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("right_index", pb.FINGER_RIGHT_INDEX),
        ("FINGER_LEFT_LITTLE", pb.FINGER_LEFT_LITTLE),
        (" Left_Thumb ", pb.FINGER_LEFT_THUMB),
        (1, pb.FINGER_RIGHT_THUMB),
    ],
)
def test_fingers_by_name_or_number(name: str | int, expected: int) -> None:
    assert parse_finger(name) == expected


@pytest.mark.parametrize("bad", ["toe", "unspecified", 0, 11])
def test_an_unknown_finger_is_refused_before_calling(bad: str | int) -> None:
    with pytest.raises(ValueError, match="unknown finger"):
        parse_finger(bad)


def test_a_capture_is_one_portrait_and_a_message_per_finger() -> None:
    capture = capture_pb([0.5] * 128, {"right_index": [0.1] * 64, 7: bytes(256)})
    assert len(capture.portrait) == 512
    assert [(f.finger, len(f.template)) for f in capture.fingerprints] == [
        (pb.FINGER_RIGHT_INDEX, 256),
        (pb.FINGER_LEFT_INDEX, 256),
    ]
    assert fingerprints_pb({}) == []
    with pytest.raises(ValueError, match="64 values"):
        capture_pb([0.5] * 128, {"right_index": [0.1] * 128})


def test_the_office_client_needs_an_officer_key() -> None:
    with pytest.raises(ValueError, match="officer_key"):
        RegistrationOfficeClient("127.0.0.1:1", officer_key="")
