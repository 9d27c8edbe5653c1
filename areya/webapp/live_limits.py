"""Caps on live views: every open ``/events`` stream holds a server thread for minutes, so one web process serves
at most ``sse_max_streams`` of them (below its thread count, so that logins and pages always find a thread) and
one user at most ``sse_max_per_user``. A stream's slot is freed when it ends or its client goes away."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class StreamSlot:
    """One open stream's place; :meth:`release` is idempotent (called by the stream's end and its close)."""

    owner: StreamSlots
    user_id: int
    _released: bool = field(default=False, repr=False)

    def release(self) -> None:
        self.owner._release(self)


class StreamSlots:
    """Counts open streams per process and per user (thread-safe)."""

    def __init__(self, max_total: int, max_per_user: int) -> None:
        self.max_total = max_total
        self.max_per_user = max_per_user
        self._lock = threading.Lock()
        self._total = 0
        self._per_user: Counter[int] = Counter()

    def acquire(self, user_id: int) -> StreamSlot | str:
        """A slot, or the reason (a sentence for the 429 answer) why there is none."""
        with self._lock:
            if self._per_user[user_id] >= self.max_per_user:
                return (
                    f"too many live views open for this user (at most {self.max_per_user}): close another "
                    "ward view or alert inbox tab, then reload"
                )
            if self._total >= self.max_total:
                return f"the server is showing its maximum of {self.max_total} live views: try again shortly"
            self._total += 1
            self._per_user[user_id] += 1
            return StreamSlot(self, user_id)

    def _release(self, slot: StreamSlot) -> None:
        with self._lock:
            if slot._released:
                return
            slot._released = True
            self._total -= 1
            self._per_user[slot.user_id] -= 1
            if self._per_user[slot.user_id] <= 0:
                del self._per_user[slot.user_id]

    def open_streams(self, user_id: int | None = None) -> int:
        with self._lock:
            return self._total if user_id is None else self._per_user.get(user_id, 0)
