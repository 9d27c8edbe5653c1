"""Per-application services (engine, sessions, Redis, login limiter) and per-request helpers (db, user, audit)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import current_app, g
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from areya.audit import Actor, record
from areya.config import Settings
from areya.db.engine import begin_write, run_write
from areya.db.models import User, Ward

if TYPE_CHECKING:
    import redis

    from areya.webapp.live_limits import StreamSlots
    from areya.webapp.security import LoginLimiter

log = logging.getLogger(__name__)
EXTENSION = "areya"


@dataclass
class WebServices:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    redis: redis.Redis | None
    limiter: LoginLimiter
    streams: StreamSlots
    options: dict[str, Any] = field(default_factory=dict)
    _notifier: Any = None

    def alert_policy(self) -> Any:
        """Who may acknowledge / resolve patient alerts here (settings acknowledge_roles, resolve_roles)."""
        from areya.alerts.lifecycle import AlertPolicy

        return AlertPolicy.from_settings(self.settings)

    def notifier(self) -> Any:
        """The alert notifier, created on first use; None if unavailable.  Pub/sub only: webhooks and e-mail go
        through the outbox, which the scheduler's pump delivers."""
        if self._notifier is None:
            try:
                from areya.notify.dispatch import Notifier
            except ImportError:
                log.warning("areya.notify is not installed: alert changes are not announced")
                return None
            self._notifier = Notifier(
                self.settings, redis_client=self.redis, session_factory=self.sessions, deliver=False
            )
        return self._notifier


def services() -> WebServices:
    return current_app.extensions[EXTENSION]  # type: ignore[no-any-return]


def db() -> Session:
    """The request's database session (closed, uncommitted work rolled back, at the end of the request)."""
    if "db" not in g:
        g.db = services().sessions()
    return g.db  # type: ignore[no-any-return]


def close_db(_exc: BaseException | None = None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()


def current_user() -> User | None:
    return g.get("user")


def require_user() -> User:
    user = current_user()
    if user is None:
        raise RuntimeError("no logged-in user in this request")
    return user


def actor() -> Actor:
    user = current_user()
    if user is None:
        return Actor(None, "web:anonymous")
    via_token = g.get("token_actor")
    if via_token is not None:
        return via_token  # type: ignore[no-any-return]
    return Actor(user.id, f"web:{user.username}")


def visible_ward_ids(session: Session, user: User) -> set[int]:
    """Wards a user may see: admins all, nurses and doctors the wards they cover."""
    if user.role == "admin":
        return set(session.scalars(select(Ward.id)))
    return {w.id for w in user.wards}


def user_ward_ids() -> set[int]:
    if "ward_ids" not in g:
        g.ward_ids = visible_ward_ids(db(), require_user())
    return g.ward_ids  # type: ignore[no-any-return]


def audit(
    action: str,
    *,
    patient_id: int | None = None,
    patient_ids: Iterable[int] | None = None,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
    commit: bool = True,
) -> None:
    """Record who viewed or changed what (committed now unless ``commit`` is false).

    Committed now, the row goes in a write transaction (a view's reads are committed first: on SQLite a read
    transaction that then writes fails when another process wrote meanwhile). A view showing several patients
    (a ward, the inbox, a camera picture) passes ``patient_ids``: one row per patient, so that the audit log
    filtered by a patient finds every view of them (one row without a patient when there is none).
    """
    session = db()
    if commit:
        begin_write(session)
    who = actor()
    patients = sorted(set(patient_ids or ())) or [patient_id]
    for pid in patients:
        record(session, who, action, patient_id=pid, target=target, detail=detail)
    g.audited = True
    if commit:
        session.commit()


def security_audit(action: str, by: Actor, *, target: str | None = None, detail: dict[str, Any] | None = None) -> None:
    """Record a security event (login, failed or refused login) in a transaction of its own, retried while the
    database is busy, so that it is never lost with (or blocked by) the request's own work. An event that still
    cannot be written fails the request (nothing security-relevant goes unaudited)."""

    def write(session: Session) -> None:
        record(session, by, action, target=target, detail=detail)

    try:
        run_write(services().sessions, write)
    except Exception:
        log.exception("security audit event %s could not be written", action)
        raise
