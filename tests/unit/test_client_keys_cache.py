"""The verifier's keys: built from GetVerificationKeys, cached in a file, reused,
fetched again when asked or when a payload names an unknown key, or read from an
explicit file (cache format or JWKS); and the clients' verify_offline over them."""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import timestamp_pb2

from eid.v1 import identity_service_pb2 as pb
from eid_client import AsyncEidClient, EidClient
from eid_client.keys_cache import (
    KeyCache,
    OfflineChecks,
    cache_file_for,
    default_cache_dir,
    key_set_from_response,
    read_keys_file,
    verify_with_cache,
    write_keys_file,
)
from eid_client.offline import (
    CredentialClaims,
    KeySet,
    OfflineVerificationError,
    VerificationKey,
    issue_credential,
)
from tests.unit.test_client_calls import FakeEid

UTC = datetime.UTC


class Signer:
    """A signing key as the server holds it, and its public half as published."""

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        self.private = Ed25519PrivateKey.generate()
        self.public = self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def issue(
        self,
        *,
        age: datetime.timedelta = datetime.timedelta(0),
        ttl: datetime.timedelta = datetime.timedelta(minutes=5),
        audience: str | None = None,
    ) -> str:
        issued = datetime.datetime.now(UTC).replace(microsecond=0) - age
        claims = CredentialClaims(
            issuer="eid.vn",
            share_id="shr_" + "0a" * 10,
            issued_at=issued,
            expires_at=issued + ttl,
            audience=audience,
            personal_id="001190791514",
            full_name="Nguyễn Thị Lan",
            birth_date="1990-05-17",
            gender="female",
        )
        return issue_credential(claims, self.key_id, self.private)

    def listed(
        self, state: int = pb.VERIFICATION_KEY_STATE_CURRENT, **fields: object
    ) -> pb.VerificationKey:
        return pb.VerificationKey(
            key_id=self.key_id,
            algorithm="EdDSA",
            public_key=self.public,
            state=state,  # type: ignore[arg-type]
            **fields,  # type: ignore[arg-type]
        )


def published(*listed: pb.VerificationKey) -> pb.GetVerificationKeysResponse:
    """What the server answers: every key in the list, the usable ones also as JWKS."""
    usable = [
        VerificationKey(k.key_id, k.public_key)
        for k in listed
        if k.state != pb.VERIFICATION_KEY_STATE_REVOKED
    ]
    return pb.GetVerificationKeysResponse(
        keys=listed, jwks_json=KeySet(usable).to_jwks(), issuer="eid.vn"
    )


class Fetcher:
    """A fetch function counting its calls, answering the server's current keys."""

    def __init__(self, *signers: Signer) -> None:
        self.signers = list(signers)
        self.calls = 0

    def __call__(self) -> KeySet:
        self.calls += 1
        return key_set_from_response(published(*(s.listed() for s in self.signers)))


@pytest.fixture(autouse=True)
def _cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_keys_from_the_response_keep_retirement_and_revocation() -> None:
    current, retired, revoked = Signer("k3"), Signer("k2"), Signer("k1")
    until = datetime.datetime(2030, 1, 1, tzinfo=UTC)
    response = published(
        current.listed(),
        retired.listed(pb.VERIFICATION_KEY_STATE_RETIRED, not_after=_ts(until)),
        revoked.listed(pb.VERIFICATION_KEY_STATE_REVOKED, not_after=_ts(until)),
    )
    # Revoked keys are only in the list (compared by kid: key material may spell "k1").
    assert "k1" not in {k["kid"] for k in json.loads(response.jwks_json)["keys"]}
    keys = key_set_from_response(response)
    assert keys["k3"] == VerificationKey("k3", current.public)
    assert keys["k2"] == VerificationKey("k2", retired.public, until)
    assert keys["k1"].revoked and keys["k1"].public_key == revoked.public
    with pytest.raises(OfflineVerificationError) as refused:
        OfflineChecks().verify(revoked.issue(), keys)
    assert refused.value.reason == "SHARE_KEY_REVOKED"
    assert OfflineChecks().verify(current.issue(), keys).full_name == "Nguyễn Thị Lan"


