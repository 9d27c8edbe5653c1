"""``areya scheduler`` (the alert rules, leader-locked) and ``areya alerts ...`` (operator commands).

Each ``alerts`` command is one transaction; refused -> one line on stderr, exit 1, nothing changed.  After the
commit the transition is announced like the web app's (pub/sub event, webhooks, e-mail) when Redis is reachable.
"""

from __future__ import annotations

import json
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from areya.cli.context import get_context
from areya.cli.output import emit, json_option

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from areya.audit import Actor

_DURATION = re.compile(r"(\d+)\s*([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


# --------------------------------------------------------------------------- scheduler


@click.command("scheduler")
@click.option("--once", is_flag=True, help="Run one tick (if this instance gets the leader lock) and exit.")
@json_option
def scheduler(once: bool, as_json: bool) -> None:
    """Evaluate alert rules every scheduler_tick_s (only the Redis lock holder acts; others stand by)."""
    from areya.comms.redis_server import stop_owned_servers
    from areya.logsetup import setup_logging

    settings = get_context().settings
    setup_logging(settings.log_level)  # APScheduler's line per tick, Alembic: only at DEBUG
    try:
        _run_scheduler(settings, once, as_json)
    finally:
        stop_owned_servers()  # an embedded Redis this process had to start


def _run_scheduler(settings: Any, once: bool, as_json: bool) -> None:
    from areya.alerts.scheduler import AlertScheduler

    sched = AlertScheduler(settings, engine=get_context().engine)
    if once:
        try:
            report = sched.tick()
            sched.notifier.flush()  # one outbox pass: what is due now is sent before exiting
        finally:
            sched.stop()
        if report is None:
            click.echo(f"standby: another scheduler holds the lock ({sched.lock.holder()})")
            return
        summary = report.summary()
        click.echo(json.dumps(summary) if as_json else " ".join(f"{k}={v}" for k, v in summary.items()))
        return
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    sched.start()
    click.echo(f"scheduler {sched.owner}: tick every {settings.scheduler_tick_s:g}s (Ctrl-C to stop)")
    try:
        while not stop.wait(1.0):
            pass
    finally:
        sched.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo("scheduler stopped")


# --------------------------------------------------------------------------- alerts


@contextmanager
def _transaction(username: str | None = None) -> Iterator[tuple[Session, Actor]]:
    """One transaction; on commit, announce its alert notices."""
    from areya.admin.refs import get_user
    from areya.alerts.lifecycle import take_notices
    from areya.audit import Actor
    from areya.db.engine import session_scope

    ctx = get_context()
    factory = ctx.session_factory()
    with session_scope(factory, write=True) as session:  # waits its turn while the pipeline writes
        actor = Actor.cli()
        if username:
            user = get_user(session, username)
            actor = Actor(user.id, f"cli:{user.username}")
        yield session, actor
    _announce(take_notices(session), factory)


def _announce(notices: list[Any], factory: Any) -> None:
    if not notices:
        return
    import redis

    from areya.comms.redis_server import RedisServerError, connect
    from areya.notify.dispatch import Notifier

    settings = get_context().settings
    client: redis.Redis | None
    try:
        client = connect(settings, start_embedded=False, socket_timeout=5)
        client.ping()
    except (RedisServerError, redis.RedisError, OSError) as exc:  # committed anyway: shown on the next reload
        click.echo(f"warning: alert event not published (redis unavailable: {exc})", err=True)
        client = None
    Notifier(settings, redis_client=client, session_factory=factory, background=False).notify(notices)


def _policy() -> Any:
    from areya.alerts.lifecycle import AlertPolicy

    return AlertPolicy.from_settings(get_context().settings)


def _user_option(func: Any) -> Any:
    return click.option("--user", "username", help="Act as this dashboard user (role and ward checked).")(func)


def parse_until(value: str, now: datetime) -> datetime:
    """``30m``, ``2h``, ``1d``, ``1h30m`` from now, or an ISO time with a timezone."""
    text = value.strip().lower()
    parts = _DURATION.findall(text)
    if parts and _DURATION.sub("", text).strip() == "":
        return now + timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in parts))
    from areya.errors import Invalid

    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Invalid(f"--until {value!r}: use a duration like 30m, 2h, 1d or an ISO time with a timezone") from None
    if at.tzinfo is None:
        raise Invalid(f"--until {value!r}: the time needs a timezone (e.g. +00:00)")
    return at


