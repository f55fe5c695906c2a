"""`eid-server config`: every effective setting, no secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from eid_service.cli import main

SECRETS = {
    "EID_DATABASE_URL": "postgresql+psycopg://eid:db-Pa55word@db.internal:5432/eid",
    "EID_SMTP_PASSWORD": "smtp-Pa55word",
    "EID_SMS_WEBHOOK_SECRET": "webhook-secret-0123456789",
    "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer otel-token",
}


def test_config_prints_the_effective_settings_with_secrets_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text('{"hmac_key": "key-file-contents"}', "utf-8")
    env = {
        **SECRETS,
        "EID_KEYS_FILE": str(keys),
        "EID_WORKERS": "3",
        "EID_ENV": "production",
        "EID_SMTP_HOST": "smtp.example.vn",
        "EID_SMTP_FROM": "no-reply@example.vn",
        "EID_SMTP_USERNAME": "relay",
        "EID_SMS_WEBHOOK_URL": "https://sms.example.vn/send",
        "OTEL_TRACES_EXPORTER": "otlp",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["config"]) == 0
    printed = capsys.readouterr().out
    lines = dict(line.split(" = ", 1) for line in printed.splitlines())
    assert lines["workers"] == "3"
    assert lines["production"] == "true" and lines["reflection"] == "false"
    assert lines["keys_file"] == str(keys)
    assert lines["database_url"] == "postgresql+psycopg://eid:********@db.internal:5432/eid"
    assert lines["smtp.username"] == "relay" and lines["smtp.password"] == "********"
    assert lines["sms_webhook.url"] == "https://sms.example.vn/send"
    assert lines["sms_webhook.secret"] == "********"
    assert lines["OTEL_TRACES_EXPORTER"] == "otlp"
    assert lines["OTEL_EXPORTER_OTLP_HEADERS"] == "********"
    for secret in ("Pa55word", "webhook-secret", "otel-token", "key-file-contents"):
        assert secret not in printed


def test_config_names_a_bad_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EID_GRACE_SECONDS", "-5")
    assert main(["config"]) == 2
    assert "EID_GRACE_SECONDS must be at least 0" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("variable", "value", "line"),
    [
        # libpq takes a password from the query string as readily as from the netloc.
        (
            "EID_DATABASE_URL",
            "postgresql://eid@db.internal:5432/eid?password=hunter2&sslmode=require",
            "database_url = postgresql://eid@db.internal:5432/eid"
            "?password=********&sslmode=********",
        ),
        # SQLCipher's key; the path keeps its four slashes (an absolute path).
        (
            "EID_DATABASE_URL",
            "sqlite:////srv/eid/eid.db?key=hunter2",
            "database_url = sqlite:////srv/eid/eid.db?key=********",
        ),
        # SMS gateways commonly take their key in the query string, named or bare.
        (
            "EID_SMS_WEBHOOK_URL",
            "https://sms.example.vn/send?api_key=hunter2",
            "sms_webhook.url = https://sms.example.vn/send?api_key=********",
        ),
        (
            "EID_SMS_WEBHOOK_URL",
            "https://sms.example.vn/send?hunter2",
            "sms_webhook.url = https://sms.example.vn/send?********",
        ),
        # A mistyped host: urlsplit refuses the URL, which was printed as typed.
        (
            "EID_DATABASE_URL",
            "postgresql://eid:hunter2@[db.internal/eid",
            "database_url = (a URL that cannot be parsed, masked)",
        ),
        # A password typed unencoded: urlsplit takes part of it for the host.
        (
            "EID_DATABASE_URL",
            "postgresql://eid:hunter2/x@db.internal/eid",
            "database_url = (a URL that cannot be parsed, masked)",
        ),
        (
            "EID_DATABASE_URL",
            "postgresql://eid:hunter2?x@db.internal/eid",
            "database_url = (a URL that cannot be parsed, masked)",
        ),
        # urlsplit drops the tab: the password is not found as typed.
        (
            "EID_DATABASE_URL",
            "postgresql://eid:hunter2\t@db.internal/eid?sslmode=require",
            "database_url = (a URL that cannot be parsed, masked)",
        ),
        # A gateway's token as the user name of its link (found in review).
        (
            "EID_SMS_WEBHOOK_URL",
            "https://hunter2@sms.example.vn/send",
            "sms_webhook.url = https://********@sms.example.vn/send",
        ),
        # Read by the telemetry set-up, not Settings, and printed as typed.
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "https://otel:hunter2@collector.internal:4318",
            "OTEL_EXPORTER_OTLP_ENDPOINT = https://otel:********@collector.internal:4318",
        ),
    ],
)
def test_config_masks_a_secret_anywhere_in_a_url(
    variable: str,
    value: str,
    line: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An operator pastes this output into a ticket: the secret never shows,
    the host and the parameters' names still do."""
    monkeypatch.setenv("EID_KEYS_FILE", str(tmp_path / "keys.json"))
    monkeypatch.setenv("EID_SMS_WEBHOOK_SECRET", SECRETS["EID_SMS_WEBHOOK_SECRET"])
    monkeypatch.setenv(variable, value)
    assert main(["config"]) == 0
    printed = capsys.readouterr().out
    assert "hunter2" not in printed
    assert line in printed.splitlines()


@pytest.mark.parametrize(
    ("variable", "url", "name"),
    [
        ("EID_DATABASE_URL", "postgresql://eid@db.internal:5432/eid", "database_url"),
        ("EID_DATABASE_URL", "sqlite:////srv/eid/eid.db", "database_url"),
        # An @ past the host, and no password in the host: nothing to hide.
        ("EID_SMS_WEBHOOK_URL", "https://sms.example.vn/to/eid@example.vn", "sms_webhook.url"),
    ],
)
def test_config_shows_a_url_without_secrets_as_it_is(
    variable: str,
    url: str,
    name: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("EID_SMS_WEBHOOK_SECRET", SECRETS["EID_SMS_WEBHOOK_SECRET"])
    monkeypatch.setenv(variable, url)
    assert main(["config"]) == 0
    assert f"{name} = {url}" in capsys.readouterr().out.splitlines()


def test_config_shows_a_value_that_is_not_utf_8(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bytes that are not UTF-8 reach Python as lone surrogates; printing one
    to a strict UTF-8 stdout (a UTF-8 terminal's, pytest's) ended the listing
    in a UnicodeEncodeError traceback. They are shown escaped."""
    monkeypatch.setenv("EID_KEYS_FILE", "/srv/eid/k\udcffeys.json")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector\udcfe.example/v1?k=s3cret")
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "keys_file = /srv/eid/k\\xffeys.json" in out
    assert "OTEL_EXPORTER_OTLP_ENDPOINT = https://collector\\xfe.example/v1?k=********" in out
    assert "s3cret" not in out