def test_a_key_in_an_unknown_state_is_distrusted_and_a_jwks_only_key_is_kept() -> None:
    odd, jwks_only = Signer("k1"), Signer("k2")
    response = published(odd.listed(pb.VERIFICATION_KEY_STATE_UNSPECIFIED))
    response.jwks_json = KeySet([VerificationKey("k2", jwks_only.public)]).to_jwks()
    keys = key_set_from_response(response)
    assert keys["k1"].revoked and not keys["k2"].revoked


@pytest.mark.parametrize(
    "state",
    [
        pb.VERIFICATION_KEY_STATE_CURRENT,
        pb.VERIFICATION_KEY_STATE_REVOKED,
        pb.VERIFICATION_KEY_STATE_UNSPECIFIED,
    ],
)
def test_a_key_for_another_algorithm_is_left_out_in_any_state(state: int) -> None:
    # Revoking a key of a newer algorithm must not stop every offline verification.
    signer = Signer("k2")
    other = pb.VerificationKey(
        key_id="es1",
        algorithm="ES256",
        public_key=b"\x04" + bytes(64),  # an uncompressed P-256 point's length
        state=state,  # type: ignore[arg-type]
    )
    response = published(signer.listed())
    response.keys.append(other)  # listed only: an Ed25519 JWKS cannot hold it
    keys = key_set_from_response(response)
    assert list(keys) == ["k2"]
    assert OfflineChecks().verify(signer.issue(), keys).gender == "female"


def test_a_key_list_that_contradicts_the_jwks_is_refused() -> None:
    signer, impostor = Signer("k1"), Signer("k1")
    response = published(signer.listed())
    response.keys[0].public_key = impostor.public
    with pytest.raises(ValueError, match="disagree"):
        key_set_from_response(response)


def test_the_cache_file_is_written_then_reused(tmp_path: Path) -> None:
    signer = Signer("k1")
    fetch = Fetcher(signer)
    cache = KeyCache.for_target("127.0.0.1:50051")
    assert cache.path == tmp_path / "cache" / "eid" / "keys-127.0.0.1_50051.json"

    first = verify_with_cache(signer.issue(), cache, fetch)
    assert fetch.calls == 1
    assert KeySet.from_json(cache.path.read_text()) == fetch()  # the cache format, every key
    fetch.calls = 0
    # Another process (a new cache object) reads the file and asks nothing.
    again = verify_with_cache(signer.issue(), KeyCache(cache.path), fetch)
    assert fetch.calls == 0
    assert first.personal_id == again.personal_id == "001190791514"
    assert [p.name for p in cache.path.parent.iterdir()] == [cache.path.name]  # no temp file


def test_refresh_fetches_again(tmp_path: Path) -> None:
    signer = Signer("k1")
    fetch = Fetcher(signer)
    cache = KeyCache(tmp_path / "keys.json")
    verify_with_cache(signer.issue(), cache, fetch)
    verify_with_cache(signer.issue(), cache, fetch, refresh=True)
    assert fetch.calls == 2