@click.group("alerts")
def alerts() -> None:
    """Attention alerts: list, show, acknowledge, resolve, snooze patients, rule overrides."""


@alerts.command("list")
@click.option("--ward", help="Only this ward.")
@click.option("--all", "show_all", is_flag=True, help="Include resolved alerts.")
@click.option("--kind", type=click.Choice(["negative_emotion", "camera_offline", "pipeline_stalled"]))
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@json_option
def alerts_list(ward: str | None, show_all: bool, kind: str | None, limit: int, as_json: bool) -> None:
    """List alerts, newest first (open ones unless --all)."""
    from areya.admin.refs import get_ward
    from areya.alerts.lifecycle import list_alerts
    from areya.audit import record
    from areya.db.models import Patient

    with _transaction() as (session, actor):
        ward_id = get_ward(session, ward).id if ward else None
        rows_ = list_alerts(
            session, ward_id=ward_id, open_only=not show_all, kinds=(kind,) if kind else None, limit=limit
        )
        mrns = {a.patient_id: session.get(Patient, a.patient_id).mrn for a in rows_ if a.patient_id is not None}
        rows = [
            (
                a.id,
                a.kind,
                a.state,
                a.severity,
                a.ward_id,
                mrns.get(a.patient_id),
                a.camera_id,
                a.opened_at,
                (a.evidence or {}).get("share"),
            )
            for a in rows_
        ]
        record(session, actor, "alert.list", target="alerts", detail={"count": len(rows), "ward": ward})
    emit(["id", "kind", "state", "severity", "ward_id", "patient", "camera_id", "opened_at", "share"], rows, as_json)


@alerts.command("show")
@click.argument("alert_id", type=int)
@json_option
def alerts_show(alert_id: int, as_json: bool) -> None:
    """One alert with its evidence and its history."""
    from areya.alerts.lifecycle import alert_history, get_alert
    from areya.audit import record

    with _transaction() as (session, actor):
        alert = get_alert(session, alert_id)
        history = alert_history(session, alert_id)
        record(session, actor, "alert.view", patient_id=alert.patient_id, target=f"alert:{alert.id}")
        data = {
            "id": alert.id,
            "kind": alert.kind,
            "state": alert.state,
            "severity": alert.severity,
            "escalation_level": alert.escalation_level,
            "ward_id": alert.ward_id,
            "patient_id": alert.patient_id,
            "camera_id": alert.camera_id,
            "opened_at": alert.opened_at.isoformat(),
            "resolution": alert.resolution,
            "note": alert.note,
            "evidence": alert.evidence,
            "history": [
                {"at": e.at.isoformat(), "from": e.from_state, "to": e.to_state, "user_id": e.user_id, "note": e.note}
                for e in history
            ],
        }
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for key in (
        "id",
        "kind",
        "state",
        "severity",
        "escalation_level",
        "ward_id",
        "patient_id",
        "camera_id",
        "opened_at",
        "resolution",
        "note",
    ):
        click.echo(f"{key:17} {data[key] if data[key] is not None else '-'}")
    click.echo(f"{'evidence':17} {json.dumps(data['evidence'])}")
    click.echo("history:")
    for e in data["history"]:
        who = e["user_id"] or "-"
        click.echo(f"  {e['at']}  {e['from'] or '-':>12} -> {e['to']:<12} user={who}  {e['note'] or ''}")


@alerts.command("ack")
@click.argument("alert_id", type=int)
@click.option("--note", help="Optional note.")
@_user_option
def alerts_ack(alert_id: int, note: str | None, username: str | None) -> None:
    """Acknowledge a firing alert (stops its escalation)."""
    from areya.alerts.lifecycle import acknowledge_alert

    with _transaction(username) as (session, actor):
        alert = acknowledge_alert(session, alert_id, actor=actor, note=note, policy=_policy())
    click.echo(f"alert {alert.id} acknowledged")


