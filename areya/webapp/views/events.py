"""Server-sent events: alert events relayed from Redis pub/sub ``areya:events`` (filtered to the user's wards) and,
for a ward view (``?ward=ID``) or the central station (``?station=1``: every ward the user covers), tile updates
found by polling the database every ~2 s (no dependency on the worker)."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, g, jsonify, render_template, request, stream_with_context

from areya.admin.sessions import session_user
from areya.alerts.rules import RuleParams
from areya.audit import record
from areya.db.engine import run_write
from areya.db.models import Alert
from areya.db.types import utcnow
from areya.webapp.access import parse_id, require_ward, ward_patient_ids
from areya.webapp.alert_cards import AlertCard, describe
from areya.webapp.fmt import bed_name
from areya.webapp.security import CLINICAL, roles
from areya.webapp.services import actor, audit, db, services, user_ward_ids
from areya.webapp.tiles import TileWatcher, load_tiles

bp = Blueprint("events", __name__)
log = logging.getLogger(__name__)
CHANNEL = "areya:events"
KEEPALIVE_S = 15.0
SESSION_CHECK_S = 2.0  # an ended session (logout, deactivation, password change) stops its live view this fast
RETRY_AFTER_S = 30  # a refused live view (429) may try again after this


def sse(event: str, data: dict[str, Any]) -> str:
    body = json.dumps(data, separators=(",", ":"), default=str)
    return f"event: {event}\ndata: {body}\n\n"


def _subscribe(client: Any) -> Any:
    if client is None:
        return None
    try:
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(CHANNEL)
        return pubsub
    except Exception as exc:  # noqa: BLE001 - no Redis: tiles still update by polling
        log.warning("live alert events unavailable: %s", exc)
        return None


def _decode(message: Any) -> dict[str, Any] | None:
    if not message or message.get("type") != "message":
        return None
    try:
        data = json.loads(message["data"])
    except (TypeError, ValueError):
        return None
    if not isinstance(data, dict) or not str(data.get("type", "")).startswith("alert."):
        return None
    return data


def banner(card: AlertCard, role: str, ack_roles: frozenset[str]) -> dict[str, Any]:
    """What a new alert's banner says: the patient and the bed (or the camera), the ward, the alert's title, and
    whether this user (``role``; ``ack_roles``: who may acknowledge patient alerts) may acknowledge it from the
    banner."""
    alert = card.alert
    allowed = ack_roles if card.is_patient_alert else frozenset({"nurse", "doctor", "admin"})
    return {
        "alert_id": alert.id,
        "title": card.title,
        "patient": card.patient.display_name if card.patient is not None else None,
        "bed": bed_name(card.bed_label) if card.bed_label else None,
        "ward": card.ward_name,
        "camera": card.camera_name,
        "technical": card.is_technical,
        "state": alert.state,
        "may_acknowledge": role in allowed and alert.state == "firing",
    }


@bp.route("/events")
@roles(*CLINICAL)
def stream() -> Response:
    ward_arg = request.args.get("ward", "")
    ward_id: int | None = None
    if ward_arg:
        wanted = parse_id(ward_arg)
        if wanted is None:
            return Response("ward must be a ward id\n", status=400, mimetype="text/plain")
        ward_id = require_ward(wanted).id
    ward_ids = set(user_ward_ids())
    station = request.args.get("station", "") == "1" and ward_id is None
    include_system = g.user.role == "admin" and ward_id is None
    svc = services()
    max_s = float(svc.options.get("sse_max_s", 300.0))
    poll_s = float(svc.options.get("sse_poll_s", 2.0))
    slot = svc.streams.acquire(g.user.id)
    if isinstance(slot, str):
        audit("events.refused", target=f"ward:{ward_id}" if ward_id else "alerts", detail={"reason": slot})
        refused = jsonify({"error": slot, "status": 429})
        refused.status_code = 429
        refused.headers["Retry-After"] = str(RETRY_AFTER_S)
        return refused
    stream_target = f"ward:{ward_id}" if ward_id else ("station" if station else "alerts")
    tile_wards = [ward_id] if ward_id is not None else (sorted(ward_ids) if station else [])
    # a ward view's stream shows the ward's patients: one row per patient (as the ward page), and one more row
    # for each patient it shows later for the first time (admitted or moved in, an alert card)
    shown: set[int] = {pid for w in tile_wards for pid in ward_patient_ids(db(), w)}
    try:
        audit("events.subscribe", target=stream_target, patient_ids=shown or None, detail={"patients": sorted(shown)})
    except BaseException:
        slot.release()
        raise
    who = actor()

    def audit_new(patient_ids: set[int | None], how: str) -> None:
        """An ``events.update`` row for each patient the stream shows for the first time (own transaction)."""
        new = sorted({pid for pid in patient_ids if pid is not None} - shown)
        if not new:
            return

        def write(session: Any) -> None:
            for pid in new:
                record(session, who, "events.update", patient_id=pid, target=stream_target, detail={"shown": how})

        run_write(svc.sessions, write)
        shown.update(new)

    def wanted(event: dict[str, Any]) -> bool:
        event_ward = event.get("ward_id")
        if ward_id is not None:
            return event_ward == ward_id
        return event_ward in ward_ids or (event_ward is None and include_system)

    def alert_payload(event: dict[str, Any]) -> dict[str, Any]:
        payload = dict(event)
        payload["html"] = ""
        alert_id = event.get("alert_id")
        if isinstance(alert_id, int) and event.get("type") != "alert.resolved":
            with svc.sessions() as session:
                alert = session.get(Alert, alert_id)
                if alert is not None:
                    cards = describe(session, [alert], with_events=False)
                    payload["html"] = render_template(
                        "_alert_card.html",
                        card=cards[0],
                        snooze_choices=(15, 30, 60, 120, 240, 480, 1440),
                        errors={},
                        values={},
                        now=utcnow(),
                    )
                    payload["banner"] = banner(cards[0], role, ack_roles)
        return payload

    session_id = g.get("session_id")
    user_id = g.user.id
    role = g.user.role
    ack_roles = svc.alert_policy().roles("acknowledge", "patient")

    def session_ended() -> bool:
        with svc.sessions() as session:
            user = session_user(session, session_id)
            return user is None or user.id != user_id

    def generate() -> Iterator[str]:
        pubsub = _subscribe(svc.redis)
        watchers = [TileWatcher(w) for w in tile_wards]
        started = time.monotonic()
        next_poll = started
        next_check = started + min(SESSION_CHECK_S, poll_s)
        last_sent = started
        yield "retry: 3000\n: connected\n\n"
        ready = False
        try:
            while time.monotonic() - started < max_s:
                now_m = time.monotonic()
                if now_m >= next_check:
                    next_check = now_m + min(SESSION_CHECK_S, poll_s)
                    if session_ended():
                        yield sse("logout", {"reason": "session ended"})
                        break
                if watchers and now_m >= next_poll:
                    next_poll = now_m + poll_s
                    tiles = []
                    with svc.sessions() as session:
                        now = utcnow()
                        for watcher in watchers:
                            changed = watcher.poll(session, svc.redis, now)
                            if changed:
                                tiles += load_tiles(
                                    session,
                                    watcher.ward_id,
                                    svc.redis,
                                    now,
                                    changed,
                                    params=RuleParams.from_settings(svc.settings),
                                    tz_name=svc.settings.timezone,
                                )
                    audit_new({tile.patient_id for tile in tiles}, "tile")
                    for tile in tiles:
                        html = render_template("_tile.html", tile=tile, now=now, compact=station)
                        yield sse("tile", {"bed_id": tile.bed_id, "html": html, "tile": tile.as_dict()})
                        last_sent = time.monotonic()
                if not ready:
                    ready = True
                    yield ": ready\n\n"  # baseline taken: changes from now on are sent
                wait = max(0.05, min(1.0, next_poll - time.monotonic())) if watchers else 1.0
                message = None
                if pubsub is not None:
                    try:
                        message = pubsub.get_message(timeout=wait)
                    except Exception as exc:  # noqa: BLE001 - Redis went away: keep polling tiles
                        log.warning("alert event subscription lost: %s", exc)
                        pubsub = None
                else:
                    time.sleep(wait)
                event = _decode(message)
                if event is not None and wanted(event):
                    payload = alert_payload(event)
                    if payload["html"]:  # the card names the patient
                        audit_new({event.get("patient_id")}, "alert")
                    yield sse("alert", payload)
                    last_sent = time.monotonic()
                    next_poll = time.monotonic()  # the tile's badge changes too
                if time.monotonic() - last_sent >= KEEPALIVE_S:
                    yield ": keep-alive\n\n"
                    last_sent = time.monotonic()
        finally:
            slot.release()
            if pubsub is not None:
                with contextlib.suppress(Exception):
                    pubsub.close()

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    response = Response(stream_with_context(generate()), mimetype="text/event-stream", headers=headers)
    response.call_on_close(slot.release)  # also when the client goes away before the stream started
    return response
