"""The templates enrolled on level-2 accounts at a registration office: one
sealed blob per account (AES-GCM, bound to the account and the column), with
the key id it was sealed with. Nothing here is ever returned to a caller."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from eid_service.domain.biometric_match import DECOY_ENROLMENT, BiometricCapture
from eid_service.domain.biometrics import Finger, Template
from eid_service.store.repositories.base import Repository
from eid_service.store.sql import Sql

# One statement, either way: a re-enrolment replaces the templates.
_UPSERT = Sql(
    "INSERT INTO account_biometrics (account_id, templates_enc, key_id, enrolled_at)"
    " VALUES (:account_id, :templates, :key_id, :enrolled_at)"
    " ON CONFLICT (account_id) DO UPDATE SET templates_enc = excluded.templates_enc,"
    " key_id = excluded.key_id, enrolled_at = excluded.enrolled_at"
)
_BY_ACCOUNT = Sql("SELECT templates_enc FROM account_biometrics WHERE account_id = :account_id")


def _context(account_id: str) -> str:
    return f"account:{account_id}:biometrics"


def _b64(template: Template) -> str:
    return base64.b64encode(template.packed).decode("ascii")


def _record(capture: BiometricCapture) -> dict[str, Any]:
    return {
        "portrait": _b64(capture.portrait),
        "fingerprints": {
            str(finger.value): _b64(template)
            for finger, template in sorted(
                capture.fingerprints.items(), key=lambda item: item[0].value
            )
        },
    }


def _capture(record: dict[str, Any]) -> BiometricCapture:
    return BiometricCapture(
        portrait=Template(base64.b64decode(record["portrait"])),
        fingerprints={
            Finger(int(number)): Template(base64.b64decode(packed))
            for number, packed in record["fingerprints"].items()
        },
    )


# Opened and read when an account has no templates: as long as an enrolment.
_DECOY_RECORD = json.dumps(_record(DECOY_ENROLMENT))


class AccountBiometricsRepository(Repository):
    def enrol(self, account_id: str, capture: BiometricCapture, now: datetime) -> None:
        record = _record(capture)
        self._db.count(
            _UPSERT,
            {
                "account_id": account_id,
                "templates": self._p.seal(json.dumps(record), _context(account_id)),
                "key_id": self._p.cipher.active_key_id,
                "enrolled_at": self._t(now),
            },
        )

    def of_account(self, account_id: str) -> BiometricCapture | None:
        """The account's templates; None without any, after opening and reading
        a decoy of the same size: the time taken does not tell the two apart."""
        row = self._db.one(_BY_ACCOUNT, {"account_id": account_id})
        if row is None:
            _capture(json.loads(self._p.open_decoy(_DECOY_RECORD)))
            return None
        return _capture(json.loads(self._p.open(row[0], _context(account_id))))