@alerts.command("resolve")
@click.argument("alert_id", type=int)
@click.option("--note", required=True, help="Why it is resolved (required).")
@click.option(
    "--finding",
    type=click.Choice(["distress_seen", "no_distress_seen"]),
    default=None,
    help="What was found at the bedside (patient alerts; after no_distress_seen the rule waits longer).",
)
@_user_option
def alerts_resolve(alert_id: int, note: str, finding: str | None, username: str | None) -> None:
    """Resolve an open alert manually."""
    from areya.alerts.lifecycle import resolve_alert

    with _transaction(username) as (session, actor):
        alert = resolve_alert(session, alert_id, actor=actor, note=note, policy=_policy(), finding=finding)
    click.echo(f"alert {alert.id} resolved")


@alerts.command("snooze")
@click.argument("mrn")
@click.option("--until", "until_text", required=True, help="Duration (30m, 2h, 1d) or ISO time with timezone.")
@click.option("--reason", required=True, help="Why (required).")
@_user_option
def alerts_snooze(mrn: str, until_text: str, reason: str, username: str | None) -> None:
    """No new negative-emotion alerts (nor escalations) for patient MRN until the given time."""
    from areya.admin.refs import get_patient
    from areya.alerts.lifecycle import snooze_patient
    from areya.db.types import utcnow

    now = utcnow()
    until = parse_until(until_text, now)
    with _transaction(username) as (session, actor):
        patient = get_patient(session, mrn)
        snooze = snooze_patient(session, patient.id, until=until, reason=reason, actor=actor, now=now)
    click.echo(f"patient {mrn} snoozed until {snooze.until.isoformat()}")


@alerts.command("unsnooze")
@click.argument("mrn")
@_user_option
def alerts_unsnooze(mrn: str, username: str | None) -> None:
    """End the patient's active snoozes now."""
    from areya.admin.refs import get_patient
    from areya.alerts.lifecycle import cancel_snoozes

    with _transaction(username) as (session, actor):
        count = cancel_snoozes(session, get_patient(session, mrn).id, actor=actor)
    click.echo(f"{count} snooze(s) ended for patient {mrn}")


@alerts.group("override")
def override() -> None:
    """Rule settings per ward or per patient (negative_window_s, negative_min_obs, negative_open_share, ...)."""


def _override_target(session: Session, ward: str | None, mrn: str | None) -> dict[str, int]:
    from areya.admin.refs import get_patient, get_ward
    from areya.errors import Invalid

    if (ward is None) == (mrn is None):
        raise Invalid("give exactly one of --ward or --patient")
    return {"ward_id": get_ward(session, ward).id} if ward else {"patient_id": get_patient(session, mrn or "").id}


@override.command("set")
@click.option("--ward")
@click.option("--patient", "mrn", help="Patient MRN.")
@click.argument("assignments", nargs=-1, required=True)
def override_set(ward: str | None, mrn: str | None, assignments: tuple[str, ...]) -> None:
    """Set KEY=VALUE rule settings for a ward or a patient."""
    from areya.alerts.overrides import set_rule_override
    from areya.alerts.rules import RuleParams
    from areya.errors import Invalid

    values: dict[str, str] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise Invalid(f"{item!r}: use KEY=VALUE")
        values[key.strip()] = value.strip()
    base = RuleParams.from_settings(get_context().settings)
    with _transaction() as (session, actor):
        row = set_rule_override(session, values, base=base, actor=actor, **_override_target(session, ward, mrn))
        settings = dict(row.settings)
    click.echo(f"override for {'ward ' + ward if ward else 'patient ' + (mrn or '')}: {json.dumps(settings)}")


@override.command("clear")
@click.option("--ward")
@click.option("--patient", "mrn", help="Patient MRN.")
@click.argument("keys", nargs=-1)
def override_clear(ward: str | None, mrn: str | None, keys: tuple[str, ...]) -> None:
    """Remove some KEYS (or all) of a ward's or patient's override."""
    from areya.alerts.overrides import clear_rule_override

    with _transaction() as (session, actor):
        count = clear_rule_override(
            session, keys=list(keys) or None, actor=actor, **_override_target(session, ward, mrn)
        )
    click.echo(f"{count} override(s) changed")


