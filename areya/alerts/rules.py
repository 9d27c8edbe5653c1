"""Pure alert rule evaluation: no database, no clock of its own (``now`` is always passed in).

Sustained negative emotion, per admitted patient, over the sliding window ``(now - window_s, now]``:

* the evidence counts only if the window holds at least ``min_obs`` observations;
* the **share** is confidence-aware: the mean negative probability mass ``p_angry + p_sad`` of the
  window's observations (an observation classified "sad" with probability 0.9 weighs 0.9+, an unsure one
  less; the expected share of negative observations).  The plain label share (angry + sad labels / n)
  is kept in the evidence for people to read;
* share >= ``open_share`` -> open an alert (unless one is open, or the patient's alerts are snoozed);
* an open alert resolves automatically only once the share has stayed < ``close_share`` for
  ``resolve_period_s`` (hysteresis).  A tick with too few observations (or a share >= close_share)
  restarts that period: no evidence is not evidence of recovery.

Escalation: a *firing* (unacknowledged) alert is re-notified with severity + 1 every ``escalate_after_s``.
Camera offline: an enabled camera whose last frame (or, never having sent one, its registration) is older
than ``camera_offline_s``.  Pipeline stalled: a camera whose observations stopped for ``stall_s`` while its
frames keep arriving.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, Literal

from areya.db.models import LABELS4

NEGATIVE_LABELS: tuple[str, ...] = ("angry", "sad")  # = areya.emotion.schemes.NEGATIVE_4
MAX_SEVERITY = 10
SEVERITY: dict[str, int] = {"negative_emotion": 2, "camera_offline": 3, "pipeline_stalled": 3}
STALL_FACTOR = 5  # pipeline stalled after STALL_FACTOR * camera_offline_s without observations

# Settings keys a RuleOverride may set (per ward or per patient) -> RuleParams field.
OVERRIDABLE: dict[str, str] = {
    "negative_window_s": "window_s",
    "negative_min_obs": "min_obs",
    "negative_open_share": "open_share",
    "negative_close_share": "close_share",
    "resolve_period_s": "resolve_period_s",
    "escalate_after_s": "escalate_after_s",
}


@dataclass(frozen=True)
class RuleParams:
    """The negative-emotion rule's parameters for one patient (global settings + ward + patient overrides)."""

    window_s: int = 600
    min_obs: int = 20
    open_share: float = 0.6
    close_share: float = 0.4
    resolve_period_s: int = 300
    escalate_after_s: int = 900

    def __post_init__(self) -> None:
        if self.window_s <= 0 or self.min_obs < 1 or self.resolve_period_s < 0 or self.escalate_after_s < 0:
            raise ValueError(f"invalid rule parameters: {self}")
        if not 0.0 <= self.close_share < self.open_share <= 1.0:
            raise ValueError(
                f"close share must be below open share, both in [0, 1]: {self.close_share} / {self.open_share}"
            )

    @classmethod
    def from_settings(cls, settings: Any) -> RuleParams:
        return cls(**{field: getattr(settings, key) for key, field in OVERRIDABLE.items()})

    def as_settings(self) -> dict[str, Any]:
        """These parameters under their settings names (``negative_window_s``, ...)."""
        return {key: getattr(self, field) for key, field in OVERRIDABLE.items()}

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class WindowStats:
    """Aggregates of one patient's observations in one window (what the SQL GROUP BY returns)."""

    patient_id: int
    n: int
    counts: dict[str, int]
    negative_mass: float  # sum over observations of p_angry + p_sad
    prob_sums: dict[str, float]  # sum of each class probability
    first_at: datetime | None
    last_at: datetime | None

    @property
    def share(self) -> float:
        """Confidence-aware negative share: the mean of p_angry + p_sad (0 without observations)."""
        return self.negative_mass / self.n if self.n else 0.0

    @property
    def label_share(self) -> float:
        """Share of observations labelled angry or sad."""
        return sum(self.counts.get(label, 0) for label in NEGATIVE_LABELS) / self.n if self.n else 0.0

    def evidence(self, params: RuleParams, now: datetime) -> dict[str, Any]:
        """JSON-able evidence kept with the alert."""
        return {
            "rule": "negative_emotion",
            "window_s": params.window_s,
            "window_start": (now - timedelta(seconds=params.window_s)).isoformat(),
            "window_end": now.isoformat(),
            "min_obs": params.min_obs,
            "open_share": params.open_share,
            "close_share": params.close_share,
            "n_obs": self.n,
            "counts": {label: int(self.counts.get(label, 0)) for label in LABELS4},
            "share": round(self.share, 4),
            "label_share": round(self.label_share, 4),
            "mean_probs": {label: round(self.prob_sums.get(label, 0.0) / self.n, 4) if self.n else 0.0
                           for label in LABELS4},
            "first_at": self.first_at.isoformat() if self.first_at else None,
            "last_at": self.last_at.isoformat() if self.last_at else None,
        }


