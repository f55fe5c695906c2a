"""Two worker processes on one SQLite file under concurrent writes: every call
gets its real answer, none a busy-store or internal error."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from eid.v1 import identity_service_pb2 as pb
from eid_client.client import EidClient
from eid_service.demo import demo_citizens, portrait_capture
from eid_service.domain.citizen import Demographics, age_on
from tests.e2e.conftest import Deployment
from tests.integration.flows import PASSWORD, phone_of

pytestmark = pytest.mark.e2e


def test_concurrent_registrations_and_activations_all_succeed(deployment: Deployment) -> None:
    today = datetime.now(UTC).date()
    adults = [c for c in demo_citizens() if age_on(c.birth_date, today) >= 14][:16]

    def register(c: Demographics) -> int:
        with EidClient(deployment.target) as client:
            return client.register(
                personal_id=c.personal_id,
                full_name=c.full_name,
                birth_date=c.birth_date,
                gender=c.gender.value,
                phone_number=phone_of(c)[0],
                portrait=portrait_capture(c.personal_id),
            ).account.state

    def activate(c: Demographics) -> int:
        code = deployment.latest_code(phone_of(c)[1])
        with EidClient(deployment.target) as client:
            return client.activate(
                personal_id=c.personal_id, activation_code=code, new_password=PASSWORD
            ).account.state

    with ThreadPoolExecutor(16) as pool:
        assert set(pool.map(register, adults)) == {pb.ACCOUNT_STATE_PENDING}
        assert set(pool.map(activate, adults)) == {pb.ACCOUNT_STATE_ACTIVE}
