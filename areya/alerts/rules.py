"""Pure alert rule evaluation: no database, no clock of its own (``now`` is always passed in).

Sustained negative emotion, per admitted patient, over the sliding window ``(now - window_s, now]``:

* observations whose face quality is below ``min_quality`` (the ``min_face_quality`` setting; the predicted chance
  that the 4-class answer is right, :mod:`areya.detectors.quality`) are **set aside**: they count for nothing
  below, and the evidence says how many there were ("face not clearly visible"); observations without a quality
  are read;
* the evidence counts only if the window holds at least ``min_obs`` observations (those not set aside); an alert
  opens only once the window's observations span at least ``min_span`` of it (:func:`too_short`: after a camera
  starts or the patient is seen again, the first minute's handful of faces is not "sustained");
* the **score** is the one quantity of :mod:`areya.alerts.evidence` (``measure``): the mean calibrated
  ``p_angry + p_sad`` of the window's observations ("Negative probability", the default: an unsure "sad"
  weighs less than a confident one) or the share of observations labelled angry or sad ("Negative share");
* score >= ``open_share`` -> open an alert (unless one is open, or the patient's alerts are snoozed);
* **night** (``night_hours``, hospital time ``timezone``; by default 22:00-07:00): the model reads a dim, small,
  noisy face more negative than the same face by day, so at night ``open_share``, ``close_share`` and
  ``baseline_ceiling`` are all ``night_raise`` higher (0: the same day and night);
* **per-patient baseline** (``baseline_s`` > 0; 0 = off): the patient's usual score is the same measure over
  the whole minutes of the ``baseline_s`` before the window (:func:`baseline_minutes`), leaving out the minutes
  from one window before each of the patient's negative-emotion alerts opened until it resolved (an episode must
  not teach the rule that it is normal; :func:`excluded_minutes`).  With ``baseline_by_night`` only the minutes
  of the same part of the day as now count (at night the patient's night minutes, by day the day minutes: a dim
  resting face is compared with the same patient's dim resting face; :func:`night_minutes`).  With at least
  ``baseline_min_obs`` such observations the open threshold becomes ``max(open_share, min(baseline +
  baseline_margin, baseline_ceiling))`` (night-raised at night) and the close threshold moves up by the same
  amount (:func:`thresholds`: same hysteresis gap); fewer observations: the plain thresholds;
* **cool-down**: for ``cooldown_s`` after a clinician resolved the patient's alert by hand, the rule
  reopens only on clearly stronger evidence: a score at least ``reopen_margin`` above the level that was
  resolved (the higher of the score at open and the latest score while open); when the clinician found **no
  distress** at the bedside (the resolve's finding), for ``no_distress_cooldown_s`` instead if that is longer
  (the same face reading the same way is most likely the same false alarm);
* an open alert resolves automatically only once the score has stayed < ``close_share`` for
  ``resolve_period_s`` (hysteresis).  A tick with too few observations (or a score >= close_share)
  restarts that period: no evidence is not evidence of recovery.

Escalation: a *firing* (unacknowledged) alert is re-notified every ``escalate_after_s``, its urgency raised within
its priority (priorities: :mod:`areya.alerts.priority`).
Camera offline: an enabled camera whose last frame (or, never having sent one, its registration) is older
than ``camera_offline_s``.  Pipeline stalled: a camera whose observations stopped for ``stall_s`` while its
frames keep arriving.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np

MEASURES: tuple[str, ...] = ("labels", "probability")  # see areya.alerts.evidence

NEGATIVE_LABELS: tuple[str, ...] = ("angry", "sad")  # = areya.emotion.schemes.NEGATIVE_4
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
    "negative_baseline_s": "baseline_s",
    "negative_baseline_min_obs": "baseline_min_obs",
    "negative_baseline_margin": "baseline_margin",
    "negative_baseline_ceiling": "baseline_ceiling",
    "negative_night_raise": "night_raise",
    "negative_min_span": "min_span",
    "negative_no_distress_cooldown_s": "no_distress_cooldown_s",
}
NO_DISTRESS = "no_distress_seen"  # the resolve finding that holds the longer cool-down (areya.db.models.FINDINGS)


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
    no_distress_cooldown_s: int = 0  # the cool-down after a "no distress seen" resolve, when longer than cooldown_s
    baseline_s: int = 0  # 0: no per-patient baseline
    baseline_min_obs: int = 3600
    baseline_margin: float = 0.25
    baseline_ceiling: float = 0.60
    measure: str = "probability"
    min_quality: float = 0.0  # observations with a face quality below this are set aside (0: none)
    night_raise: float = 0.0  # at night the open, close and ceiling thresholds are this much higher
    min_span: float = 0.0  # an alert opens only on observations spanning this share of the window (0: any span)
    baseline_by_night: bool = False  # the baseline reads only the minutes of the same part of the day as now
    baseline_quantile: float = 0.0  # > 0: the usual level is this quantile of the period's window scores (usual high)
    night_hours: tuple[int, int] = (22, 7)  # night: from this hour to that one (hospital time)
    timezone: str = "UTC"  # the hospital's time zone (IANA name), for night_hours

    def __post_init__(self) -> None:
        start, end = self.night_hours
        if not (0 <= start <= 23 and 0 <= end <= 23 and start != end):
            raise ValueError(f"night hours must be two different hours 0-23: {self.night_hours}")
        if not 0.0 <= self.night_raise <= 1.0 - self.open_share:
            raise ValueError(f"night_raise must be in [0, 1 - open_share]: {self.night_raise}")
        _zone(self.timezone)  # unknown: ZoneInfoNotFoundError (a ValueError's cousin: KeyError)
        if not 0.0 <= self.baseline_quantile < 1.0:
            raise ValueError(f"baseline_quantile must be in [0, 1): {self.baseline_quantile}")
        if not 0.0 <= self.min_quality <= 1.0:
            raise ValueError(f"min_quality must be in [0, 1]: {self.min_quality}")
        if not 0.0 <= self.min_span <= 1.0:
            raise ValueError(f"min_span must be in [0, 1]: {self.min_span}")
        if (
            self.window_s <= 0
            or self.min_obs < 1
            or self.resolve_period_s < 0
            or self.escalate_after_s < 0
            or self.cooldown_s < 0
            or self.no_distress_cooldown_s < 0
            or not 0.0 <= self.reopen_margin <= 1.0
        ):
            raise ValueError(f"invalid rule parameters: {self}")
        if (
            self.baseline_s < 0
            or self.baseline_s % 60
            or self.baseline_min_obs < 1
            or not 0.0 <= self.baseline_margin <= 1.0
            or not 0.0 < self.baseline_ceiling <= 1.0
        ):
            raise ValueError(f"invalid baseline parameters: {self}")
        if self.measure not in MEASURES:
            raise ValueError(f"unknown negative measure {self.measure!r}: use one of {', '.join(MEASURES)}")
        if not 0.0 <= self.close_share < self.open_share <= 1.0:
            raise ValueError(
                f"close share must be below open share, both in [0, 1]: {self.close_share} / {self.open_share}"
            )

    @classmethod
    def from_settings(cls, settings: Any) -> RuleParams:
        values = {field: getattr(settings, key) for key, field in OVERRIDABLE.items() if hasattr(settings, key)}
        return cls(
            **values,
            measure=getattr(settings, "negative_measure", "probability"),
            min_quality=getattr(settings, "min_face_quality", 0.0),
            baseline_by_night=getattr(settings, "negative_baseline_by_night", False),
            baseline_quantile=getattr(settings, "negative_baseline_quantile", 0.0),
            night_hours=(getattr(settings, "night_start_h", 22), getattr(settings, "night_end_h", 7)),
            timezone=getattr(settings, "timezone", "UTC"),
        )

    def is_night(self, at: datetime) -> bool:
        """``at`` falls in the night hours (hospital time)."""
        hour = at.astimezone(_zone(self.timezone)).hour
        start, end = self.night_hours
        return start <= hour < end if start < end else hour >= start or hour < end

    def cooldown_for(self, finding: str | None) -> int:
        """How long a manual resolve with ``finding`` holds the cool-down: ``cooldown_s``, or after "no distress
        seen" ``no_distress_cooldown_s`` when that is longer."""
        return max(self.cooldown_s, self.no_distress_cooldown_s) if finding == NO_DISTRESS else self.cooldown_s

    @property
    def longest_cooldown_s(self) -> int:
        """The longest any manual resolve holds the cool-down (how far back to look for one)."""
        return max(self.cooldown_s, self.no_distress_cooldown_s)

    def as_settings(self) -> dict[str, Any]:
        """These parameters under their settings names (``negative_window_s``, ...)."""
        return {key: getattr(self, field) for key, field in OVERRIDABLE.items()}

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class WindowStats:
    """Aggregates of one patient's observations in one window (what the SQL GROUP BY returns): counts and sums of
    the observations read, and how many were set aside (face quality below ``min_quality``)."""

    patient_id: int
    n: int  # observations read (not set aside)
    counts: dict[str, int]
    negative_mass: float  # sum over observations of p_angry + p_sad
    prob_sums: dict[str, float]  # sum of each class probability
    first_at: datetime | None  # the window's first and last observation (set aside ones included)
    last_at: datetime | None
    n_set_aside: int = 0  # observations set aside: face quality below min_quality

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


