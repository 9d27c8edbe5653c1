"""Webhook URLs carry their receiver's token in the path or query (``https://hooks.example/services/T0/B0/XXXX``,
``...?token=...``): it is masked everywhere a URL is shown or stored for people - the outbox's target column,
/ops, ``areya alerts outbox``, the log, the audit log, ``areya config show`` - and the real URL is used only where
the delivery is sent (the security review found the tokens in all of these)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest
from alerts_helpers import T0, Hospital
from click.testing import CliRunner
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from areya.alerts import open_alert, take_notices
from areya.config import Settings, mask_url_secrets
from areya.db.models import AuditEvent, NotificationOutbox
from areya.notify.outbox import OutboxPump, fan_out

TOKEN = "xoxb-SECRET-TOKEN-4242"
URLS = (
    f"https://hooks.example/services/T0/B0/{TOKEN}",
    f"https://pager.example:8443/hook?token={TOKEN}",
    f"https://bot:{TOKEN}@chat.example/x",
)


@pytest.fixture
def hook_settings(alert_settings: Settings) -> Settings:
    return alert_settings.replace(webhook_urls=URLS, notify_max_attempts=1)


def _event(session_factory: Callable[[], Session], hospital: Hospital) -> None:
    with session_factory() as s, s.begin():
        open_alert(s, "negative_emotion", now=T0, patient_id=hospital.patients[0], ward_id=hospital.ward_id)
        take_notices(s)  # the outbox event is written by the transition itself


def test_mask_url_secrets() -> None:
    assert [mask_url_secrets(u) for u in URLS] == [
        "https://hooks.example/...",
        "https://pager.example:8443/...",
        "https://bot:***@chat.example/...",
    ]
    assert mask_url_secrets("https://hooks.example/...") == "https://hooks.example/..."  # idempotent
    assert mask_url_secrets("https://[::1]/x") == "https://[::1]/..."


def test_outbox_rows_logs_and_audit_hold_no_token(
    hook_settings: Settings,
    session_factory: Callable[[], Session],
    hospital: Hospital,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _event(session_factory, hospital)
    with session_factory() as s, s.begin():
        assert fan_out(s, hook_settings) == 1
    sent: list[str] = []

    class Refusing:
        def post_once(self, url: str, body: bytes, event_type: str, delivery_id: str) -> int:
            sent.append(url)
            raise RuntimeError("HTTP 500")

    pump = OutboxPump(hook_settings, session_factory)
    pump.webhook = Refusing()  # type: ignore[assignment]
    with caplog.at_level(logging.INFO):
        pump.run_once()
    assert sorted(sent) == sorted(URLS)  # the real URLs where they are sent ...
    with session_factory() as s:
        targets = list(s.scalars(select(NotificationOutbox.target).where(NotificationOutbox.channel == "webhook")))
        audit = [e.target or "" for e in s.scalars(select(AuditEvent).where(AuditEvent.action == "notify.failed"))]
        dumped = json.dumps([[str(v) for v in row] for row in s.execute(text("SELECT * FROM notification_outbox"))])
    assert sorted(targets) == sorted(mask_url_secrets(u) for u in URLS)  # ... and nowhere else
    assert len(audit) == 3 and not any(TOKEN in t for t in audit)
    assert TOKEN not in dumped and TOKEN not in caplog.text


def test_cli_outbox_and_config_show_hold_no_token(
    hook_settings: Settings, session_factory: Callable[[], Session], hospital: Hospital
) -> None:
    from areya.cli import cli

    _event(session_factory, hospital)
    with session_factory() as s, s.begin():
        fan_out(s, hook_settings)
    env = {
        "AREYA_DATA_DIR": str(hook_settings.data_dir),
        "AREYA_DATABASE_URL": hook_settings.database_url,
        "AREYA_WEBHOOK_URLS": ",".join(URLS[:2]),
    }
    runner = CliRunner()
    outbox = runner.invoke(cli, ["alerts", "outbox", "--all", "--json"], env=env)
    assert outbox.exit_code == 0, outbox.output
    assert "hooks.example/..." in outbox.output and TOKEN not in outbox.output
    shown = runner.invoke(cli, ["config", "show"], env=env)
    assert shown.exit_code == 0, shown.output
    assert "hooks.example/..." in shown.output and TOKEN not in shown.output


def test_the_migration_masks_what_older_versions_stored(alert_settings: Settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from areya.db.engine import create_db_engine
    from areya.db.migrate import upgrade

    settings = alert_settings.replace(database_url=f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(settings, "0011_adt_message_digest")
    engine = create_db_engine(settings)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO notification_outbox (idempotency_key, channel, event_type, payload, target, status, "
                "attempts, next_attempt_at, created_at) VALUES ('k1', 'webhook', 'alert.opened', '{}', :t, "
                "'failed', 1, '2026-12-01 00:00:00', '2026-12-01 00:00:00')"
            ),
            {"t": URLS[0]},
        )
        conn.execute(
            text("INSERT INTO audit_events (at, action, target, detail) VALUES (:at, :a, :t, '{}')"),
            {"at": "2026-12-01 00:00:00", "a": "notify.failed", "t": f"webhook:{URLS[1]}"},
        )
    upgrade(settings)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT target FROM notification_outbox")).scalar() == "https://hooks.example/..."
        assert (
            conn.execute(text("SELECT target FROM audit_events")).scalar() == "webhook:https://pager.example:8443/..."
        )
    engine.dispose()
