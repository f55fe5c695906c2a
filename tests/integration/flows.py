"""Multi-step citizen journeys reused across integration tests."""

from __future__ import annotations

import zlib
from typing import Any

from eid.v1 import identity_service_pb2 as pb
from eid.v1.registration_office_service_pb2 import RegisterLevel2Response
from eid_client.client import EidClient
from eid_client.registration_office import RegistrationOfficeClient
from eid_service.demo import portrait_capture
from eid_service.domain.biometric_match import BiometricCapture
from eid_service.domain.citizen import Demographics
from eid_service.domain.registry_person import RegistryPerson
from tests.integration.harness import ServerHarness

PASSWORD = "correct horse battery staple"


def phone_of(citizen: Demographics) -> tuple[str, str]:
    """A stable synthetic mobile number: (national form, E.164)."""
    eight = f"{zlib.crc32(citizen.personal_id.encode()) % 10**8:08d}"
    return "09" + eight, "+849" + eight


def register(client: EidClient, citizen: Demographics, **overrides: Any) -> pb.RegisterResponse:
    """Registers as the citizen's app would: declared data and a capture of
    the citizen's face that matches the portrait the demo registry enrolled
    (harness.add_citizens enrols one for every citizen it adds)."""
    fields: dict[str, Any] = {
        "personal_id": citizen.personal_id,
        "full_name": citizen.full_name,
        "birth_date": citizen.birth_date.isoformat(),
        "gender": citizen.gender.value,
        "phone_number": phone_of(citizen)[0],
        "portrait": portrait_capture(citizen.personal_id),
    }
    fields.update(overrides)
    return client.register(**fields)


def register_and_activate(
    harness: ServerHarness, client: EidClient, citizen: Demographics, password: str = PASSWORD
) -> None:
    seen = len(harness.sender.messages)
    register(client, citizen)
    code = harness.wait_for_code(phone_of(citizen)[1], after=seen)
    client.activate(personal_id=citizen.personal_id, activation_code=code, new_password=password)


def register_level2(
    office: RegistrationOfficeClient,
    person: RegistryPerson,
    capture: BiometricCapture,
    request_id: str | None = None,
) -> RegisterLevel2Response:
    """An officer registers `person` (in the registry, with enrolled
    templates) at level 2 with what the counter captured."""
    d = person.demographics
    return office.register_level2(
        personal_id=d.personal_id,
        full_name=d.full_name,
        birth_date=d.birth_date,
        gender=d.gender.value,
        phone_number=phone_of(d)[0],
        portrait=capture.portrait.packed,
        fingerprints={f.value: t.packed for f, t in capture.fingerprints.items()},
        request_id=request_id,
    )


def register_level2_and_activate(
    harness: ServerHarness,
    office: RegistrationOfficeClient,
    person: RegistryPerson,
    capture: BiometricCapture,
    password: str = PASSWORD,
) -> RegisterLevel2Response:
    """... and the citizen activates the account in the app with the SMS code."""
    seen = len(harness.sender.messages)
    registered = register_level2(office, person, capture)
    citizen = person.demographics
    code = harness.wait_for_code(phone_of(citizen)[1], after=seen)
    with EidClient(harness.target) as app:
        app.activate(personal_id=citizen.personal_id, activation_code=code, new_password=password)
    return registered
