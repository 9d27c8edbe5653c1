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
        try:
            parts = urlsplit(origin)
        except ValueError:  # "http://[::1": not an origin at all
            abort(400, description="cross-origin request refused")
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

# Reserve an attempt on both counters at once, or say how long to wait: atomic in Redis (one Lua script), so that
# parallel attempts cannot all pass the check before any of them is counted.
_RESERVE_LUA = """
for i = 1, 2 do
  local n = tonumber(redis.call('GET', KEYS[i]) or '0')
  if n >= tonumber(ARGV[i]) then
    local ttl = redis.call('TTL', KEYS[i])
    if ttl < 0 then redis.call('EXPIRE', KEYS[i], ARGV[3]); ttl = tonumber(ARGV[3]) end
    return math.max(ttl, 1)
  end
end
for i = 1, 2 do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('EXPIRE', KEYS[i], ARGV[3]) end
end
return 0
"""
_RELEASE_LUA = """
redis.call('DEL', KEYS[1])
if redis.call('DECR', KEYS[2]) <= 0 then redis.call('DEL', KEYS[2]) end
return 0
"""
IP_FACTOR = 10  # a client address may fail this many times the per-user count (several staff behind one NAT)


class LoginLimiter:
    """Login attempts per username and per client IP in a fixed window, counted *before* the password check.

    ``reserve`` counts the attempt (or refuses it) atomically; a successful login gives its reservation back
    (``succeeded``), so only failures use up the allowance. Redis-backed (shared by every web process) when Redis
    is there, else in this process's memory."""

    PREFIX = "areya:web:login:"

    def __init__(self, max_failures: int, window_s: int, client: redis.Redis | None = None) -> None:
        self.max_failures = max_failures
        self.max_ip_failures = max_failures * IP_FACTOR
        self.window_s = window_s
        self.client = client
        self._memory: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()
        self._reserve_script = client.register_script(_RESERVE_LUA) if client is not None else None
        self._release_script = client.register_script(_RELEASE_LUA) if client is not None else None

    def _keys(self, ip: str, username: str) -> list[str]:
        return [f"{self.PREFIX}user:{username.strip().lower()[:64]}", f"{self.PREFIX}ip:{ip[:64]}"]

    def reserve(self, ip: str, username: str) -> int:
        """Count an attempt: 0 if it may go ahead, else the seconds until the next one is allowed (not counted)."""
        keys = self._keys(ip, username)
        if self._reserve_script is not None:
            try:
                return int(
                    self._reserve_script(keys=keys, args=[self.max_failures, self.max_ip_failures, self.window_s])
                )
            except Exception:  # noqa: BLE001 - Redis away: fall back to memory
                pass
        with self._lock:
            now = time.monotonic()
            counts = []
            for key, limit in zip(keys, (self.max_failures, self.max_ip_failures), strict=True):
                count, expires = self._memory.get(key, (0, 0.0))
                if expires <= now:
                    count, expires = 0, now + self.window_s
                if count >= limit:
                    return max(1, int(expires - now))
                counts.append((key, count, expires))
            for key, count, expires in counts:
                self._memory[key] = (count + 1, expires)
            return 0

    def retry_after(self, ip: str, username: str) -> int:
        """Seconds until the next attempt is allowed (0 = allowed now); counts nothing."""
        keys = self._keys(ip, username)
        limits = (self.max_failures, self.max_ip_failures)
        if self.client is not None:
            try:
                for key, limit in zip(keys, limits, strict=True):
                    if int(self.client.get(key) or 0) >= limit:
                        return max(1, int(self.client.ttl(key)))
                return 0
            except Exception:  # noqa: BLE001
                pass
        with self._lock:
            now = time.monotonic()
            for key, limit in zip(keys, limits, strict=True):
                count, expires = self._memory.get(key, (0, 0.0))
                if expires > now and count >= limit:
                    return max(1, int(expires - now))
            return 0

    def succeeded(self, ip: str, username: str) -> None:
        """The reserved attempt was a success: the user's failures are forgotten, the address's one given back."""
        keys = self._keys(ip, username)
        if self._release_script is not None:
            with contextlib.suppress(Exception):
                self._release_script(keys=keys, args=[])
        with self._lock:
            self._memory.pop(keys[0], None)
            count, expires = self._memory.get(keys[1], (0, 0.0))
            if count > 1:
                self._memory[keys[1]] = (count - 1, expires)
            else:
                self._memory.pop(keys[1], None)
