"""QR shares and their keys end to end, against `eid-server serve --workers 2`
(one SQLite file): an offline payload redeems once however many workers race
for it; `eid-server keys rotate` keeps what the old key signed valid and
`eid-server keys revoke` stops it, on every worker."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import pytest

from eid.v1 import identity_service_pb2 as pb
from eid_client.errors import EidError
from eid_client.offline import KeySet, VerificationKey, verify_offline
from tests.e2e.conftest import Deployment, Device
from tests.e2e.test_account_life import ID, PASSWORD, PHONE_E164, _activate, _register
from tests.polling import until

pytestmark = pytest.mark.e2e

KEY_CACHE_SECONDS = 5  # use_cases/signing_keys.py: KEY_CACHE_TTL_SECONDS


def _signed_in(d: Deployment, device: Device) -> dict[str, str]:
    _register(device)
    assert not isinstance(_activate(device, d.latest_code(PHONE_E164)), EidError)
    session = device("SignIn", pb.SignInRequest(personal_id=ID, password=PASSWORD))
    return {"authorization": f"Bearer {session.session_token}"}


def _share(device: Device, auth: dict[str, str], **fields: Any) -> pb.ShareViaQRResponse:
    request = pb.ShareViaQRRequest(
        attributes=[pb.ATTRIBUTE_FULL_NAME, pb.ATTRIBUTE_PERSONAL_ID], **fields
    )
    issued = device("ShareViaQR", request, **auth)
    assert isinstance(issued, pb.ShareViaQRResponse), issued
    return issued


def _redeem(device: Device, api_key: str, payload: str) -> str:
    request = pb.VerifyRequest(qr_share=pb.QrShareCredential(token=payload))
    answer = device("Verify", request, x_api_key=api_key)
    return (answer.reason or "") if isinstance(answer, EidError) else "ok"


def _keys(device: Device) -> KeySet:
    published = device("GetVerificationKeys", pb.GetVerificationKeysRequest())
    return KeySet(
        VerificationKey(
            k.key_id, k.public_key, revoked=k.state == pb.VERIFICATION_KEY_STATE_REVOKED
        )
        for k in published.keys
    )


def _until(check: Any) -> Any:
    """Polls until `check()` is truthy: every worker's key cache has lapsed."""
    return until(check, 3 * KEY_CACHE_SECONDS, every=0.2)


def test_offline_shares_redeem_once_across_workers_and_follow_key_changes(
    deployment: Deployment, devices: list[Device]
) -> None:
    d = deployment
    # Dozens of redemptions of one citizen's shares a minute: past the default
    # per-citizen limit (10 a minute), which is not what this test is about.
    created = d.admin("party", "create", "--name", "Demo Bank", "--citizen-rate-limit", "600")
    api_key = created.strip().splitlines()[-1]
    auth = _signed_in(d, devices[0])

    offline = _share(devices[0], auth, mode=pb.SHARE_MODE_OFFLINE)
    credential = verify_offline(offline.token, _keys(devices[1]))
    assert credential.personal_id == ID and credential.key_id == offline.key_id

    with concurrent.futures.ThreadPoolExecutor(len(devices)) as pool:
        outcomes = list(pool.map(lambda dev: _redeem(dev, api_key, offline.token), devices))
    assert outcomes.count("ok") == 1
    assert set(outcomes) == {"ok", "SHARE_ALREADY_REDEEMED"}

    old = _share(devices[0], auth, multi_use=True)
    rotated = d.admin("keys", "rotate")
    assert "new current key" in rotated
    new_key = rotated.split("new current key", 1)[1].split()[0]
    fresh = _until(
        lambda: (s := _share(devices[1], auth, mode=pb.SHARE_MODE_OFFLINE)).key_id == new_key and s
    )
    assert fresh, "no worker signed with the new key"
    assert all(_redeem(dev, api_key, old.token) == "ok" for dev in devices)

    listed = d.admin("keys", "revoke", old.key_id)
    assert "revoked" in listed
    assert _until(
        lambda: all(_redeem(dev, api_key, old.token) == "SHARE_KEY_REVOKED" for dev in devices)
    )
    assert _redeem(devices[2], api_key, fresh.token) == "ok"