@override.command("list")
@json_option
def override_list(as_json: bool) -> None:
    """Every override."""
    from sqlalchemy import select

    from areya.db.models import RuleOverride

    with _transaction() as (session, _actor):
        rows = [
            (r.id, r.ward_id, r.patient_id, json.dumps(r.settings, sort_keys=True), r.updated_at)
            for r in session.scalars(select(RuleOverride).order_by(RuleOverride.id))
        ]
    emit(["id", "ward_id", "patient_id", "settings", "updated_at"], rows, as_json)


@alerts.command("failures")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@json_option
def alerts_failures(limit: int, as_json: bool) -> None:
    """Notifications (webhook, e-mail) that failed after their retries, newest first."""
    from sqlalchemy import select

    from areya.db.models import AuditEvent

    with _transaction() as (session, _actor):
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "notify.failed").order_by(AuditEvent.id.desc()).limit(limit)
        ).all()
        rows = [
            (
                e.at,
                (e.detail or {}).get("alert_id"),
                (e.detail or {}).get("event"),
                e.target,
                (e.detail or {}).get("attempts"),
                (e.detail or {}).get("error"),
            )
            for e in events
        ]
    emit(["at", "alert_id", "event", "target", "attempts", "error"], rows, as_json)


@alerts.command("outbox")
@click.option("--all", "show_all", is_flag=True, help="Every delivery, not only failed and retrying ones.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@json_option
def alerts_outbox(show_all: bool, limit: int, as_json: bool) -> None:
    """Webhook / e-mail deliveries in the outbox: failed and retrying ones (or --all), newest first."""
    from sqlalchemy import select

    from areya.db.models import NotificationOutbox
    from areya.notify.outbox import outbox_counts, problem_deliveries

    with _transaction() as (session, _actor):
        if show_all:
            rows_ = list(
                session.scalars(
                    select(NotificationOutbox)
                    .where(NotificationOutbox.channel != "event")
                    .order_by(NotificationOutbox.id.desc())
                    .limit(limit)
                )
            )
        else:
            rows_ = problem_deliveries(session, limit)
        counts = outbox_counts(session)
        rows = [
            (r.id, r.channel, r.event_type, r.alert_id, r.status, r.attempts, r.target, r.next_attempt_at, r.last_error)
            for r in rows_
        ]
    emit(
        ["id", "channel", "event", "alert_id", "status", "attempts", "target", "next_attempt_at", "last_error"],
        rows,
        as_json,
    )
    if not as_json:
        click.echo(" ".join(f"{k}={v}" for k, v in counts.items()), err=True)


@alerts.command("redeliver")
@click.argument("outbox_id", type=int)
def alerts_redeliver(outbox_id: int) -> None:
    """Queue a failed delivery again (the scheduler sends it)."""
    from areya.notify.outbox import redeliver

    with _transaction() as (session, _actor):
        row = redeliver(session, outbox_id)
        channel, target = row.channel, row.target
    click.echo(f"delivery {outbox_id} ({channel} to {target}) queued again")


@alerts.command("rollup")
@click.option("--max-batches", type=click.IntRange(1, 100_000), default=100, show_default=True)
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=5000, show_default=True)
def alerts_rollup(max_batches: int, batch_size: int) -> None:
    """Roll up observations older than retention_days into per-minute rows now (the scheduler does it too)."""
    from areya.alerts.retention import roll_up_observations
    from areya.db.types import utcnow

    ctx = get_context()
    report = roll_up_observations(
        ctx.session_factory(),
        now=utcnow(),
        retention_days=ctx.settings.retention_days,
        batch_size=batch_size,
        max_batches=max_batches,
    )
    click.echo(
        f"{report.observations} observation(s) rolled up in {report.batches} batch(es): "
        f"{report.minutes_created} minute row(s) created, {report.minutes_updated} merged"
        f"{'' if report.done else ' (more left: run again)'}"
    )
