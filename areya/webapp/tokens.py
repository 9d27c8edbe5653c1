"""API tokens: ``areya_<random>``; only the SHA-256 is stored, the token itself is shown once.

A token acts only for the user who made it: users create their own (their account page; the command line, which
has the database anyway, may create one for anyone), an admin may list and revoke anyone's but create none for
someone else. A token an older version let an admin issue for someone else no longer authenticates."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from areya.admin.refs import clean_name
from areya.alerts.errors import Forbidden
from areya.audit import SYSTEM, Actor, record
from areya.db.engine import begin_write
from areya.db.models import ApiToken, User
from areya.db.types import utcnow
from areya.errors import Conflict, NotFound

TOKEN_PREFIX = "areya_"
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(session: Session, user: User, name: str, *, actor: Actor = SYSTEM) -> tuple[ApiToken, str]:
    """A new token for ``user``; returns the row and the secret (never stored).

    Only ``user`` (or the command line, ``actor.user_id`` None) may create it: a token made by an admin for a
    doctor would act with the doctor's rights, which the admin does not have."""
    if actor.user_id is not None and actor.user_id != user.id:
        raise Forbidden(f"an API token acts for the user who creates it: {user.username} creates their own")
    label = clean_name(name, "token name", 100)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user.id,
        name=label,
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        token_hash=hash_token(secret),
        issued_by_id=actor.user_id,
    )
    session.add(row)
    session.flush()
    record(session, actor, "token.create", target=f"token:{row.id}", detail={"user": user.username, "name": label})
    return row, secret


def revoke_token(
    session: Session,
    token_id: int,
    *,
    actor: Actor = SYSTEM,
    now: datetime | None = None,
    owner_id: int | None = None,
) -> ApiToken:
    """Revoke a token (``owner_id``: only one of that user's; another's is reported as unknown)."""
    row = session.get(ApiToken, token_id)
    if row is None or (owner_id is not None and row.user_id != owner_id):
        raise NotFound(f"unknown token {token_id}")
    if row.revoked_at is not None:
        raise Conflict(f"token {row.prefix}... is already revoked")
    row.revoked_at = now or utcnow()
    session.flush()
    record(session, actor, "token.revoke", target=f"token:{row.id}", detail={"user_id": row.user_id})
    return row


DEFAULT_MAX_AGE = timedelta(days=90)  # the api_token_days setting's default


def token_expires_at(row: ApiToken, max_age: timedelta = DEFAULT_MAX_AGE) -> datetime:
    """When the token stops working: ``max_age`` (the ``api_token_days`` setting) after it was created."""
    return row.created_at + max_age


def user_for_token(
    session: Session, token: str, *, now: datetime | None = None, max_age: timedelta = DEFAULT_MAX_AGE
) -> User | None:
    """The active user owning this (unrevoked, unexpired) token, or None."""
    found = token_user(session, token, now=now, max_age=max_age)
    return None if found is None else found[1]


def token_actor(session: Session, row: ApiToken, user: User) -> Actor:
    """Who acts through this token, for the audit trail: ``api:<user>`` with the token id."""
    return Actor(user.id, f"api:{user.username}", (("token", row.id),))


def issued_for_someone_else(row: ApiToken) -> bool:
    """A token an admin issued for another user (older versions allowed it): it never authenticates."""
    return row.issued_by_id is not None and row.issued_by_id != row.user_id


def token_user(
    session: Session, token: str, *, now: datetime | None = None, max_age: timedelta = DEFAULT_MAX_AGE
) -> tuple[ApiToken, User] | None:
    """The token row and its active user, or None (unknown, revoked, expired: older than ``max_age``)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None or row.revoked_at is not None or issued_for_someone_else(row):
        return None
    now = now or utcnow()
    if token_expires_at(row, max_age) <= now:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        begin_write(session)  # the lookup's read transaction ends: the update waits its turn for the write lock
        row.last_used_at = now
        session.commit()
    return row, user


def list_tokens(session: Session, user_id: int | None = None) -> list[ApiToken]:
    query = select(ApiToken).order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    if user_id is not None:
        query = query.where(ApiToken.user_id == user_id)
    return list(session.scalars(query))
