"""``areya alerts ...`` and ``areya scheduler --once``: happy paths, and refusals (one stderr line, exit 1)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import pytest
import redis
from alerts_helpers import Hospital, next_message
from click.testing import CliRunner, Result
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from areya.alerts.lifecycle import open_alert
from areya.cli import cli
from areya.comms.redis_server import EmbeddedRedis
from areya.config import Settings
from areya.db.models import Alert, AlertSnooze, Camera, RuleOverride
from areya.db.types import utcnow
from areya.notify.events import CHANNEL

Invoke = Callable[..., Result]


@pytest.fixture
def run(alert_settings: Settings, alerts_redis: EmbeddedRedis, rclient: redis.Redis) -> Invoke:
    env = {
        "AREYA_DATA_DIR": str(alert_settings.data_dir),
        "AREYA_DATABASE_URL": alert_settings.database_url,
        "AREYA_REDIS_URL": alerts_redis.url,
    }

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), env=env)

    return invoke


@pytest.fixture
def alert_id(hospital: Hospital, session_factory: Callable[[], Session]) -> int:
    with session_factory() as s, s.begin():
        return open_alert(
            s,
            "negative_emotion",
            now=utcnow() - timedelta(minutes=1),
            patient_id=hospital.patients[0],
            ward_id=hospital.ward_id,
            evidence={"share": 0.85},
        ).id


def test_list_ack_resolve_show(run: Invoke, alert_id: int, rclient: redis.Redis) -> None:
    listed = run("alerts", "list", "--json")
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.output)
    assert (row["id"], row["patient"], row["state"], row["share"]) == (alert_id, "MRN-A1", "firing", 0.85)
    pubsub = rclient.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL)
    result = run("alerts", "ack", str(alert_id), "--note", "coming", "--user", "dr-a")
    assert result.exit_code == 0 and f"alert {alert_id} acknowledged" in result.output
    message = next_message(pubsub)
    pubsub.close()
    assert message is not None and json.loads(message["data"])["type"] == "alert.acknowledged"
    again = run("alerts", "ack", str(alert_id))
    assert again.exit_code == 1 and again.stderr.strip() == f"error: alert {alert_id} is acknowledged, not firing"
    assert run("alerts", "resolve", str(alert_id)).exit_code == 2  # --note is required
    nurse = run("alerts", "resolve", str(alert_id), "--note", "ok", "--user", "nurse-a")
    assert nurse.exit_code == 1 and "nurse may not resolve" in nurse.stderr
    assert run("alerts", "resolve", str(alert_id), "--note", "calm now", "--user", "dr-a").exit_code == 0
    shown = run("alerts", "show", str(alert_id), "--json")
    data = json.loads(shown.output)
    assert [(h["from"], h["to"], h["note"]) for h in data["history"]] == [
        (None, "firing", None),
        ("firing", "acknowledged", "coming"),
        ("acknowledged", "resolved", "calm now"),
    ]
    assert json.loads(run("alerts", "list", "--json").output) == []
    assert len(json.loads(run("alerts", "list", "--all", "--json").output)) == 1
    missing = run("alerts", "show", "999")
    assert missing.exit_code == 1 and missing.stderr.strip() == "error: unknown alert 999"


def test_snooze_and_overrides(run: Invoke, hospital: Hospital, session_factory: Callable[[], Session]) -> None:
    ok = run("alerts", "snooze", "MRN-A1", "--until", "2h", "--reason", "post-op, expected", "--user", "nurse-a")
    assert ok.exit_code == 0, ok.output
    for args in (("--until", "yesterday"), ("--until", "2026-01-01T00:00:00"), ("--until", "9d")):
        bad = run("alerts", "snooze", "MRN-A1", *args, "--reason", "r")
        assert bad.exit_code == 1 and bad.stderr.startswith("error: ") and len(bad.stderr.strip().splitlines()) == 1
    with session_factory() as s:
        (snooze,) = s.scalars(select(AlertSnooze)).all()
        assert timedelta(hours=1, minutes=59) < snooze.until - utcnow() <= timedelta(hours=2)
    assert run("alerts", "unsnooze", "MRN-A1").output.startswith("1 snooze(s) ended")

    assert (
        run("alerts", "override", "set", "--ward", "Ward A", "negative_open_share=0.8", "negative_min_obs=10").exit_code
        == 0
    )
    assert run("alerts", "override", "set", "--patient", "MRN-A2", "negative_window_s=300").exit_code == 0
    for args in (
        ("--ward", "Ward A", "web_port=1"),
        ("--ward", "Ward A", "negative_close_share=0.9"),
        ("--ward", "Nowhere", "negative_min_obs=5"),
        ("negative_min_obs=5",),
        ("--ward", "Ward A", "negative_min_obs"),
    ):
        bad = run("alerts", "override", "set", *args)
        assert bad.exit_code == 1 and bad.stderr.startswith("error: "), (args, bad.output)
    rows = json.loads(run("alerts", "override", "list", "--json").output)
    assert [(r["ward_id"], r["patient_id"], json.loads(r["settings"])) for r in rows] == [
        (hospital.ward_id, None, {"negative_min_obs": 10, "negative_open_share": 0.8}),
        (None, hospital.patients[1], {"negative_window_s": 300}),
    ]
    assert run("alerts", "override", "clear", "--ward", "Ward A", "negative_min_obs").exit_code == 0
    with session_factory() as s:
        ward_row = s.scalar(select(RuleOverride).where(RuleOverride.ward_id == hospital.ward_id))
        assert ward_row.settings == {"negative_open_share": 0.8}
    assert run("alerts", "override", "clear", "--patient", "MRN-A2").exit_code == 0
    assert len(json.loads(run("alerts", "override", "list", "--json").output)) == 1


def test_scheduler_once(
    run: Invoke, hospital: Hospital, observe: Callable[..., None], session_factory: Callable[[], Session]
) -> None:
    now = utcnow()
    observe(1, now - timedelta(seconds=250), 100, label="angry", every_s=2.5)  # >= negative_min_obs in the window
    with session_factory() as s, s.begin():
        s.execute(update(Camera).values(enabled=False))
    result = run("scheduler", "--once", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["opened"] == 1 and summary["patients"] == 4
    with session_factory() as s:
        (alert,) = s.scalars(select(Alert)).all()
        assert alert.patient_id == hospital.patients[1]
    assert run("alerts", "failures", "--json").output.strip() == "[]"
    assert "0 observation(s) rolled up" in run("alerts", "rollup").output


def test_resolve_offers_the_findings_the_database_accepts() -> None:
    from areya.cli.scheduler import alerts_resolve
    from areya.db.models import FINDINGS

    [option] = [p for p in alerts_resolve.params if p.name == "finding"]
    assert tuple(option.type.choices) == FINDINGS