def test_an_unknown_key_id_fetches_once_more(tmp_path: Path) -> None:
    old, new = Signer("k1"), Signer("k2")
    fetch = Fetcher(old)
    cache = KeyCache(tmp_path / "keys.json")
    verify_with_cache(old.issue(), cache, fetch)
    fetch.signers.append(new)  # rotated after the cache was filled
    assert verify_with_cache(new.issue(), cache, fetch).key_id == "k2"
    assert fetch.calls == 2
    assert "k2" in KeySet.from_json(cache.path.read_text())

    stranger = Signer("k9")  # not published at all: one fetch, then refused
    with pytest.raises(OfflineVerificationError) as refused:
        verify_with_cache(stranger.issue(), cache, fetch)
    assert refused.value.reason == "SHARE_KEY_UNKNOWN"
    assert fetch.calls == 3


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (lambda s: s.issue(age=datetime.timedelta(minutes=10)), "SHARE_EXPIRED"),
        (lambda s: s.issue()[:-4], "SHARE_PAYLOAD_MALFORMED"),
        (lambda s: "eid1.abc.def", "SHARE_ONLINE_ONLY"),
    ],
)
def test_other_refusals_fetch_nothing(
    tmp_path: Path, payload: Callable[[Signer], str], reason: str
) -> None:
    signer = Signer("k1")
    fetch = Fetcher(signer)
    cache = KeyCache(tmp_path / "keys.json")
    cache.save(fetch())
    with pytest.raises(OfflineVerificationError) as refused:
        verify_with_cache(payload(signer), cache, fetch)
    assert refused.value.reason == reason
    assert fetch.calls == 1  # the save above only


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("eid1.abc.def", "SHARE_ONLINE_ONLY"),
        ("HC1:NCFOXN%TS3DH3ZSUZK", "SHARE_PAYLOAD_PREFIX_UNKNOWN"),
        ("V7F" + "0" * 5000, "SHARE_PAYLOAD_TOO_LARGE"),
    ],
)
def test_payloads_no_key_could_save_fetch_no_keys(
    tmp_path: Path, payload: str, reason: str
) -> None:
    fetch = Fetcher(Signer("k1"))
    cache = KeyCache(tmp_path / "keys.json")
    with pytest.raises(OfflineVerificationError) as refused:
        verify_with_cache(payload, cache, fetch)
    assert refused.value.reason == reason
    assert fetch.calls == 0 and not cache.path.exists()


def test_a_damaged_cache_file_is_fetched_again(tmp_path: Path) -> None:
    signer = Signer("k1")
    fetch = Fetcher(signer)
    cache = KeyCache(tmp_path / "keys.json")
    cache.path.write_text("{not json")
    verify_with_cache(signer.issue(), cache, fetch)
    assert fetch.calls == 1
    assert "k1" in KeySet.from_json(cache.path.read_text())


def test_a_cache_file_nested_too_deep_is_fetched_again(tmp_path: Path) -> None:
    # json.loads raises RecursionError, not ValueError, on deep nesting.
    signer = Signer("k1")
    fetch = Fetcher(signer)
    cache = KeyCache(tmp_path / "keys.json")
    cache.path.write_text("[" * 100_000)
    verify_with_cache(signer.issue(), cache, fetch)
    assert fetch.calls == 1
    assert "k1" in KeySet.from_json(cache.path.read_text())


@pytest.mark.parametrize("jwks", [False, True])
def test_an_explicit_keys_file_in_either_format(tmp_path: Path, jwks: bool) -> None:
    signer = Signer("k1")
    path = tmp_path / "keys.json"
    write_keys_file(path, KeySet([VerificationKey("k1", signer.public)]), jwks=jwks)
    document = json.loads(path.read_text())
    assert ("version" in document) is not jwks
    assert "kty" in document["keys"][0] or not jwks
    keys = read_keys_file(path)
    assert OfflineChecks().verify(signer.issue(), keys).gender == "female"


