"""Dashboard security: role checks, CSRF tokens, security headers and the login rate limiter."""

from __future__ import annotations

import contextlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from flask import abort, g, request, session
from werkzeug.wrappers import Response

if TYPE_CHECKING:
    import redis

F = TypeVar("F", bound=Callable[..., Any])
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_SESSION_KEY = "_csrf"
CSRF_FORM_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
ROLES_ATTR = "areya_roles"
PUBLIC_ATTR = "areya_public"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}


# --------------------------------------------------------------------------- roles


def roles(*allowed: str) -> Callable[[F], F]:
    """Only users with one of these roles may call the view (others: 403; anonymous: login / 401)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = g.get("user")
            if user is None:
                abort(401)
            if user.role not in allowed:
                abort(403)
            return view(*args, **kwargs)

        setattr(wrapper, ROLES_ATTR, tuple(allowed))
        return wrapper  # type: ignore[return-value]

    return decorate


def public(view: F) -> F:
    """Mark a view as reachable without login (login page, OpenAPI document)."""
    setattr(view, PUBLIC_ATTR, True)
    return view


ALL_ROLES = ("nurse", "doctor", "admin")
CLINICAL = ("nurse", "doctor", "admin")
ALERT_HANDLERS = ("doctor", "admin")
ADMIN = ("admin",)


# --------------------------------------------------------------------------- CSRF


def csrf_token() -> str:
    token = session.get(CSRF_SESSION_KEY)
    if not token:
        token = secrets.token_urlsafe(32)
        session[CSRF_SESSION_KEY] = token
    return str(token)


def check_csrf() -> None:
    """Refuse a state-changing request without the session's CSRF token (form field or header) or cross-origin."""
    if request.method not in UNSAFE_METHODS:
        return
    origin = request.headers.get("Origin")
    if origin and origin != "null":
        parts = urlsplit(origin)
        if f"{parts.scheme}://{parts.netloc}" != request.host_url.rstrip("/"):
            abort(400, description="cross-origin request refused")
    sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FORM_FIELD) or ""
    expected = session.get(CSRF_SESSION_KEY) or ""
    if not expected or not hmac.compare_digest(str(sent), str(expected)):
        abort(400, description="the form expired or its security token is missing: reload the page and try again")


def add_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.endpoint != "static":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


# --------------------------------------------------------------------------- login rate limit


class LoginLimiter:
    """Failed logins per (client IP, username) in a fixed window; Redis-backed when Redis is there, else memory."""

    PREFIX = "areya:web:login-fail:"

    def __init__(self, max_failures: int, window_s: int, client: redis.Redis | None = None) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.client = client
        self._memory: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def _key(self, ip: str, username: str) -> str:
        return f"{self.PREFIX}{ip}|{username.strip().lower()[:64]}"

    def retry_after(self, ip: str, username: str) -> int:
        """Seconds until the next attempt is allowed (0 = allowed now)."""
        key = self._key(ip, username)
        if self.client is not None:
            try:
                count = int(self.client.get(key) or 0)
                if count < self.max_failures:
                    return 0
                return max(1, int(self.client.ttl(key)))
            except Exception:  # noqa: BLE001 - Redis away: fall back to memory
                pass
        with self._lock:
            count, expires = self._memory.get(key, (0, 0.0))
            now = time.monotonic()
            if expires <= now or count < self.max_failures:
                return 0
            return max(1, int(expires - now))

    def failed(self, ip: str, username: str) -> None:
        key = self._key(ip, username)
        if self.client is not None:
            try:
                if int(self.client.incr(key)) == 1:  # the window starts at the first failure
                    self.client.expire(key, self.window_s)
                return
            except Exception:  # noqa: BLE001
                pass
        with self._lock:
            now = time.monotonic()
            count, expires = self._memory.get(key, (0, 0.0))
            if expires <= now:
                count, expires = 0, now + self.window_s
            self._memory[key] = (count + 1, expires)

    def succeeded(self, ip: str, username: str) -> None:
        key = self._key(ip, username)
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.delete(key)
        with self._lock:
            self._memory.pop(key, None)