Action = Literal["none", "open", "keep", "resolve"]


@dataclass(frozen=True)
class NegativeDecision:
    """What to do with one patient this tick; ``below_close_since`` is the open alert's new hysteresis state."""

    action: Action
    reason: str
    below_close_since: datetime | None = None


def evaluate_negative(
    stats: WindowStats | None,
    params: RuleParams,
    *,
    now: datetime,
    is_open: bool,
    below_close_since: datetime | None = None,
    snoozed: bool = False,
) -> NegativeDecision:
    """Decide for one patient: open, keep, resolve or nothing (see the module doc)."""
    enough = stats is not None and stats.n >= params.min_obs
    share = stats.share if stats is not None else 0.0
    if not is_open:
        if not enough:
            return NegativeDecision("none", "insufficient evidence")
        if share < params.open_share:
            return NegativeDecision("none", f"share {share:.2f} below {params.open_share:.2f}")
        if snoozed:
            return NegativeDecision("none", "snoozed")
        return NegativeDecision("open", f"share {share:.2f} >= {params.open_share:.2f} over {stats.n} observations")
    if not enough:
        return NegativeDecision("keep", "insufficient evidence to resolve")
    if share >= params.close_share:
        return NegativeDecision("keep", f"share {share:.2f} not below {params.close_share:.2f}")
    since = below_close_since if below_close_since is not None and below_close_since <= now else now
    if now - since >= timedelta(seconds=params.resolve_period_s):
        return NegativeDecision("resolve", f"share below {params.close_share:.2f} since {since.isoformat()}", since)
    return NegativeDecision("keep", f"share below {params.close_share:.2f}, waiting for the resolve period", since)


def escalation_due(
    *,
    state: str,
    opened_at: datetime,
    last_notified_at: datetime | None,
    escalate_after_s: int,
    now: datetime,
    snoozed: bool = False,
) -> bool:
    """A firing alert not acknowledged ``escalate_after_s`` after its last notification (0 = never)."""
    if state != "firing" or escalate_after_s <= 0 or snoozed:
        return False
    reference = last_notified_at or opened_at
    return now - reference >= timedelta(seconds=escalate_after_s)


def escalated_severity(severity: int) -> int:
    return min(MAX_SEVERITY, severity + 1)


def camera_is_offline(
    *, last_frame_at: datetime | None, created_at: datetime, now: datetime, offline_s: float
) -> bool:
    """No frame for more than ``offline_s`` (a camera that never sent one: since it was registered)."""
    reference = last_frame_at if last_frame_at is not None else created_at
    return (now - reference).total_seconds() > offline_s


def stall_after_s(camera_offline_s: float) -> float:
    return STALL_FACTOR * camera_offline_s


def pipeline_is_stalled(
    *,
    camera_online: bool,
    online_since: datetime,
    had_observations: bool,
    last_observation_at: datetime | None,
    now: datetime,
    stall_s: float,
) -> bool:
    """Frames keep arriving but the camera's observations stopped ``stall_s`` ago.

    ``had_observations``: the camera produced observations in the look-back period (observations that
    never started are a set-up question, not a stall); ``online_since``: frames have been arriving since
    then (no stall is declared before the camera has been up for ``stall_s``).
    """
    if not camera_online or not had_observations:
        return False
    if (now - online_since).total_seconds() < stall_s:
        return False
    return last_observation_at is None or (now - last_observation_at).total_seconds() > stall_s
