"""Pure alert rule evaluation: no database, no clock of its own (``now`` is always passed in).

Sustained negative emotion, per admitted patient, over the sliding window ``(now - window_s, now]``:

* the evidence counts only if the window holds at least ``min_obs`` observations;
* the **score** is the one quantity of :mod:`areya.alerts.evidence` (``measure``): the mean calibrated
  ``p_angry + p_sad`` of the window's observations ("Negative probability", the default: an unsure "sad"
  weighs less than a confident one) or the share of observations labelled angry or sad ("Negative share");
* score >= ``open_share`` -> open an alert (unless one is open, or the patient's alerts are snoozed);
* **cool-down**: for ``cooldown_s`` after a clinician resolved the patient's alert by hand, the rule
  reopens only on clearly stronger evidence: a score at least ``reopen_margin`` above the level that was
  resolved (the higher of the score at open and the latest score while open);
* an open alert resolves automatically only once the score has stayed < ``close_share`` for
  ``resolve_period_s`` (hysteresis).  A tick with too few observations (or a score >= close_share)
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

MEASURES: tuple[str, ...] = ("labels", "probability")  # see areya.alerts.evidence

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
    "negative_cooldown_s": "cooldown_s",
    "negative_reopen_margin": "reopen_margin",
}


@dataclass(frozen=True)
class RuleParams:
    """The negative-emotion rule's parameters for one patient (global settings + ward + patient overrides)."""

    window_s: int = 300
    min_obs: int = 60
    open_share: float = 0.46
    close_share: float = 0.38
    resolve_period_s: int = 300
    escalate_after_s: int = 900
    cooldown_s: int = 1800
    reopen_margin: float = 0.15
    measure: str = "probability"

    def __post_init__(self) -> None:
        if self.window_s <= 0 or self.min_obs < 1 or self.resolve_period_s < 0 or self.escalate_after_s < 0 \
                or self.cooldown_s < 0 or not 0.0 <= self.reopen_margin <= 1.0:
            raise ValueError(f"invalid rule parameters: {self}")
        if self.measure not in MEASURES:
            raise ValueError(f"unknown negative measure {self.measure!r}: use one of {', '.join(MEASURES)}")
        if not 0.0 <= self.close_share < self.open_share <= 1.0:
            raise ValueError(
                f"close share must be below open share, both in [0, 1]: {self.close_share} / {self.open_share}"
            )

    @classmethod
    def from_settings(cls, settings: Any) -> RuleParams:
        values = {field: getattr(settings, key) for key, field in OVERRIDABLE.items() if hasattr(settings, key)}
        return cls(**values, measure=getattr(settings, "negative_measure", "probability"))

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

    def score(self, measure: str) -> float:
        """The rule's score under ``measure`` (``labels``: label share; ``probability``: mean p_angry + p_sad)."""
        return self.label_share if measure == "labels" else self.share

    def evidence(self, params: RuleParams, now: datetime) -> dict[str, Any]:
        """JSON-able evidence kept with the alert (see :mod:`areya.alerts.evidence`)."""
        from areya.alerts.evidence import negative_evidence  # noqa: PLC0415 - evidence imports this module

        return negative_evidence(self, params, now).to_json()


@dataclass(frozen=True)
class ManualResolve:
    """A clinician resolved the patient's alert by hand at ``at``; ``level`` is the score then dismissed."""

    at: datetime
    level: float


def reopen_level(params: RuleParams, last: ManualResolve | None, now: datetime) -> float:
    """The score that opens an alert now: ``open_share``, or during the cool-down after a manual resolve
    the resolved level plus ``reopen_margin`` if that is higher (above 1: no reopening in the cool-down)."""
    if last is None or params.cooldown_s <= 0 or now - last.at >= timedelta(seconds=params.cooldown_s) \
            or now < last.at:
        return params.open_share
    return max(params.open_share, last.level + params.reopen_margin)


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
    last_manual: ManualResolve | None = None,
) -> NegativeDecision:
    """Decide for one patient: open, keep, resolve or nothing (see the module doc)."""
    enough = stats is not None and stats.n >= params.min_obs
    score = stats.score(params.measure) if stats is not None else 0.0
    if not is_open:
        if not enough:
            return NegativeDecision("none", "insufficient evidence")
        if score < params.open_share:
            return NegativeDecision("none", f"score {score:.2f} below {params.open_share:.2f}")
        needed = reopen_level(params, last_manual, now)
        if score < needed:
            return NegativeDecision("none", f"cool-down after manual resolve: score {score:.2f} below {needed:.2f}")
        if snoozed:
            return NegativeDecision("none", "snoozed")
        return NegativeDecision("open", f"score {score:.2f} >= {needed:.2f} over {stats.n} observations")
    if not enough:
        return NegativeDecision("keep", "insufficient evidence to resolve")
    if score >= params.close_share:
        return NegativeDecision("keep", f"score {score:.2f} not below {params.close_share:.2f}")
    since = below_close_since if below_close_since is not None and below_close_since <= now else now
    if now - since >= timedelta(seconds=params.resolve_period_s):
        return NegativeDecision("resolve", f"score below {params.close_share:.2f} since {since.isoformat()}", since)
    return NegativeDecision("keep", f"score below {params.close_share:.2f}, waiting for the resolve period", since)


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
