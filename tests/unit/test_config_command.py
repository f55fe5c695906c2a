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
