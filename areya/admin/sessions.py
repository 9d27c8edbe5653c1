"""Server-side dashboard sessions: the browser's cookie carries a random session id, the database its SHA-256.

Ending a session deletes its row, so a copied cookie stops working at once (logout); a password change or a
deactivation ends every session of the user (``end_user_sessions``, called by ``areya.admin.users``), whether it
comes from the dashboard or the command line, and revokes the user's API tokens (``revoke_user_tokens``; a
re-activated user or a new password does not bring them back).

A session ends 12 h after login at the latest and, with an idle timeout, that long after its last request: the
row's ``expires_at`` is the earlier of the two, pushed on by ``keep_alive`` (at most once a minute).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from areya.db.engine import begin_write
from areya.db.models import ApiToken, User, WebSession
from areya.db.types import utcnow

SESSION_LIFETIME = timedelta(hours=12)
MAX_SESSION_ID_LEN = 128
KEEP_ALIVE_RESOLUTION = timedelta(minutes=1)  # an idle deadline is pushed on at most this often (one write)


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("ascii", "replace")).hexdigest()


def _deadline(created_at: datetime, now: datetime, lifetime: timedelta, idle: timedelta | None) -> datetime:
    end = created_at + lifetime
    return end if not idle else min(end, now + idle)


def start_session(
    session: Session,
    user_id: int,
    *,
    now: datetime | None = None,
    lifetime: timedelta = SESSION_LIFETIME,
    idle: timedelta | None = None,
) -> str:
    """A new session for ``user_id``; returns its id (only its hash is stored). It ends after ``lifetime``, or
    after ``idle`` without a request (None or zero: no idle timeout). Purges expired sessions."""
    now = now or utcnow()
    session.execute(delete(WebSession).where(WebSession.expires_at <= now))
    session_id = secrets.token_urlsafe(32)
    expires = _deadline(now, now, lifetime, idle)
    session.add(WebSession(id_hash=_hash(session_id), user_id=user_id, created_at=now, expires_at=expires))
    session.flush()
    return session_id


def keep_alive(
    session: Session,
    session_id: object,
    *,
    idle: timedelta | None,
    now: datetime | None = None,
    lifetime: timedelta = SESSION_LIFETIME,
) -> bool:
    """The user made a request: push the session's idle deadline on (never past ``lifetime`` after login).

    Only when it moves by ``KEEP_ALIVE_RESOLUTION`` or more (so at most one write a minute per session), in a
    write transaction (begun here: the lookup's read transaction ends first); the caller commits. Returns
    whether it wrote."""
    if not isinstance(session_id, str) or not session_id or len(session_id) > MAX_SESSION_ID_LEN:
        return False
    id_hash = _hash(session_id)
    row = session.get(WebSession, id_hash)
    now = now or utcnow()
    if row is None or row.expires_at <= now:
        return False
    deadline = _deadline(row.created_at, now, lifetime, idle)
    if abs(deadline - row.expires_at) < KEEP_ALIVE_RESOLUTION:
        return False
    begin_write(session)
    session.execute(  # a statement, not the loaded row: the session may have ended meanwhile (then: no row)
        update(WebSession)
        .where(WebSession.id_hash == id_hash, WebSession.expires_at > now)
        .values(expires_at=deadline)
        .execution_options(synchronize_session=False)
    )
    row.expires_at = deadline
    return True


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


def revoke_user_tokens(session: Session, user_id: int, *, now: datetime | None = None) -> int:
    """Revoke every API token of a user (password change, deactivation); returns how many were live."""
    result = session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
        .execution_options(synchronize_session="fetch")
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def end_user_sessions(session: Session, user_id: int) -> int:
    """End every session of a user (password change, deactivation, role change); returns how many."""
    count = session.scalar(select(func.count()).select_from(WebSession).where(WebSession.user_id == user_id)) or 0
    session.execute(delete(WebSession).where(WebSession.user_id == user_id))
    return int(count)
