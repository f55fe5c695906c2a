"""A foreigner's nationality in an offline credential: Claim 169 key 13
(ISO 3166-1 alpha-3), read back by our verifier and the reference decoder."""

from __future__ import annotations

import cbor2
import claim169  # type: ignore[import-untyped]
import pytest

from eid_client.offline import verify_offline
from tests.unit.test_offline_credential import DURING, KEYS, PUBLIC, issue, unwrap


def test_nationality_round_trips_under_claim_169_key_13() -> None:
    text = issue(nationality="KOR")
    credential = verify_offline(text, KEYS, now=DURING)
    assert credential.nationality == "KOR"
    assert cbor2.loads(unwrap(text).value[2])[169][13] == "KOR"
    decoded = claim169.decode_with_ed25519(text, PUBLIC, validate_timestamps=False)
    assert decoded.is_verified() and decoded.claim169.nationality == "KOR"


def test_a_credential_without_nationality_has_no_key_13() -> None:
    text = issue()
    assert 13 not in cbor2.loads(unwrap(text).value[2])[169]
    assert verify_offline(text, KEYS, now=DURING).nationality is None


@pytest.mark.parametrize("nationality", ["kor", "Korea", "KR", ""])
def test_issuing_refuses_a_nationality_that_is_not_iso_alpha_3(nationality: str) -> None:
    with pytest.raises(ValueError, match="nationality ISO 3166-1 alpha-3"):
        issue(nationality=nationality)
