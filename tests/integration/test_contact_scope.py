"""The contact scope (the registered phone and email) through a real server
and the Python client, on each database: released only to a party granted
it, only when asked for (or by default) and, for shares and approvals, only
when the citizen chose it; named in receipts and the access history, never
valued in the audit; decrypted only when released."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from rich.console import Console

from eid.v1 import identity_service_pb2 as pb
from eid_client.client import EidClient
from eid_client.errors import EidError
from eid_client.receipts import verify_receipt
from eid_service.cli import build_parser
from eid_service.cli_parties import run_party_command
from eid_service.config import Settings
from eid_service.domain.citizen import Demographics
from eid_service.domain.share import Attribute
from eid_service.security.field_cipher import FieldCipher
from eid_service.security.keys import save_key_ring
from eid_service.use_cases.party_cache import TTL_SECONDS
from tests.integration.conftest import Party
from tests.integration.flows import PASSWORD, phone_of, register
from tests.integration.harness import ServerHarness

EMAIL = "lan.nguyen@example.vn"
PAST_TTL = timedelta(seconds=TTL_SECONDS + 1)
BASIC_AND_ID = (Attribute.FULL_NAME, Attribute.BIRTH_DATE, Attribute.GENDER, Attribute.PERSONAL_ID)
CONTACT = pb.CitizenAttributes


@pytest.fixture
def active(harness: ServerHarness, citizen_app: EidClient, adult: Demographics) -> Demographics:
    """An active citizen who registered an email besides the phone."""
    seen = len(harness.sender.messages)
    register(citizen_app, adult, email=EMAIL)
    code = harness.wait_for_code(phone_of(adult)[1], after=seen)
    citizen_app.activate(personal_id=adult.personal_id, activation_code=code, new_password=PASSWORD)
    return adult


@pytest.fixture
def telco(harness: ServerHarness) -> Iterator[Party]:
    """A party granted every scope, contact included."""
    party, key = harness.create_party("Telco", scopes=tuple(Attribute))
    with EidClient(harness.target, api_key=key) as client:
        yield Party(party, key, client)


@pytest.fixture
def shop(harness: ServerHarness) -> Iterator[Party]:
    """A party granted basic and id_number, not contact."""
    party, key = harness.create_party("Shop", scopes=BASIC_AND_ID)
    with EidClient(harness.target, api_key=key) as client:
        yield Party(party, key, client)


@pytest.fixture
def decrypted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The contexts (account:ID:field) of every field the server decrypts."""
    seen: list[str] = []
    real = FieldCipher.decrypt

    def spy(self: FieldCipher, blob: bytes, *, context: str) -> str:
        seen.append(context)
        return real(self, blob, context=context)

    monkeypatch.setattr(FieldCipher, "decrypt", spy)
    return seen


def _fields(contexts: list[str]) -> set[str]:
    """The account fields among decrypted contexts."""
    return {c.rsplit(":", 1)[1] for c in contexts if c.startswith("account:")}


def _password(party: Party, citizen: Demographics, *scopes: str) -> pb.VerifyResponse:
    return _password_as(party.client, citizen, *scopes)


def _password_as(client: EidClient, citizen: Demographics, *scopes: str) -> pb.VerifyResponse:
    return client.verify_password(
        personal_id=citizen.personal_id, password=PASSWORD, requested_scopes=scopes
    )


