"""Online and offline QR shares through a real server, the Python SDK and the CLI:
payloads drawn as PNG (segno) and read back with a real decoder (zxing-cpp),
offline credentials checked with the published keys and no call to the server,
both modes redeemed online, the citizen's list and revocation, multi-use, and the
QR size bound of a basic-scope offline credential."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
import segno

from eid.v1 import identity_service_pb2 as pb
from eid_client import qr
from eid_client.cli import main
from eid_client.client import EidClient
from eid_client.errors import EidError
from eid_client.keys_cache import KeyCache
from eid_client.offline import OfflineVerificationError
from eid_service.domain.citizen import Demographics
from eid_service.use_cases.signing_keys import rotate_signing_key
from tests.integration.conftest import Party
from tests.integration.flows import PASSWORD, register_and_activate
from tests.integration.harness import ServerHarness

BASIC = ["personal_id", "full_name", "birth_date", "gender"]
UNREACHABLE = "127.0.0.1:1"  # nothing listens there: a verifier with no server


@pytest.fixture(autouse=True)
def _cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def signed_in(harness: ServerHarness, citizen_app: EidClient, adult: Demographics) -> EidClient:
    register_and_activate(harness, citizen_app, adult)
    citizen_app.sign_in(personal_id=adult.personal_id, password=PASSWORD)
    return citizen_app


@pytest.fixture
def verifier(harness: ServerHarness) -> Iterator[EidClient]:
    """A verifier's client of the server (no credentials: the keys are public)."""
    with EidClient(harness.target) as client:
        yield client


def through_png(payload: str, path: Path) -> str:
    """Draw the payload as a PNG, then read it back as a scanner would."""
    qr.write_image(payload, path)
    (scanned,) = qr.read_payloads(path)
    return scanned


def expected_attributes(citizen: Demographics) -> pb.CitizenAttributes:
    return pb.CitizenAttributes(
        personal_id=citizen.personal_id,
        full_name=citizen.full_name,
        birth_date=citizen.birth_date.isoformat(),
        gender=pb.Gender.Value(f"GENDER_{citizen.gender.value.upper()}"),
    )


def test_offline_share_round_trip_verified_with_no_server_call_then_redeemed_once(
    signed_in: EidClient, verifier: EidClient, bank: Party, adult: Demographics, tmp_path: Path
) -> None:
    issued = signed_in.share_via_qr(attributes=BASIC, mode="offline")
    assert issued.mode == pb.SHARE_MODE_OFFLINE and issued.key_id
    assert not issued.token.startswith("eid2.") and issued.qr_png == b""
    scanned = through_png(issued.token, tmp_path / "offline.png")
    assert scanned == issued.token

    keys = verifier.verification_keys()  # GetVerificationKeys, the only call
    assert issued.key_id in keys
    # A client whose server does not exist: nothing can be asked of anyone.
    with EidClient(UNREACHABLE, timeout=1) as offline:
        credential = offline.verify_offline(scanned, keys=keys)
    assert (credential.share_id, credential.key_id, credential.issuer) == (
        issued.share_id,
        issued.key_id,
        "eid.vn",
    )
    assert credential.expires_at.timestamp() == issued.expire_time.seconds
    assert (
        credential.personal_id,
        credential.full_name,
        credential.birth_date,
        credential.gender,
    ) == (adult.personal_id, adult.full_name, adult.birth_date.isoformat(), adult.gender.value)

    redeemed = bank.client.redeem_share(scanned)
    assert redeemed.verified and redeemed.method == pb.VERIFICATION_METHOD_QR_SHARE
    assert redeemed.attributes == expected_attributes(adult)
    with pytest.raises(EidError) as again:
        bank.client.redeem_share(scanned)
    assert again.value.reason == "SHARE_ALREADY_REDEEMED"


def test_offline_credential_holds_only_the_chosen_attributes(
    signed_in: EidClient, verifier: EidClient, adult: Demographics
) -> None:
    issued = signed_in.share_via_qr(attributes=["birth_date"], mode="offline")
    credential = verifier.verify_offline(issued.token, keys=verifier.verification_keys())
    assert credential.birth_date == adult.birth_date.isoformat()
    assert (credential.personal_id, credential.full_name, credential.gender) == (None,) * 3


