"""Dashboard users: argon2id password hashes, roles, ward coverage, deactivation, authentication."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from areya.admin.passwords import MAX_PASSWORD_LEN, MIN_PASSWORD_LEN  # noqa: F401 - re-exported
from areya.admin.passwords import check_password as check_password_rules
from areya.admin.refs import clean_username, flush, get_user, get_ward
from areya.admin.sessions import end_user_sessions, revoke_user_tokens
from areya.audit import SYSTEM, Actor, record
from areya.db.models import ROLES, User, Ward
from areya.db.types import utcnow
from areya.errors import Conflict, Invalid

if TYPE_CHECKING:
    from argon2 import PasswordHasher


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    from argon2 import PasswordHasher

    return PasswordHasher()


def check_password(password: str, username: str = "", *, context: tuple[str, ...] = ()) -> str:
    """At least 12 characters and hard to guess (see areya.admin.passwords); not built from the username, "areya"
    or the words in ``context`` (the user's role, the ward names: :func:`password_context`)."""
    return check_password_rules(password, user_inputs=(username, "areya", *context))


def hash_password(password: str, username: str = "", *, context: tuple[str, ...] = ()) -> str:
    return _hasher().hash(check_password(password, username, context=context))


def password_context(session: Session, role: str) -> tuple[str, ...]:
    """The words a password must not be built from besides the username: the role, every role name, the wards."""
    return (role, *ROLES, *session.scalars(select(Ward.name)))


def verify_password(password_hash: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return bool(_hasher().verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


def check_role(role: str) -> str:
    value = (role or "").strip().lower()
    if value not in ROLES:
        raise Invalid(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    return value


def add_user(
    session: Session,
    username: str,
    role: str,
    password: str,
    wards: list[str] | tuple[str, ...] = (),
    *,
    actor: Actor = SYSTEM,
) -> User:
    name = clean_username(username)
    role = check_role(role)
    password_hash = hash_password(password, name, context=password_context(session, role))
    covered = [get_ward(session, w) for w in wards]
    if session.scalar(select(User.id).where(User.username == name)) is not None:
        raise Conflict(f"user {name!r} already exists")
    user = User(username=name, role=role, password_hash=password_hash, active=True)
    user.wards = covered
    session.add(user)
    flush(session, f"add user {name!r}")
    record(
        session,
        actor,
        "user.add",
        target=f"user:{user.id}",
        detail={"username": name, "role": role, "wards": [w.name for w in covered]},
    )
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).options(selectinload(User.wards)).order_by(User.username)))


def set_user_active(session: Session, username: str, active: bool, *, actor: Actor = SYSTEM) -> User:
    user = get_user(session, username)
    if user.active == active:
        raise Conflict(f"user {user.username!r} is already {'active' if active else 'deactivated'}")
    user.active = active
    detail = None
    if not active:  # sessions end and API tokens are revoked: a re-activated user starts afresh
        end_user_sessions(session, user.id)
        detail = {"tokens_revoked": revoke_user_tokens(session, user.id)}
    flush(session, f"{'activate' if active else 'deactivate'} user {user.username!r}")
    record(session, actor, "user.activate" if active else "user.deactivate", target=f"user:{user.id}", detail=detail)
    return user


def set_password(session: Session, username: str, password: str, *, actor: Actor = SYSTEM) -> User:
    user = get_user(session, username)
    user.password_hash = hash_password(password, user.username, context=password_context(session, user.role))
    end_user_sessions(session, user.id)  # a changed password ends every session (the user logs in again)
    revoked = revoke_user_tokens(session, user.id)  # and revokes the API tokens (a leaked one stops working)
    flush(session, f"set password of {user.username!r}")
    record(session, actor, "user.password", target=f"user:{user.id}", detail={"tokens_revoked": revoked})
    return user


def set_user_wards(session: Session, username: str, wards: list[str], *, actor: Actor = SYSTEM) -> User:
    user = get_user(session, username)
    user.wards = [get_ward(session, w) for w in wards]
    flush(session, f"set wards of {user.username!r}")
    record(session, actor, "user.wards", target=f"user:{user.id}", detail={"wards": [w.name for w in user.wards]})
    return user


_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)


def clean_email(value: str | None) -> str | None:
    """A checked e-mail address (domain lower-cased), or None for empty (no address: no alert e-mails)."""
    text = (value or "").strip()
    if not text:
        return None
    if len(text) > 254 or not _EMAIL.fullmatch(text) or ".." in text or text.startswith("."):
        raise Invalid(f"invalid e-mail address {text!r}: use name@hospital.example")
    local, _, domain = text.rpartition("@")
    if len(local) > 64:
        raise Invalid(f"invalid e-mail address {text!r}: the part before @ is longer than 64 characters")
    return f"{local}@{domain.lower()}"


def set_user_email(session: Session, username: str, email: str | None, *, actor: Actor = SYSTEM) -> User:
    """Set (or, empty, clear) the address alert e-mails go to; audited with the old and new address."""
    user = get_user(session, username)
    address = clean_email(email)
    previous = user.email
    user.email = address
    flush(session, f"set e-mail of {user.username!r}")
    record(session, actor, "user.email", target=f"user:{user.id}", detail={"from": previous, "to": address})
    return user


def set_user_role(session: Session, username: str, role: str, *, actor: Actor = SYSTEM) -> User:
    """Change a user's role (audited); the last active admin keeps theirs.  Their sessions end (log in again)."""
    user = get_user(session, username)
    new_role = check_role(role)
    if user.role == new_role:
        raise Conflict(f"user {user.username!r} is already a {new_role}")
    if user.role == "admin" and user.active:
        admins = session.scalars(select(User.id).where(User.role == "admin", User.active.is_(True))).all()
        if len(admins) <= 1:
            raise Conflict(f"user {user.username!r} is the last active admin: make another admin first")
    previous = user.role
    user.role = new_role
    end_user_sessions(session, user.id)
    flush(session, f"set role of {user.username!r}")
    record(session, actor, "user.role", target=f"user:{user.id}", detail={"from": previous, "to": new_role})
    return user


@dataclass(frozen=True)
class LoginCandidate:
    """What a password check needs of a user, read before the (slow) check without holding a transaction."""

    user_id: int
    password_hash: str
    active: bool


def find_login(session: Session, username: str) -> LoginCandidate | None:
    row = session.execute(
        select(User.id, User.password_hash, User.active).where(User.username == (username or "").strip().lower())
    ).first()
    return None if row is None else LoginCandidate(row.id, row.password_hash, bool(row.active))


def verify_login(candidate: LoginCandidate | None, password: str) -> bool:
    """True if ``candidate`` is active and ``password`` is right; the same cost when there is no such user."""
    if candidate is None:
        _hasher().hash("timing-equaliser")  # same cost as a real verification
        return False
    return verify_password(candidate.password_hash, password) and candidate.active


def note_login(session: Session, user_id: int, password: str) -> User:
    """After a successful check: re-hash the password when argon2 parameters changed; record last_login_at."""
    user = session.get(User, user_id)
    if user is None:
        raise LookupError(f"user {user_id} vanished during login")
    if _hasher().check_needs_rehash(user.password_hash):
        user.password_hash = _hasher().hash(password)
    user.last_login_at = utcnow()
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this username and password, or None (no hint which part was wrong).

    Re-hashes the password when argon2 parameters changed; records last_login_at. The caller commits and audits.
    (The dashboard uses the three steps separately, to hold no transaction during the hash check.)
    """
    candidate = find_login(session, username)
    if not verify_login(candidate, password) or candidate is None:
        return None
    return note_login(session, candidate.user_id, password)