def test_only_a_party_granted_contact_reads_phone_and_email_decrypted_only_then(
    harness: ServerHarness,
    telco: Party,
    shop: Party,
    active: Demographics,
    citizen_app: EidClient,
    decrypted: list[str],
) -> None:
    phone = phone_of(active)[1]
    everything = _password(telco, active)
    assert (everything.attributes.phone_number, everything.attributes.email) == (phone, EMAIL)
    assert everything.attributes.full_name == active.full_name

    decrypted.clear()
    contact = _password(telco, active, "contact")
    assert contact.attributes == CONTACT(phone_number=phone, email=EMAIL)
    assert _fields(decrypted) == {"phone", "email"}  # not the name, birth date or ID
    keys = telco.client.verification_keys()
    assert verify_receipt(contact.receipt, keys).attributes == ("email", "phone_number")

    decrypted.clear()
    by_shop = _password(shop, active)
    assert by_shop.verified and by_shop.attributes.full_name == active.full_name
    assert (by_shop.attributes.phone_number, by_shop.attributes.email) == ("", "")
    assert "phone" not in _fields(decrypted) and "email" not in _fields(decrypted)
    assert verify_receipt(by_shop.receipt, keys).attributes == (
        "birth_date",
        "full_name",
        "gender",
        "personal_id",
    )
    with pytest.raises(EidError) as refused:
        _password(shop, active, "basic", "contact")
    assert (refused.value.code, refused.value.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "SCOPE_NOT_ALLOWED",
    )

    citizen_app.sign_in(personal_id=active.personal_id, password=PASSWORD)
    records = list(citizen_app.list_access_history().records)
    released = {r.verification_id: set(r.attributes) for r in records}
    assert released[contact.verification_id] == {pb.ATTRIBUTE_PHONE_NUMBER, pb.ATTRIBUTE_EMAIL}
    assert pb.ATTRIBUTE_PHONE_NUMBER not in released[by_shop.verification_id]
    # The audit and the stored receipts name attributes, never their values.
    for table in ("audit_events", "verification_receipts"):
        stored = repr(harness.rows(f"SELECT * FROM {table}"))  # noqa: S608 (a constant)
        assert phone not in stored and EMAIL not in stored


def test_a_one_time_code_releases_the_contact_asked_for_a_demographic_claim_nothing(
    harness: ServerHarness, telco: Party, active: Demographics
) -> None:
    seen = len(harness.sender.messages)
    telco.client.request_otp(active.personal_id)
    code = harness.wait_for_code(phone_of(active)[1], after=seen)

    answer = telco.client.verify_one_time_code(
        active.personal_id, code, requested_scopes=[pb.SCOPE_CONTACT]
    )

    assert answer.verified and answer.method == pb.VERIFICATION_METHOD_ONE_TIME_CODE
    assert answer.attributes == CONTACT(phone_number=phone_of(active)[1], email=EMAIL)
    # A demographic claim releases nothing, contact scope or not.
    claim = telco.client.verify_demographic(active.personal_id, full_name=active.full_name)
    assert claim.verified and claim.attributes == CONTACT()


def test_without_a_registered_email_only_the_phone_is_released_and_named(
    harness: ServerHarness, telco: Party, citizen_app: EidClient, adults: list[Demographics]
) -> None:
    citizen = adults[1]
    seen = len(harness.sender.messages)
    register(citizen_app, citizen)  # no email
    code = harness.wait_for_code(phone_of(citizen)[1], after=seen)
    citizen_app.activate(
        personal_id=citizen.personal_id, activation_code=code, new_password=PASSWORD
    )

    answer = _password(telco, citizen, "contact")

    assert answer.attributes == CONTACT(phone_number=phone_of(citizen)[1])
    claims = verify_receipt(answer.receipt, telco.client.verification_keys())
    assert claims.attributes == ("phone_number",)


def test_a_share_releases_contact_only_if_the_citizen_chose_it_and_the_party_may(
    telco: Party, shop: Party, active: Demographics, citizen_app: EidClient
) -> None:
    citizen_app.sign_in(personal_id=active.personal_id, password=PASSWORD)
    phone = phone_of(active)[1]

    def shared(*attributes: str) -> str:
        return citizen_app.share_via_qr(attributes=attributes).token

    with_contact = telco.client.redeem_share(shared("full_name", "phone_number", "email"))
    assert with_contact.attributes == CONTACT(
        full_name=active.full_name, phone_number=phone, email=EMAIL
    )
    not_chosen = telco.client.redeem_share(shared("full_name"))
    assert not_chosen.attributes == CONTACT(full_name=active.full_name)
    not_granted = shop.client.redeem_share(shared("full_name", "phone_number", "email"))
    assert not_granted.attributes == CONTACT(full_name=active.full_name)
    assert verify_receipt(not_granted.receipt, shop.client.verification_keys()).attributes == (
        "full_name",
    )
    # The citizen's list shows what each share offers.
    offered = sorted(sorted(s.attributes) for s in citizen_app.list_shares().shares)
    with_all = [pb.ATTRIBUTE_FULL_NAME, pb.ATTRIBUTE_PHONE_NUMBER, pb.ATTRIBUTE_EMAIL]
    assert offered == [[pb.ATTRIBUTE_FULL_NAME], with_all, with_all]