def test_online_share_round_trip_is_redeemed_online_only(
    signed_in: EidClient, verifier: EidClient, bank: Party, adult: Demographics, tmp_path: Path
) -> None:
    issued = signed_in.share_via_qr(attributes=["full_name"])
    assert issued.mode == pb.SHARE_MODE_ONLINE and issued.token.startswith("eid2.")
    scanned = through_png(issued.token, tmp_path / "online.png")
    with pytest.raises(OfflineVerificationError) as refused:
        verifier.verify_offline(scanned)
    assert refused.value.reason == "SHARE_ONLINE_ONLY"
    assert not verifier.keys_cache.path.exists()  # no keys were needed to say so
    redeemed = bank.client.redeem_share(scanned)
    assert redeemed.attributes == pb.CitizenAttributes(full_name=adult.full_name)


def test_cached_keys_verify_with_the_channel_closed_and_a_rotation_refetches_once(
    harness: ServerHarness, signed_in: EidClient, adult: Demographics
) -> None:
    first = signed_in.share_via_qr(attributes=BASIC, mode="offline")
    with EidClient(harness.target) as verifier:
        assert verifier.verify_offline(first.token).key_id == first.key_id
        cache_file = verifier.keys_cache.path
    assert cache_file.is_file()
    # The channel is closed: a call would raise. The cache answers alone.
    assert verifier.verify_offline(first.token).full_name == adult.full_name
    with EidClient(UNREACHABLE, timeout=1) as elsewhere:
        # Another process reading the same file, with no server at all.
        cache = KeyCache(cache_file)
        assert elsewhere.verify_offline(first.token, cache=cache).share_id == first.share_id

    new_key = harness.run(rotate_signing_key(harness.runtime.uow, harness.clock()))
    harness.runtime.context.signing_keys.forget()  # skip the server's 5 s key cache
    second = signed_in.share_via_qr(attributes=BASIC, mode="offline")
    assert second.key_id == new_key != first.key_id
    with EidClient(harness.target) as verifier:
        # The cache lacks the new key: fetched once more, then both verify.
        assert verifier.verify_offline(second.token).key_id == new_key
        assert verifier.verify_offline(first.token).key_id == first.key_id
    cached = KeyCache(cache_file).load()
    assert cached is not None and cached[first.key_id].not_after is not None  # retired


def test_list_shares_pages_newest_first_and_only_the_citizens_own(
    harness: ServerHarness,
    signed_in: EidClient,
    adults: list[Demographics],
) -> None:
    issued = []
    for i in range(5):
        harness.clock.advance(timedelta(seconds=1))  # distinct creation times, in order
        issued.append(
            signed_in.share_via_qr(
                attributes=["full_name"] if i % 2 else BASIC,
                mode="offline" if i % 2 else "online",
                multi_use=i == 4,
            )
        )
    first = signed_in.list_shares(page_size=2)
    second = signed_in.list_shares(page_size=2, page_token=first.next_page_token)
    third = signed_in.list_shares(page_size=2, page_token=second.next_page_token)
    assert [len(p.shares) for p in (first, second, third)] == [2, 2, 1]
    assert first.next_page_token and second.next_page_token and not third.next_page_token
    paged = [s for p in (first, second, third) for s in p.shares]
    newest_first = [i.share_id for i in reversed(issued)]
    assert [s.share_id for s in paged] == newest_first
    assert [s.share_id for s in signed_in.iter_shares(page_size=2)] == newest_first
    latest, offline = paged[0], paged[1]
    assert (latest.mode, latest.multi_use, latest.state) == (
        pb.SHARE_MODE_ONLINE,
        True,
        pb.SHARE_STATE_ACTIVE,
    )
    assert list(latest.attributes) == sorted(
        pb.Attribute.Value(f"ATTRIBUTE_{a.upper()}") for a in BASIC
    )
    assert (offline.mode, list(offline.attributes)) == (
        pb.SHARE_MODE_OFFLINE,
        [pb.ATTRIBUTE_FULL_NAME],
    )

    other = adults[1]
    with EidClient(harness.target) as someone_else:
        register_and_activate(harness, someone_else, other)
        someone_else.sign_in(personal_id=other.personal_id, password=PASSWORD)
        assert list(someone_else.iter_shares()) == []
        with pytest.raises(EidError) as caught:
            someone_else.revoke_share(issued[0].share_id)
    assert (caught.value.code, caught.value.reason) == (
        grpc.StatusCode.NOT_FOUND,
        "SHARE_NOT_FOUND",
    )
    assert signed_in.list_shares().shares[-1].state == pb.SHARE_STATE_ACTIVE  # untouched


