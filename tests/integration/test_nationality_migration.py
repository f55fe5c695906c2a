"""Migration 0017: parties granted the basic scope before foreigners could
register keep asking for SCOPE_BASIC, which now includes nationality."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import bindparam, text

from eid_service.store.database import create_engine
from eid_service.store.migrate import alembic_config
from eid_service.store.models import UTCDateTime

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def _scopes(url: str) -> dict[str, str]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT id, scopes FROM relying_parties")).all()
    finally:
        engine.dispose()
    return {r[0]: r[1] for r in rows}


def test_basic_parties_gain_nationality_and_lose_it_on_downgrade(database_url: str) -> None:
    cfg = alembic_config(database_url)
    command.downgrade(cfg, "0016")
    insert = text(
        "INSERT INTO relying_parties (id, name, api_key_digest, scopes, created_at)"
        " VALUES (:id, :id, :digest, :scopes, :at)"
    ).bindparams(bindparam("at", type_=UTCDateTime()))
    parties = {
        "rp_basic": "birth_date,full_name,gender,personal_id",
        "rp_name_only": "full_name",
        "rp_contact": "email,phone_number",
    }
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            for n, (party_id, scopes) in enumerate(parties.items()):
                digest = bytes([n]) * 32
                connection.execute(
                    insert, {"id": party_id, "digest": digest, "scopes": scopes, "at": T0}
                )
    finally:
        engine.dispose()

    command.upgrade(cfg, "head")
    assert _scopes(database_url) == {
        "rp_basic": "birth_date,full_name,gender,nationality,personal_id",
        "rp_name_only": "full_name",
        "rp_contact": "email,phone_number",
    }
    command.downgrade(cfg, "0016")
    assert _scopes(database_url) == parties
