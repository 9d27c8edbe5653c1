"""Server-side dashboard sessions: the browser's cookie carries a random session id, the database its SHA-256.

Ending a session deletes its row, so a copied cookie stops working at once (logout); a password change or a
deactivation ends every session of the user (``end_user_sessions``, called by ``areya.admin.users``), whether it
comes from the dashboard or the command line.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from areya.db.models import User, WebSession
from areya.db.types import utcnow

SESSION_LIFETIME = timedelta(hours=12)
MAX_SESSION_ID_LEN = 128


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("ascii", "replace")).hexdigest()


def start_session(
    session: Session, user_id: int, *, now: datetime | None = None, lifetime: timedelta = SESSION_LIFETIME
) -> str:
    """A new session for ``user_id``; returns its id (only its hash is stored). Purges expired sessions."""
    now = now or utcnow()
    session.execute(delete(WebSession).where(WebSession.expires_at <= now))
    session_id = secrets.token_urlsafe(32)
    session.add(WebSession(id_hash=_hash(session_id), user_id=user_id, created_at=now, expires_at=now + lifetime))
    session.flush()
    return session_id


def session_user(session: Session, session_id: object, *, now: datetime | None = None) -> User | None:
    """The active user of an unexpired session, or None (unknown, ended or expired session, inactive user)."""
    if not isinstance(session_id, str) or not session_id or len(session_id) > MAX_SESSION_ID_LEN:
        return None
    row = session.get(WebSession, _hash(session_id))
    if row is None or row.expires_at <= (now or utcnow()):
        return None
    user = session.get(User, row.user_id)
    return user if user is not None and user.active else None


def end_session(session: Session, session_id: object) -> None:
    if isinstance(session_id, str) and session_id and len(session_id) <= MAX_SESSION_ID_LEN:
        session.execute(delete(WebSession).where(WebSession.id_hash == _hash(session_id)))


def end_user_sessions(session: Session, user_id: int) -> int:
    """End every session of a user (password change, deactivation, role change); returns how many."""
    count = session.scalar(select(func.count()).select_from(WebSession).where(WebSession.user_id == user_id)) or 0
    session.execute(delete(WebSession).where(WebSession.user_id == user_id))
    return int(count)