def test_revoking_stops_online_redemption_at_once_but_not_offline_checks(
    signed_in: EidClient, verifier: EidClient, bank: Party
) -> None:
    online = signed_in.share_via_qr(attributes=["full_name"], multi_use=True)
    offline = signed_in.share_via_qr(attributes=["full_name"], mode="offline")
    assert bank.client.redeem_share(online.token).verified
    keys = verifier.verification_keys()

    revoked = signed_in.revoke_share(online.share_id).share
    assert revoked.state == pb.SHARE_STATE_REVOKED and revoked.redeem_count == 1
    assert revoked.HasField("revoke_time")
    signed_in.revoke_share(offline.share_id)
    for token in (online.token, offline.token):
        with pytest.raises(EidError) as caught:
            bank.client.redeem_share(token)
        assert (caught.value.code, caught.value.reason) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "SHARE_REVOKED",
        )
    # What README.md says plainly: an offline verifier cannot learn of it.
    assert verifier.verify_offline(offline.token, keys=keys).share_id == offline.share_id
    states = {s.share_id: s.state for s in signed_in.iter_shares()}
    assert states == {
        online.share_id: pb.SHARE_STATE_REVOKED,
        offline.share_id: pb.SHARE_STATE_REVOKED,
    }


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_a_multi_use_share_redeems_more_than_once(
    signed_in: EidClient, bank: Party, mode: str
) -> None:
    issued = signed_in.share_via_qr(attributes=["birth_date"], mode=mode, multi_use=True)
    first = bank.client.redeem_share(issued.token)
    second = bank.client.redeem_share(issued.token)
    assert first.verified and second.verified
    assert first.verification_id != second.verification_id
    (listed,) = signed_in.iter_shares()
    assert (listed.redeem_count, listed.state) == (2, pb.SHARE_STATE_ACTIVE)
    assert listed.HasField("last_redeem_time")


def test_a_basic_scope_offline_qr_fits_version_10_at_level_m(
    harness: ServerHarness, citizen_app: EidClient, adults: list[Demographics]
) -> None:
    # The adult with the longest name in UTF-8 (Vietnamese letters take 2-3 bytes).
    citizen = max(adults, key=lambda c: len(c.full_name.encode()))
    register_and_activate(harness, citizen_app, citizen)
    citizen_app.sign_in(personal_id=citizen.personal_id, password=PASSWORD)
    issued = citizen_app.share_via_qr(attributes=BASIC, mode="offline")
    code = segno.make_qr(issued.token, error="m", boost_error=False)
    assert code.mode == "alphanumeric" and isinstance(code.version, int)  # not a Micro QR
    assert code.version <= 10, (code.version, len(issued.token))


def test_the_cli_shares_offline_and_verifies_with_no_server(
    harness: ServerHarness,
    signed_in: EidClient,
    adult: Demographics,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    png, keys = tmp_path / "share.png", tmp_path / "keys.json"
    session = signed_in.session_token
    assert session is not None
    served = ["--target", harness.target]
    share = ["share", "--session", session, "--offline", "--attributes", ",".join(BASIC)]
    assert main([*served, *share, "--no-qr", "--png", str(png)]) == 0
    assert main([*served, "keys", "--out", str(keys)]) == 0
    capsys.readouterr()

    verify = ["--target", UNREACHABLE, "--json", "verify-qr", str(png), "--keys", str(keys)]
    assert main(verify) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["attributes"] == {
        "personal_id": adult.personal_id,
        "full_name": adult.full_name,
        "birth_date": adult.birth_date.isoformat(),
        "gender": adult.gender.value,
    }
    (listed,) = signed_in.iter_shares()
    assert (listed.share_id, listed.mode) == (data["share_id"], pb.SHARE_MODE_OFFLINE)
