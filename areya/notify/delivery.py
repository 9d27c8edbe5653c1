"""What every notification channel shares: the delivery result and the retry-with-backoff loop."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class DeliveryResult:
    channel: str  # webhook | email
    target: str  # URL (credentials masked) or the SMTP host and recipients
    ok: bool
    attempts: int
    status: int | None = None  # last HTTP status / SMTP code, if any
    error: str | None = None


class Retry(Exception):
    """A failure worth retrying (connection refused, timeout, HTTP 5xx / 429, SMTP 4xx)."""


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: ``initial_s * 2**n`` capped at ``max_s``, with up to ``jitter`` of random spread."""

    attempts: int = 4
    initial_s: float = 1.0
    max_s: float = 30.0
    jitter: float = 0.1

    def delay(self, attempt: int) -> float:
        """Wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
        base = min(self.max_s, self.initial_s * (2 ** (attempt - 1)))
        return base * (1.0 + random.uniform(0.0, self.jitter))  # noqa: S311 - jitter, not security


def with_retries(
    send: Callable[[], int | None], backoff: Backoff, sleep: Callable[[float], None] = time.sleep
) -> tuple[bool, int, int | None, str | None]:
    """Call ``send`` until it returns (success) or raises a non-Retry error, at most ``backoff.attempts`` times.

    Returns (ok, attempts, last status, last error).
    """
    status: int | None = None
    error: str | None = None
    for attempt in range(1, backoff.attempts + 1):
        try:
            status = send()
            return True, attempt, status, None
        except Retry as exc:
            error = str(exc)
            status = getattr(exc, "status", None)
            if attempt < backoff.attempts:
                sleep(backoff.delay(attempt))
        except Exception as exc:  # noqa: BLE001 - a permanent failure: recorded, not retried
            return False, attempt, getattr(exc, "status", None), f"{type(exc).__name__}: {exc}"
    return False, backoff.attempts, status, error
