"""Template helpers about people and time: who did something (user id -> name), what the deployment lets the
current user do with alerts, and times in the hospital time zone (setting ``timezone``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Flask, g
from sqlalchemy import select

from areya.alerts.rules import NO_DISTRESS, RuleParams
from areya.db.models import User
from areya.webapp import fmt
from areya.webapp.services import db, services


def localtime(value: datetime | None, pattern: str = "%Y-%m-%d %H:%M:%S %Z") -> str:
    """Jinja filter: a stored (UTC) time as the hospital reads it, e.g. ``2026-07-01 13:00:00 BST``."""
    return fmt.local(value, services().settings.timezone, pattern)


def who(user_id: int | None) -> str:
    """The username behind an id (cached per request); "system" for none."""
    if user_id is None:
        return "system"
    names: dict[int, str] = g.setdefault("usernames", {})
    if user_id not in names:
        names[user_id] = db().scalar(select(User.username).where(User.id == user_id)) or f"user {user_id}"
    return names[user_id]


def install_people_helpers(app: Flask) -> None:
    app.jinja_env.filters["localtime"] = localtime
    app.jinja_env.filters["utc"] = localtime  # older templates' name: every displayed time is hospital time
    app.jinja_env.globals["who"] = who

    @app.context_processor
    def inject_policy() -> dict[str, Any]:
        settings = services().settings
        # how long "no distress seen" holds a patient's alerts back (the resolve card says so); "": no longer than
        # the ordinary cool-down.  The deployment's value: a ward or patient override may differ
        params = RuleParams.from_settings(settings)
        hold = params.cooldown_for(NO_DISTRESS)
        return {
            "alert_policy": services().alert_policy(),
            "hospital_tz": settings.timezone,
            "no_distress_hold": _hours(hold) if hold > params.cooldown_s else "",
        }


def _hours(seconds: int) -> str:
    """A cool-down as a nurse says it: "24 h", "4 h 30 min", "45 min"."""
    return f"{seconds // 3600} h" if seconds % 3600 == 0 and seconds >= 3600 else fmt.duration(seconds)