def test_an_offline_share_carries_the_chosen_contact_signed(
    telco: Party, active: Demographics, citizen_app: EidClient
) -> None:
    citizen_app.sign_in(personal_id=active.personal_id, password=PASSWORD)
    issued = citizen_app.share_via_qr(attributes=["phone_number", "email"], mode="offline")

    credential = telco.client.verify_offline(issued.token, keys=telco.client.verification_keys())

    assert (credential.phone_number, credential.email) == (phone_of(active)[1], EMAIL)
    assert (credential.personal_id, credential.full_name) == (None, None)
    redeemed = telco.client.redeem_share(issued.token)  # online too, under the same rules
    assert redeemed.attributes == CONTACT(phone_number=phone_of(active)[1], email=EMAIL)


def test_an_approval_shows_and_releases_the_contact_asked_for(
    telco: Party, shop: Party, active: Demographics, citizen_app: EidClient
) -> None:
    citizen_app.sign_in(personal_id=active.personal_id, password=PASSWORD)
    started = telco.client.start_approval(active.personal_id, requested_scopes=["contact"])
    (shown,) = citizen_app.list_approval_requests().approval_requests
    assert set(shown.attributes) == {pb.ATTRIBUTE_PHONE_NUMBER, pb.ATTRIBUTE_EMAIL}
    citizen_app.approve(started.approval_id, started.verification_code)

    answer = telco.client.verify_approval(started.approval_id)

    assert answer.attributes == CONTACT(phone_number=phone_of(active)[1], email=EMAIL)
    with pytest.raises(EidError) as refused:
        shop.client.start_approval(active.personal_id, requested_scopes=["contact"])
    assert refused.value.reason == "SCOPE_NOT_ALLOWED"


def test_eid_server_party_create_and_set_scopes_grant_and_take_away_contact(
    harness: ServerHarness,
    active: Demographics,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    keys_file = tmp_path / "keys.json"
    save_key_ring(harness.key_ring, keys_file)
    settings = Settings(database_url=harness.database_url, keys_file=keys_file)

    def admin(*argv: str) -> str:
        """`eid-server party ...` against the server's database: what it printed."""
        shown = io.StringIO()
        args = build_parser().parse_args(["party", *argv])
        assert asyncio.run(run_party_command(settings, args, Console(file=shown, width=200))) == 0
        return shown.getvalue()

    def contact_of(client: EidClient) -> str:
        """The released phone and email, or the reason asking for them is refused."""
        try:
            answer = _password_as(client, active, "contact")
        except EidError as refused:
            return str(refused.reason)
        return f"{answer.attributes.phone_number} {answer.attributes.email}"

    granted = "basic, id_number, contact"
    created = admin(
        "create", "--name", "Telco", "--scopes", granted.replace(" ", ""), "--modes", "password"
    )
    assert granted in created
    party_id = created.split("Relying party ")[1].split()[0]
    api_key = capsys.readouterr().out.strip().splitlines()[-1]
    with EidClient(harness.target, api_key=api_key) as client:
        assert contact_of(client) == f"{phone_of(active)[1]} {EMAIL}"

        said = admin("set-scopes", party_id, "--scopes", "basic")
        assert f"scopes of {party_id}: basic (servers: within" in said
        harness.clock.advance(PAST_TTL)  # the server's cached copy of the party lapses
        assert contact_of(client) == "SCOPE_NOT_ALLOWED"
        basic = _password_as(client, active).attributes
        assert basic.full_name == active.full_name and (basic.phone_number, basic.email) == ("", "")

        admin("set-scopes", party_id, "--scopes", "basic,email")
        harness.clock.advance(PAST_TTL)
        assert contact_of(client) == "SCOPE_NOT_ALLOWED"  # contact is phone and email
        released = _password_as(client, active).attributes
        assert (released.email, released.phone_number) == (EMAIL, "")
