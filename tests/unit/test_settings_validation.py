"""A bad setting stops the start with a message naming it; production mode."""

from __future__ import annotations

import pytest

from eid_service.config import Settings
from eid_service.event_loop import EventLoop
from eid_service.settings_values import SettingError


@pytest.mark.parametrize(
    ("env", "named", "says"),
    [
        ({"EID_WORKERS": "abc"}, "EID_WORKERS", "whole number"),
        ({"EID_WORKERS": "0"}, "EID_WORKERS", "at least 1"),
        ({"EID_GRACE_SECONDS": "-1"}, "EID_GRACE_SECONDS", "at least 0"),
        ({"EID_GRACE_SECONDS": "nan"}, "EID_GRACE_SECONDS", "finite"),
        ({"EID_PURGE_INTERVAL_SECONDS": "0"}, "EID_PURGE_INTERVAL_SECONDS", "more than 0"),
        ({"EID_LISTEN": "localhost"}, "EID_LISTEN", "host:port"),
        ({"EID_LISTEN": "0.0.0.0:99999"}, "EID_LISTEN", "host:port"),
        ({"EID_DATABASE_URL": "mysql://u:pw@db/eid"}, "EID_DATABASE_URL", "sqlite or postgresql"),
        ({"EID_DATABASE_URL": "not a url"}, "EID_DATABASE_URL", "not a database URL"),
        ({"EID_REFLECTION": "ture"}, "EID_REFLECTION", "true or false"),
        ({"EID_TRUSTED_PROXIES": "10.0.0.1,lb.internal"}, "EID_TRUSTED_PROXIES", "IP addresses"),
        ({"EID_LANGUAGE": "fr"}, "EID_LANGUAGE", "'vi' or 'en'"),
        ({"EID_SHARE_MAX_TTL_SECONDS": "1h"}, "EID_SHARE_MAX_TTL_SECONDS", "whole number"),
        ({"EID_SMTP_HOST": "h", "EID_SMTP_PORT": "x"}, "EID_SMTP_PORT", "whole number"),
        ({"EID_OUTBOX_CLAIM_SECONDS": "soon"}, "EID_OUTBOX_CLAIM_SECONDS", "a number"),
        ({"EID_ENV": "prod"}, "EID_ENV", "development or production"),
        ({"EID_EVENT_LOOP": "trio"}, "EID_EVENT_LOOP", "uvloop or asyncio"),
    ],
)
def test_a_bad_setting_is_named(env: dict[str, str], named: str, says: str) -> None:
    with pytest.raises(SettingError) as caught:
        Settings.from_env(env)
    assert caught.value.name == named
    assert str(caught.value).startswith(named)
    assert says in str(caught.value)


def test_a_bad_database_url_is_not_repeated() -> None:
    with pytest.raises(SettingError) as caught:
        Settings.from_env({"EID_DATABASE_URL": "postgres ql://eid:hunter2@db/eid"})
    assert "hunter2" not in str(caught.value)


def test_good_values_are_read() -> None:
    settings = Settings.from_env(
        {
            "EID_WORKERS": "3",
            "EID_GRACE_SECONDS": "0",
            "EID_LISTEN": "[::]:50051",
            "EID_DATABASE_URL": "postgresql+psycopg://eid@db:5432/eid",
            "EID_REFLECTION": "off",
            "EID_TRUSTED_PROXIES": "10.0.0.1, ::1",
            "EID_EVENT_LOOP": " AsyncIO ",
        }
    )
    assert (settings.workers, settings.grace_seconds, settings.reflection) == (3, 0.0, False)
    assert settings.event_loop is EventLoop.ASYNCIO
    assert Settings.from_env({}).event_loop is EventLoop.UVLOOP
    assert settings.trusted_proxies == frozenset({"10.0.0.1", "::1"})


def test_production_turns_reflection_off_unless_asked_for() -> None:
    assert Settings.from_env({}).reflection is True
    production = Settings.from_env({"EID_ENV": "production"})
    assert production.production is True and production.reflection is False
    asked = Settings.from_env({"EID_ENV": "production", "EID_REFLECTION": "true"})
    assert asked.reflection is True


@pytest.mark.parametrize("sender", ["EID_CONSOLE_SENDER", "EID_OUTBOX_FILE"])
def test_production_refuses_the_development_senders(sender: str) -> None:
    value = "true" if sender == "EID_CONSOLE_SENDER" else "var/outbox.log"
    with pytest.raises(SettingError) as caught:
        Settings.from_env({"EID_ENV": "production", sender: value})
    assert caught.value.name == sender
