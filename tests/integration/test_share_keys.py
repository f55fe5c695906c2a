"""Share-signing keys over the wire: published without authentication, as
keys and as JWKS; rotation keeps what the old key signed valid; revoking a
key, a share or the account stops redemption at once."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import grpc
import pytest

from eid.v1 import identity_service_pb2 as pb
from eid_client.keys_cache import key_set_from_response
from eid_client.offline import OfflineVerificationError, verify_offline
from eid_service.domain.citizen import Demographics
from eid_service.use_cases.signing_keys import revoke_signing_key, rotate_signing_key
from tests.integration.account_life_kit import Refusal, Wire, activated, bearer, wire
from tests.integration.conftest import Party
from tests.integration.harness import ServerHarness


def _share(w: Wire, token: str, **fields: object) -> pb.ShareViaQRResponse:
    request = pb.ShareViaQRRequest(attributes=[pb.ATTRIBUTE_FULL_NAME], **fields)  # type: ignore[arg-type]
    response = w.call("ShareViaQR", request, **bearer(token))
    assert isinstance(response, pb.ShareViaQRResponse), response
    return response


def _redeem(w: Wire, party: Party, payload: str) -> pb.VerifyResponse | Refusal:
    request = pb.VerifyRequest(qr_share=pb.QrShareCredential(token=payload))
    result: pb.VerifyResponse | Refusal = w.call("Verify", request, x_api_key=party.api_key)
    return result


def _keys(w: Wire) -> pb.GetVerificationKeysResponse:
    response: pb.GetVerificationKeysResponse = w.call(
        "GetVerificationKeys", pb.GetVerificationKeysRequest()
    )
    return response


def _changed_keys(harness: ServerHarness) -> None:
    # Another process (the admin command) changed them; skip the cache's wait.
    harness.runtime.context.signing_keys.forget()


def test_keys_are_published_to_anyone_as_keys_and_jwks(
    harness: ServerHarness, adult: Demographics, bank: Party
) -> None:
    activated(harness, adult)
    with wire(harness) as w:
        token = w.sign_in(adult).session_token
        issued = _share(w, token, mode=pb.SHARE_MODE_OFFLINE)
        online = _share(w, token)
        published = _keys(w)

    # The key ring's old key came along, retired, when the server first started.
    legacy, key = published.keys
    assert legacy.key_id == harness.key_ring.active_signing_key_id
    assert legacy.state == pb.VERIFICATION_KEY_STATE_RETIRED and legacy.HasField("not_after")
    assert key.state == pb.VERIFICATION_KEY_STATE_CURRENT and key.algorithm == "EdDSA"
    assert key.key_id == issued.key_id and not key.HasField("not_after")
    jwk = json.loads(published.jwks_json)["keys"][1]
    assert (jwk["kid"], jwk["kty"], jwk["crv"], jwk["alg"]) == (
        key.key_id,
        "OKP",
        "Ed25519",
        "EdDSA",
    )
    # The published keys check an offline credential with no server...
    keys = key_set_from_response(published)
    assert verify_offline(issued.token, keys).share_id == issued.share_id
    # ...and cannot check an online token: it is opaque, redeemed only through Verify.
    with pytest.raises(OfflineVerificationError) as refused:
        verify_offline(online.token, keys)
    assert refused.value.reason == "SHARE_ONLINE_ONLY"
    assert online.key_id == key.key_id
    assert published.issuer == "eid.vn"


def test_rotation_keeps_old_shares_and_revocation_stops_them(
    harness: ServerHarness, adult: Demographics, bank: Party
) -> None:
    activated(harness, adult)
    with wire(harness) as w:
        token = w.sign_in(adult).session_token
        old = _share(w, token, multi_use=True)
        new_key = harness.run(rotate_signing_key(harness.runtime.uow, harness.clock()))
        _changed_keys(harness)
        new = _share(w, token, mode=pb.SHARE_MODE_OFFLINE)

        assert new.key_id == new_key != old.key_id
        assert not isinstance(_redeem(w, bank, old.token), Refusal)
        states = {k.key_id: k.state for k in _keys(w).keys}
        assert states == {
            harness.key_ring.active_signing_key_id: pb.VERIFICATION_KEY_STATE_RETIRED,
            old.key_id: pb.VERIFICATION_KEY_STATE_RETIRED,
            new_key: pb.VERIFICATION_KEY_STATE_CURRENT,
        }

        harness.run(revoke_signing_key(harness.runtime.uow, old.key_id, harness.clock()))
        _changed_keys(harness)
        refused = _redeem(w, bank, old.token)

        assert isinstance(refused, Refusal)
        assert (refused.code, refused.reason) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "SHARE_KEY_REVOKED",
        )
        assert {k.key_id: k.state for k in _keys(w).keys}[old.key_id] == (
            pb.VERIFICATION_KEY_STATE_REVOKED
        )
        assert old.key_id not in _keys(w).jwks_json


def test_revoking_a_share_or_locking_the_account_takes_effect_at_once(
    harness: ServerHarness, adult: Demographics, bank: Party
) -> None:
    activated(harness, adult)
    with wire(harness) as w:
        token = w.sign_in(adult).session_token
        revoked = _share(w, token, multi_use=True)
        offline = _share(w, token, mode=pb.SHARE_MODE_OFFLINE)
        assert not isinstance(_redeem(w, bank, revoked.token), Refusal)

        answer = w.call(
            "RevokeShare", pb.RevokeShareRequest(share_id=revoked.share_id), **bearer(token)
        )
        after_revoke = _redeem(w, bank, revoked.token)
        w.call("LockAccount", pb.LockAccountRequest(), **bearer(token))
        after_lock = _redeem(w, bank, offline.token)

    assert answer.share.state == pb.SHARE_STATE_REVOKED and answer.share.redeem_count == 1
    assert isinstance(after_revoke, Refusal) and after_revoke.reason == "SHARE_REVOKED"
    assert isinstance(after_lock, Refusal) and after_lock.reason == "ACCOUNT_LOCKED"


def test_revoking_an_expired_share_leaves_it_expired(
    harness: ServerHarness, adult: Demographics
) -> None:
    activated(harness, adult)
    with wire(harness) as w:
        token = w.sign_in(adult).session_token
        lapsing = _share(w, token)
        harness.clock.advance(timedelta(minutes=6))
        answer = w.call(
            "RevokeShare", pb.RevokeShareRequest(share_id=lapsing.share_id), **bearer(token)
        )
        listed = w.call("ListShares", pb.ListSharesRequest(), **bearer(token))
    assert answer.share.state == pb.SHARE_STATE_EXPIRED
    assert [s.state for s in listed.shares if s.share_id == lapsing.share_id] == [
        pb.SHARE_STATE_EXPIRED
    ]


def test_payload_refusals_each_have_their_reason(
    harness: ServerHarness, adult: Demographics, bank: Party
) -> None:
    activated(harness, adult)
    with wire(harness) as w:
        token = w.sign_in(adult).session_token
        online = _share(w, token).token
        offline = _share(w, token, mode=pb.SHARE_MODE_OFFLINE).token
        cases = {
            "x" * 4097: ("INVALID_ARGUMENT", "SHARE_PAYLOAD_TOO_LARGE"),
            "HC1:" + offline: ("INVALID_ARGUMENT", "SHARE_PAYLOAD_PREFIX_UNKNOWN"),
            "eid3." + online[5:]: ("INVALID_ARGUMENT", "SHARE_PAYLOAD_VERSION_UNSUPPORTED"),
            offline[:-6]: ("INVALID_ARGUMENT", "SHARE_PAYLOAD_MALFORMED"),
            online[:-2] + ("AA" if not online.endswith("AA") else "QA"): (
                "INVALID_ARGUMENT",
                "SHARE_SIGNATURE_INVALID",
            ),
        }
        seen = {payload: _redeem(w, bank, payload) for payload in cases}
        assert not isinstance(_redeem(w, bank, offline), Refusal)
        replayed = _redeem(w, bank, offline)

    for payload, (code, reason) in cases.items():
        refusal = seen[payload]
        assert isinstance(refusal, Refusal)
        assert (refusal.code.name, refusal.reason) == (code, reason)
    assert isinstance(replayed, Refusal) and replayed.reason == "SHARE_ALREADY_REDEEMED"


def test_every_changed_character_of_a_payload_is_refused(
    harness: ServerHarness, adult: Demographics, bank: Party
) -> None:
    activated(harness, adult)
    with wire(harness) as w:
        token = w.sign_in(adult).session_token
        for mode in (pb.SHARE_MODE_OFFLINE, pb.SHARE_MODE_ONLINE):
            payload = _share(w, token, mode=mode).token
            for index, char in enumerate(payload):
                # A neighbour in the alphabet, and one flipped bit of the character.
                for other in {chr(ord(char) ^ 1), "A" if char != "A" else "B"}:
                    changed = payload[:index] + other + payload[index + 1 :]
                    refusal = _redeem(w, bank, changed)
                    assert isinstance(refusal, Refusal), (mode, index)
                    assert refusal.code == grpc.StatusCode.INVALID_ARGUMENT, (index, refusal)
            # None of that used the genuine payload up.
            assert not isinstance(_redeem(w, bank, payload), Refusal)


async def _rotations_at_once(harness: ServerHarness, count: int) -> list[str]:
    uow = harness.runtime.uow
    return list(
        await asyncio.gather(*(rotate_signing_key(uow, harness.clock()) for _ in range(count)))
    )


def test_rotations_at_the_same_moment_each_make_a_key_and_leave_one_current(
    harness: ServerHarness, adult: Demographics
) -> None:
    """Operators (or a retried deploy) rotating at once: on PostgreSQL, a
    rotation that found the current key retired by another under it failed
    with a Conflict (a traceback from `eid-server keys rotate`)."""
    activated(harness, adult)
    with wire(harness) as w:
        token = w.sign_in(adult).session_token
        before = _share(w, token, mode=pb.SHARE_MODE_OFFLINE)
        made = harness.run(_rotations_at_once(harness, 16))
        _changed_keys(harness)
        after = _share(w, token, mode=pb.SHARE_MODE_OFFLINE)
        published = _keys(w)

    assert len(set(made)) == 16
    states = {k.key_id: k.state for k in published.keys}
    current = [
        key_id for key_id, state in states.items() if state == pb.VERIFICATION_KEY_STATE_CURRENT
    ]
    assert len(current) == 1 and current[0] in made and after.key_id == current[0]
    # None lost: every key made is published, and what the old key signed still verifies.
    assert set(made) <= set(states) and before.key_id in states
    keys = key_set_from_response(published)
    assert verify_offline(before.token, keys).share_id == before.share_id
    assert verify_offline(after.token, keys).share_id == after.share_id


def test_revoking_the_current_key_while_others_rotate_leaves_one_current_key(
    harness: ServerHarness,
) -> None:
    uow = harness.runtime.uow
    current = harness.run(rotate_signing_key(uow, harness.clock()))

    async def at_once() -> list[str | None]:
        rotations = [rotate_signing_key(uow, harness.clock()) for _ in range(8)]
        return list(
            await asyncio.gather(revoke_signing_key(uow, current, harness.clock()), *rotations)
        )

    harness.run(at_once())
    _changed_keys(harness)
    with wire(harness) as w:
        states = [k.state for k in _keys(w).keys]
        revoked = {k.key_id for k in _keys(w).keys if k.state == pb.VERIFICATION_KEY_STATE_REVOKED}
    assert states.count(pb.VERIFICATION_KEY_STATE_CURRENT) == 1
    assert revoked == {current}