def test_a_file_of_neither_format_is_refused_without_its_contents(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text('{"something": "secret-looking"}')
    with pytest.raises(ValueError, match="not an eid keys file nor a JWKS") as caught:
        read_keys_file(path)
    assert "secret-looking" not in str(caught.value)


@pytest.mark.parametrize("content", [b"[" * 100_000, b"\xff\xfe{}"])
def test_a_keys_file_nested_too_deep_or_not_utf8_is_refused_naming_it(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "keys.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"keys\.json: not an eid keys file nor a JWKS"):
        read_keys_file(path)


def test_write_replaces_the_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "new folder" / "keys.json"
    write_keys_file(path, KeySet([VerificationKey("k1", Signer("k1").public)]))
    write_keys_file(path, KeySet([VerificationKey("k2", Signer("k2").public)]))
    assert list(read_keys_file(path)) == ["k2"]
    assert [p.name for p in path.parent.iterdir()] == ["keys.json"]


def test_cache_locations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_cache_dir() == tmp_path / "cache" / "eid"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "eid"
    base = tmp_path / "c"
    assert cache_file_for("[::1]:50051", base) == base / "keys-1_50051.json"
    assert cache_file_for("../../etc/passwd:1", base).parent == base  # never outside


def test_client_verify_offline_fetches_once_then_works_without_the_server(
    tmp_path: Path,
) -> None:
    signer = Signer("k1")
    fake = FakeEid(GetVerificationKeys=published(signer.listed()))
    with fake.serve() as target:
        with EidClient(target) as client:
            credential = client.verify_offline(signer.issue())
            client.verify_offline(signer.issue())
        assert credential.birth_date == "1990-05-17"
        assert len(fake.calls) == 1
        assert client.keys_cache.path == cache_file_for(target)
    # The server is gone: a new client verifies from the cache file.
    with EidClient(target, timeout=1) as offline:
        assert offline.verify_offline(signer.issue()).share_id == "shr_" + "0a" * 10


def test_client_verify_offline_with_given_keys_sends_nothing() -> None:
    signer = Signer("k1")
    keys = KeySet([VerificationKey("k1", signer.public)])
    bound = signer.issue(audience="rp_1")
    with EidClient("127.0.0.1:1", timeout=1) as client:
        assert client.verify_offline(bound, keys=keys, audience="rp_1").audience == "rp_1"
        with pytest.raises(OfflineVerificationError) as refused:
            client.verify_offline(bound, keys=keys, audience="rp_2")
    assert refused.value.reason == "SHARE_AUDIENCE_MISMATCH"
    assert not cache_file_for("127.0.0.1:1").exists()


async def test_async_client_verify_offline_and_keys(tmp_path: Path) -> None:
    old, new = Signer("k1"), Signer("k2")
    until = datetime.datetime.now(UTC) + datetime.timedelta(hours=1)
    fake = FakeEid(
        GetVerificationKeys=published(
            old.listed(pb.VERIFICATION_KEY_STATE_RETIRED, not_after=_ts(until)), new.listed()
        )
    )
    cache = KeyCache(tmp_path / "async-keys.json")
    with fake.serve() as target:
        async with AsyncEidClient(target) as client:
            keys = await client.verification_keys()
            assert keys["k1"].not_after is not None and keys["k2"].not_after is None
            assert (await client.verify_offline(old.issue(), cache=cache)).key_id == "k1"
            assert (await client.verify_offline(new.issue(), cache=cache)).key_id == "k2"
            assert (await client.verify_offline(new.issue(), keys=keys)).key_id == "k2"
    assert len(fake.calls) == 2  # verification_keys(), then the cache filled once
    assert set(KeySet.from_json(cache.path.read_text())) == {"k1", "k2"}


def _ts(moment: datetime.datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


@pytest.mark.parametrize("planted", ["world-writable", "another-users", "a-link"])
def test_keys_another_user_could_have_planted_in_the_cache_are_not_believed(
    tmp_path: Path, planted: str
) -> None:
    """The cached keys decide which credentials are genuine. A forger who can
    write into the cache folder (a shared or world-writable XDG_CACHE_HOME)
    plants their own key under the real key id: before, the verifier believed
    the file and accepted the forged credential. Now such a file counts as no
    cache: the real keys are fetched, and the forgery is refused."""
    real, forger = Signer("k1"), Signer("k1")
    fetch = Fetcher(real)
    cache = KeyCache(tmp_path / "cache" / "keys.json")
    planted_keys = KeySet([VerificationKey("k1", forger.public)]).to_json()
    cache.path.parent.mkdir()
    if planted == "a-link":
        elsewhere = tmp_path / "elsewhere.json"
        elsewhere.write_text(planted_keys)
        cache.path.symlink_to(elsewhere)
    else:
        cache.path.write_text(planted_keys)
        if planted == "world-writable":
            cache.path.chmod(0o666)
        elif os.geteuid() == 0:
            os.chown(cache.path, 65534, 65534)  # nobody's
        else:
            pytest.skip("giving a file to another user needs root")
    with pytest.raises(OfflineVerificationError):
        verify_with_cache(forger.issue(), KeyCache(cache.path), fetch)
    assert fetch.calls == 1
    assert (
        verify_with_cache(real.issue(), KeyCache(cache.path), fetch).personal_id == "001190791514"
    )
