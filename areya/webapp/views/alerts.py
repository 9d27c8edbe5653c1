"""Doctor alert inbox: open alerts by priority and age with their evidence; acknowledge, resolve, snooze; history."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, g, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from areya.db.models import FINDINGS, Alert
from areya.errors import AdminError, Conflict, NotFound
from areya.webapp import alert_actions
from areya.webapp.access import require_alert, require_alert_action
from areya.webapp.alert_cards import load_cards
from areya.webapp.forms import MAX_TEXT, Form
from areya.webapp.people import localtime, who
from areya.webapp.security import CLINICAL, roles
from areya.webapp.services import audit, db, user_ward_ids

bp = Blueprint("alerts", __name__, url_prefix="/alerts")
SNOOZERS = ("nurse", "doctor")
HISTORY_PAGE = 50


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


def _error_status(exc: AdminError) -> int:
    name = type(exc).__name__
    if name == "Forbidden":
        return 403
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    return 400


def render_inbox(
    errors: dict[int, dict[str, str]] | None = None, values: dict[str, Any] | None = None, status: int = 200
) -> tuple[str, int]:
    admin = g.user.role == "admin"  # technical alerts go to admins first
    cards = load_cards(db(), user_ward_ids(), include_system=admin, open_only=True, technical_first=admin)
    shown = sorted({c.alert.patient_id for c in cards if c.alert.patient_id})
    audit("alerts.view", patient_ids=shown, detail={"alerts": [c.alert.id for c in cards], "patients": shown})
    return render_template(
        "alerts.html",
        cards=cards,
        errors=errors or {},
        values=values or {},
        snooze_choices=alert_actions.SNOOZE_CHOICES_MIN,
    ), status


@bp.route("")
@roles(*CLINICAL)
def inbox() -> tuple[str, int]:
    return render_inbox()


@bp.route("/history")
@roles(*CLINICAL)
def history() -> str:
    page = request.args.get("page", "1")
    page_no = int(page) if page.isascii() and page.isdigit() and 0 < int(page) < 100_000 else 1
    cards = load_cards(
        db(),
        user_ward_ids(),
        include_system=g.user.role == "admin",
        open_only=False,
        limit=HISTORY_PAGE + 1,
        offset=(page_no - 1) * HISTORY_PAGE,
        with_events=True,
    )
    more = len(cards) > HISTORY_PAGE
    cards = cards[:HISTORY_PAGE]
    shown = sorted({c.alert.patient_id for c in cards if c.alert.patient_id})
    audit(
        "alerts.history",
        patient_ids=shown,
        detail={"page": page_no, "alerts": [c.alert.id for c in cards], "patients": shown},
    )
    return render_template("alert_history.html", cards=cards, page=page_no, more=more)


@bp.route("/<int:alert_id>")
@roles(*CLINICAL)
def detail(alert_id: int) -> str:
    alert = require_alert(alert_id)
    card = load_cards(
        db(),
        user_ward_ids(),
        include_system=g.user.role == "admin",
        open_only=False,
        alert_ids=[alert.id],
        with_events=True,
    )
    if not card:
        abort(404)
    audit("alert.view", patient_id=alert.patient_id, target=f"alert:{alert.id}")
    return render_template(
        "alert_detail.html", card=card[0], snooze_choices=alert_actions.SNOOZE_CHOICES_MIN, errors={}, values={}
    )


def _done(alert_id: int, message: str, *, already: bool = False) -> Response:
    if _wants_json():
        return jsonify({"ok": True, "alert_id": alert_id, "message": message, "already": already})
    flash(message, "info" if already else "success")
    target = request.form.get("back") or ""
    if target == "detail":
        return redirect(url_for("alerts.detail", alert_id=alert_id))
    return redirect(url_for("alerts.inbox"))


def _already(alert_id: int, action: str) -> str | None:
    """A double submit (a second click, a second tab, a colleague first): what already happened, or None when
    the alert is not in the state the action leads to."""
    db().rollback()
    alert = db().get(Alert, alert_id)
    if alert is None:
        return None
    if action == "acknowledge" and alert.state == "acknowledged" and alert.acknowledged_at is not None:
        by, at, done = alert.acknowledged_by, alert.acknowledged_at, "acknowledged"
    elif alert.state == "resolved" and alert.resolved_at is not None:
        by, at, done = alert.resolved_by, alert.resolved_at, "resolved"
    else:
        return None
    return f"Alert {alert_id} was already {done} by {who(by)} at {localtime(at, '%H:%M')}: nothing changed."


def _failed(alert_id: int, field: str, message: str, status: int, form: Form) -> Response | tuple[str, int]:
    db().rollback()
    if _wants_json():
        response = jsonify({"ok": False, "alert_id": alert_id, "field": field, "error": message})
        response.status_code = status
        return response
    if status in (403, 404):
        abort(status, description=message)
    values = {f"{alert_id}:{k}": v for k, v in form.data.items() if k != "csrf_token"}
    return render_inbox({alert_id: {field: message}}, values, status)


@bp.route("/<int:alert_id>/acknowledge", methods=["POST"])
@roles(*CLINICAL)  # who exactly: the deployment's policy (acknowledge_roles), checked by the lifecycle
def acknowledge(alert_id: int) -> Response | tuple[str, int]:
    require_alert_action(alert_id, "acknowledge")
    form = Form(request.form)
    note = form.text("note", "note", required=False, max_len=MAX_TEXT)
    if not form.ok:
        return _failed(alert_id, "note", form.errors["note"], 400, form)
    try:
        alert_actions.acknowledge(alert_id, note or None)
    except Conflict as exc:
        done = _already(alert_id, "acknowledge")
        return _done(alert_id, done, already=True) if done else _failed(alert_id, "note", str(exc), 409, form)
    except AdminError as exc:
        return _failed(alert_id, "note", str(exc), _error_status(exc), form)
    return _done(alert_id, f"Alert {alert_id} acknowledged.")


@bp.route("/<int:alert_id>/resolve", methods=["POST"])
@roles(*CLINICAL)  # resolve_roles, checked by the lifecycle
def resolve(alert_id: int) -> Response | tuple[str, int]:
    require_alert_action(alert_id, "resolve")
    form = Form(request.form)
    note = form.text("note", "a note saying how it was resolved", max_len=MAX_TEXT)
    finding = form.choice("finding", "finding", FINDINGS, required=False) or None
    if not form.ok:
        field = "note" if "note" in form.errors else "finding"
        return _failed(alert_id, field, form.errors[field], 400, form)
    try:
        alert_actions.resolve(alert_id, note, finding)
    except Conflict as exc:
        done = _already(alert_id, "resolve")
        return _done(alert_id, done, already=True) if done else _failed(alert_id, "note", str(exc), 409, form)
    except AdminError as exc:
        return _failed(alert_id, "note", str(exc), _error_status(exc), form)
    return _done(alert_id, f"Alert {alert_id} resolved.")


@bp.route("/<int:alert_id>/snooze", methods=["POST"])
@roles(*SNOOZERS)
def snooze(alert_id: int) -> Response | tuple[str, int]:
    alert = require_alert(alert_id)
    form = Form(request.form)
    reason = form.text("reason", "reason", max_len=MAX_TEXT)
    minutes = form.integer("minutes", "snooze duration", lo=1, hi=7 * 24 * 60)
    if alert.patient_id is None:
        form.error("reason", "only patient alerts can be snoozed")
    if not form.ok:
        field = next(iter(form.errors))
        return _failed(alert_id, field, form.errors[field], 400, form)
    try:
        alert_actions.snooze(alert.patient_id, int(minutes or 0), reason)  # type: ignore[arg-type]
    except AdminError as exc:
        return _failed(alert_id, "reason", str(exc), _error_status(exc), form)
    return _done(alert_id, f"Alerts for this patient snoozed for {minutes} min.")