@dataclass(frozen=True)
class Baseline:
    """A patient's usual score: the mean score (``measure``) over the baseline period (see :func:`baseline_minutes`,
    :func:`excluded_minutes`); ``n`` observations, ``n_negative`` of them labelled angry or sad."""

    n: int
    n_negative: int
    negative_mass: float  # sum of p_angry + p_sad
    start: datetime | None = None  # the period (minutes left out for alerts included)
    end: datetime | None = None
    part: str | None = None  # "night" / "day": only the period's minutes of that part of the day (baseline_by_night)
    high: float | None = None  # baseline_quantile > 0: that quantile of the period's window scores (None: no window)

    def score(self, measure: str) -> float:
        if not self.n:
            return 0.0
        return self.n_negative / self.n if measure == "labels" else self.negative_mass / self.n

    def usual(self, params: RuleParams) -> float:
        """The level the thresholds follow: the mean score, or with ``baseline_quantile`` the usual high."""
        if params.baseline_quantile > 0 and self.high is not None:
            return self.high
        return self.score(params.measure)


def usual_high(per_minute: np.ndarray, params: RuleParams) -> float | None:
    """The patient's usual high: the ``baseline_quantile`` of the scores of every window of ``window_s`` (whole
    minutes, sliding a minute at a time) within the baseline period that holds at least ``min_obs`` observations;
    ``per_minute``: (minutes, 3) sums of the period's consecutive minutes (n, labelled angry or sad, p_angry +
    p_sad; minutes left out are zeros).  None without such a window."""
    k = max(1, params.window_s // 60)
    if len(per_minute) < k:
        return None
    cum = np.concatenate([np.zeros((1, 3)), np.cumsum(per_minute, axis=0)])
    sums = cum[k:] - cum[:-k]
    ok = sums[:, 0] >= params.min_obs
    if not ok.any():
        return None
    column = 1 if params.measure == "labels" else 2
    scores = sums[ok, column] / sums[ok, 0]
    return float(np.quantile(scores, params.baseline_quantile))


def baseline_minutes(now: datetime, window_s: int, baseline_s: int) -> tuple[int, int]:
    """The baseline period as minute numbers ``[first, end)`` (minute m = ``[60 m, 60 m + 60)`` s since the
    epoch): the ``baseline_s`` seconds of whole minutes that end at the start of the minute holding the start of
    the window ``now - window_s``, so that the period never overlaps the window."""
    end = math.floor((now.timestamp() - window_s) / 60)
    return end - baseline_s // 60, end


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def night_minutes(minutes: np.ndarray, params: RuleParams) -> np.ndarray:
    """Which minute numbers (minute m = ``[60 m, 60 m + 60)`` s since the epoch) fall in ``params.night_hours``,
    hospital time: a bool array (the offset from UTC taken per UTC hour, so daylight saving is followed)."""
    minutes = np.asarray(minutes, np.int64)
    if not len(minutes):
        return np.zeros(0, bool)
    zone = _zone(params.timezone)
    hours = minutes // 60
    uniq, inverse = np.unique(hours, return_inverse=True)
    offsets = np.array(
        [datetime.fromtimestamp(int(h) * 3600, UTC).astimezone(zone).utcoffset().total_seconds() for h in uniq]
    )
    local_minute = minutes + (offsets[inverse] // 60).astype(np.int64)
    hour = (local_minute % 1440) // 60
    start, end = params.night_hours
    return (hour >= start) & (hour < end) if start < end else (hour >= start) | (hour < end)


def excluded_minutes(
    alerts: list[tuple[datetime, datetime | None]], window_s: int, first: int, end: int
) -> list[tuple[int, int]]:
    """The minutes ``[a, b)`` within ``[first, end)`` that the baseline leaves out for the patient's negative-emotion
    alerts ``(opened_at, resolved_at or None while open)``: from the minute holding ``opened_at - window_s`` (the
    window that opened it) to the minute of ``resolved_at`` inclusive (open: to the end); merged, sorted."""
    spans = []
    for opened_at, resolved_at in alerts:
        a = math.floor((opened_at.timestamp() - window_s) / 60)
        b = math.floor(resolved_at.timestamp() / 60) + 1 if resolved_at is not None else end
        a, b = max(a, first), min(b, end)
        if a < b:
            spans.append((a, b))
    merged: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


@dataclass(frozen=True)
class Thresholds:
    """The thresholds the rule applies to one patient now: the plain ones, or raised by the patient's baseline."""

    open_at: float
    close_below: float
    baseline: Baseline | None = None  # the baseline applied (rule on, enough observations), else None
    raised_by: float = 0.0  # open_at - plain_open_at (= close_below - plain_close_below): the baseline's rise
    capped: bool = False  # baseline + margin was above the ceiling
    night_raise: float = 0.0  # the night's rise of the plain thresholds and the ceiling (0 by day)
    plain: tuple[float, float] | None = None  # the plain open / close thresholds (night-raised at night)

    @property
    def plain_open_at(self) -> float:
        return self.plain[0] if self.plain is not None else self.open_at - self.raised_by

    @property
    def plain_close_below(self) -> float:
        return self.plain[1] if self.plain is not None else self.close_below - self.raised_by


def thresholds(params: RuleParams, baseline: Baseline | None, night: bool = False) -> Thresholds:
    """``open_share`` / ``close_share``, or with a baseline of at least ``baseline_min_obs`` observations (and
    ``baseline_s`` > 0): open at ``max(open_share, min(baseline + baseline_margin, baseline_ceiling))``, close
    below ``close_share`` plus the same rise (the hysteresis gap stays).  ``night``: open_share, close_share and
    the ceiling are ``night_raise`` higher."""
    lift = params.night_raise if night else 0.0
    open_share, close_share = params.open_share + lift, params.close_share + lift
    ceiling = min(1.0, params.baseline_ceiling + lift)
    plain = (open_share, close_share)
    if params.baseline_s <= 0 or baseline is None or baseline.n < params.baseline_min_obs:
        return Thresholds(open_share, close_share, night_raise=lift, plain=plain)
    wanted = baseline.usual(params) + params.baseline_margin
    capped = wanted > ceiling
    raised = max(0.0, min(wanted, ceiling) - open_share)
    return Thresholds(open_share + raised, close_share + raised, baseline, raised, capped and raised > 0, lift, plain)


@dataclass(frozen=True)
class ManualResolve:
    """A clinician resolved the patient's alert by hand at ``at``; ``level`` is the score then dismissed;
    ``finding``: what the clinician found (``distress_seen``, ``no_distress_seen`` or None: not said)."""

    at: datetime
    level: float
    finding: str | None = None


def reopen_level(params: RuleParams, last: ManualResolve | None, now: datetime, open_at: float | None = None) -> float:
    """The score that opens an alert now: ``open_at`` (default ``open_share``; with a baseline, the raised
    threshold), or during the cool-down after a manual resolve (:meth:`RuleParams.cooldown_for`) the resolved level
    plus ``reopen_margin`` if that is higher (above 1: no reopening in the cool-down)."""
    base = params.open_share if open_at is None else open_at
    if last is None:
        return base
    cooldown_s = params.cooldown_for(last.finding)
    if cooldown_s <= 0 or now - last.at >= timedelta(seconds=cooldown_s) or now < last.at:
        return base
    return max(base, last.level + params.reopen_margin)


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
    baseline: Baseline | None = None,
) -> NegativeDecision:
    """Decide for one patient: open, keep, resolve or nothing (see the module doc); ``baseline``: the patient's
    usual score over the baseline period (used when ``params.baseline_s`` > 0, see :func:`thresholds`)."""
    enough = stats is not None and stats.n >= params.min_obs
    score = stats.score(params.measure) if stats is not None else 0.0
    th = thresholds(params, baseline, params.night_raise > 0 and params.is_night(now))
    if not is_open:
        if not enough:
            return NegativeDecision("none", "insufficient evidence")
        short = too_short(stats, params, now)
        if short:
            return NegativeDecision("none", short)
        if score < th.open_at:
            return NegativeDecision("none", f"score {score:.2f} below {th.open_at:.2f}")
        needed = reopen_level(params, last_manual, now, th.open_at)
        if score < needed:
            return NegativeDecision("none", f"cool-down after manual resolve: score {score:.2f} below {needed:.2f}")
        if snoozed:
            return NegativeDecision("none", "snoozed")
        return NegativeDecision("open", f"score {score:.2f} >= {needed:.2f} over {stats.n} observations")
    if not enough:
        return NegativeDecision("keep", "insufficient evidence to resolve")
    if score >= th.close_below:
        return NegativeDecision("keep", f"score {score:.2f} not below {th.close_below:.2f}")
    since = below_close_since if below_close_since is not None and below_close_since <= now else now
    if now - since >= timedelta(seconds=params.resolve_period_s):
        return NegativeDecision("resolve", f"score below {th.close_below:.2f} since {since.isoformat()}", since)
    return NegativeDecision("keep", f"score below {th.close_below:.2f}, waiting for the resolve period", since)


def too_short(stats: WindowStats | None, params: RuleParams, now: datetime) -> str:
    """Why the window's observations cannot open an alert yet: they span less than ``min_span`` of the window
    (the first of them, set-aside ones included, is less than ``min_span * window_s`` old: a patient just seen
    again, or a camera just started, has only a handful of faces to judge on); "" when they span enough or the
    first observation's time is not known."""
    if params.min_span <= 0 or stats is None or stats.first_at is None:
        return ""
    span = (now - stats.first_at).total_seconds()
    needed = params.min_span * params.window_s
    if span >= needed:
        return ""
    return f"observations span {span:.0f} s of the window, {needed:.0f} s needed"


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


def camera_is_offline(*, last_frame_at: datetime | None, created_at: datetime, now: datetime, offline_s: float) -> bool:
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
