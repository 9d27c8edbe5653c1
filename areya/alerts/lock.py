"""The scheduler's leader lock: one Redis key with an expiry, held by one scheduler instance at a time.

The active scheduler renews it every tick (compare-and-expire); a standby tries to take it every tick and
succeeds only once the key has expired, i.e. ``ttl`` after the active one stopped renewing (crash, hang,
network split).  Release on clean shutdown is compare-and-delete, so an instance never frees a lock that
another one already took over.  The partial unique indexes on open alerts protect the database even in
the short overlap a paused-then-resumed leader could cause.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid

import redis

log = logging.getLogger(__name__)

LOCK_KEY = "areya:scheduler:leader"

# KEYS[1] lock key; ARGV[1] owner; ARGV[2] ttl ms.  Returns 1 if the caller holds the lock afterwards.
_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaderLock:
    """Acquire-or-renew / release of ``key`` for ``owner`` with a ``ttl_ms`` expiry."""

    def __init__(self, client: redis.Redis, *, ttl_ms: int, key: str = LOCK_KEY, owner: str | None = None) -> None:
        if ttl_ms < 1:
            raise ValueError("the lock TTL must be positive")
        self.client = client
        self.key = key
        self.ttl_ms = int(ttl_ms)
        self.owner = owner or default_owner()
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)
        self.held = False

    def acquire(self) -> bool:
        """Take the lock if free, renew it if ours; False if another instance holds it (or Redis is down)."""
        try:
            held = bool(self._acquire(keys=[self.key], args=[self.owner, self.ttl_ms]))
        except redis.RedisError as exc:
            log.warning("leader lock unavailable (%s): acting as standby", exc)
            held = False
        if held != self.held:
            log.info("scheduler %s %s the leader lock", self.owner, "took" if held else "lost")
        self.held = held
        return held

    def release(self) -> bool:
        """Free the lock if we still hold it."""
        try:
            released = bool(self._release(keys=[self.key], args=[self.owner]))
        except redis.RedisError as exc:
            log.warning("leader lock not released (%s); it expires by itself", exc)
            released = False
        self.held = False
        return released

    def holder(self) -> str | None:
        value = self.client.get(self.key)
        return value.decode() if isinstance(value, bytes) else value
