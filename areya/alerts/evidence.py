"""The evidence of the sustained-negative-emotion rule: one object, computed in one place.

:func:`negative_evidence` turns a patient's window aggregates (:class:`~areya.alerts.rules.WindowStats`) and
the rule parameters into a :class:`NegativeEvidence`: the **score** the rule decides on (under one name, with
its open and close thresholds), the label counts of the same window, the mean probabilities and the window's
bounds.  The rule (:func:`~areya.alerts.rules.evaluate_negative`) compares that score with its thresholds; the
alert stores :meth:`NegativeEvidence.to_json`; the inbox, the ward tile, the timeline, the API and the
webhook / e-mail payloads all show :meth:`NegativeEvidence.public` (or text made from it), so the numbers
never contradict each other.

Two measures exist (setting ``negative_measure``):

* ``probability`` (default) - **Negative probability**: the mean calibrated ``P(angry) + P(sad)`` of the
  window (chosen by ``bench/bench_alert_rules.py``: fewer false alerts than the label share at the same
  sensitivity);
* ``labels`` - **Negative share**: the share of the window's observations labelled angry or sad, i.e.
  ``(angry + sad) / n`` of the counts shown beside it.

With the per-patient baseline (``negative_baseline_s`` > 0, see :func:`areya.alerts.rules.thresholds`) the
evidence also carries the patient's **usual** score (the same measure over the baseline period) and ``open_at`` /
``close_below`` are the thresholds the rule applied, raised by the baseline when it was high enough, beside the
plain ones (``plain_open_at``, ``plain_close_below``): "opens at 61%: this patient's usual 46% + 15".  With
``negative_baseline_by_night`` the usual score is of the same part of the day as now ("this patient's usual at
night 46%"), and at night the plain thresholds are ``night_raise`` higher ("at night +13").

Observations whose face quality was below the rule's ``min_quality`` (setting ``min_face_quality``) are set aside:
the score and counts leave them out, and the evidence says how many there were and why ("12 readings set aside:
face not clearly visible").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from areya.alerts.rules import Baseline, RuleParams, WindowStats, thresholds
from areya.db.models import LABELS4

RULE = "negative_emotion"
MEASURES: dict[str, tuple[str, str]] = {
    "labels": ("Negative share", "share of observations labelled angry or sad"),
    "probability": ("Negative probability", "mean calibrated P(angry) + P(sad)"),
}
DEFAULT_MEASURE = "probability"
SET_ASIDE_REASON = "face not clearly visible"  # why readings below min_face_quality are set aside
LATEST_KEY = "latest"  # the score of the latest tick while the alert was open (kept by the engine)


def pct(value: float) -> str:
    """How every surface writes a score or threshold: ``0.4213`` -> ``"42%"``."""
    return f"{value:.0%}"


def measure_name(measure: str) -> str:
    return MEASURES.get(measure, (measure, ""))[0]


def points(value: float) -> str:
    """A difference of scores in percentage points: ``0.15`` -> ``"15"``."""
    return f"{round(value * 100, 1):g}"


def period_text(seconds: int) -> str:
    """``21600`` -> ``"6 h"``, ``5400`` -> ``"90 min"``."""
    return f"{seconds / 3600:g} h" if seconds % 3600 == 0 else f"{seconds / 60:g} min"


@dataclass(frozen=True)
class NegativeEvidence:
    """One patient's window as the negative-emotion rule sees it."""

    measure: str
    score: float  # the value compared with open_at / close_below
    open_at: float
    close_below: float
    n_obs: int
    min_obs: int
    counts: dict[str, int]
    mean_probs: dict[str, float]
    window_s: int
    window_end: datetime | None
    first_at: datetime | None = None
    last_at: datetime | None = None
    latest_score: float | None = None  # while an alert is open: the score of the latest tick
    latest_at: datetime | None = None
    # the per-patient baseline (areya.alerts.rules.thresholds); baseline_s = 0: off for this patient
    baseline_s: int = 0
    baseline: float | None = None  # the patient's usual score over the baseline period (None: no observations)
    baseline_n: int = 0
    baseline_min_obs: int = 0
    baseline_margin: float = 0.0
    baseline_ceiling: float = 1.0
    baseline_start: datetime | None = None
    baseline_end: datetime | None = None
    plain_open_at: float | None = None  # open_share / close_share before the baseline (None: = open_at)
    plain_close_below: float | None = None
    n_set_aside: int = 0  # observations of the window set aside: face quality below min_quality
    min_quality: float = 0.0
    night_raise: float = 0.0  # the night's rise of the plain thresholds applied now (0 by day)
    baseline_part: str | None = None  # "night" / "day": the baseline read only those minutes of its period
    baseline_quantile: float = 0.0  # > 0: ``baseline`` is the usual high (that quantile of the period's windows)
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def name(self) -> str:
        return measure_name(self.measure)

    @property
    def description(self) -> str:
        return MEASURES.get(self.measure, ("", ""))[1]

    @property
    def judged(self) -> bool:
        """Enough observations for the rule to judge."""
        return self.n_obs >= self.min_obs

    @property
    def window_start(self) -> datetime | None:
        return self.window_end - timedelta(seconds=self.window_s) if self.window_end is not None else None

    @property
    def dominant(self) -> str | None:
        """The window's most frequent label (ties: the higher mean probability), None without observations."""
        if self.n_obs <= 0:
            return None
        return max(LABELS4, key=lambda lab: (self.counts.get(lab, 0), self.mean_probs.get(lab, 0.0)))

    @property
    def dominant_share(self) -> float:
        label = self.dominant
        return self.counts.get(label, 0) / self.n_obs if label and self.n_obs else 0.0

    @property
    def baseline_applied(self) -> bool:
        """The rule is on for this patient and the period held enough observations for a baseline."""
        return self.baseline_s > 0 and self.baseline is not None and self.baseline_n >= self.baseline_min_obs

    @property
    def raised_by(self) -> float:
        """How far the baseline raised the thresholds (0: the plain ones applied)."""
        return max(0.0, self.open_at - self.plain_open_at) if self.plain_open_at is not None else 0.0

    @property
    def capped(self) -> bool:
        return (
            self.raised_by > 0
            and self.baseline is not None
            and self.baseline + self.baseline_margin > self.baseline_ceiling + self.night_raise + 1e-9
        )

    # -- text ------------------------------------------------------------------------------------
    def threshold_text(self) -> str:
        """``opens at 52%``, or raised by the baseline ``opens at 61%: this patient's usual 46% + 15``."""
        text = f"opens at {pct(self.open_at)}"
        if self.baseline_applied and self.raised_by > 0 and self.baseline is not None:
            text += (
                f": this patient's {self._usual()}{self._part()} {pct(self.baseline)} + {points(self.baseline_margin)}"
            )
            if self.capped:
                text += f", capped at {pct(self.baseline_ceiling + self.night_raise)}"
        elif self.night_raise > 0:
            text += f": at night + {points(self.night_raise)}"
        return text

    def _usual(self) -> str:
        return "usual high" if self.baseline_quantile > 0 else "usual"

    def _part(self) -> str:
        return {"night": " at night", "day": " by day"}.get(self.baseline_part or "", "")

    def score_text(self) -> str:
        """``Negative share 42% (opens at 30%)`` (with a baseline: ``... (opens at 61%: this patient's usual ...)``)."""
        return f"{self.name} {pct(self.score)} ({self.threshold_text()})"

    def baseline_text(self) -> str | None:
        """The baseline in words (None when the rule is off for this patient)."""
        if self.baseline_s <= 0:
            return None
        period = f"the {period_text(self.baseline_s)} before the window"
        if self.baseline_part in ("night", "day"):
            period = f"the {'night' if self.baseline_part == 'night' else 'day'} minutes of {period}"
        if not self.baseline_applied:
            return (
                f"not known yet: {self.baseline_n:,} of {self.baseline_min_obs:,} observations in {period} "
                f"(alert periods left out); plain thresholds"
            )
        assert self.baseline is not None
        level = pct(self.baseline)
        if self.baseline_quantile > 0:
            level += f" (the {self.baseline_quantile:.0%} quantile of its windows)"
        text = f"{level} over {period} ({self.baseline_n:,} observations, alert periods left out)"
        if self.raised_by > 0:
            text += f"; thresholds raised {points(self.raised_by)} points from {pct(self.plain_open_at or 0)}"
            return text + (f" (at night + {points(self.night_raise)})" if self.night_raise > 0 else "")
        plain = self.plain_open_at if self.plain_open_at is not None else self.open_at
        return text + f"; + {points(self.baseline_margin)} is below {pct(plain)}: plain thresholds"

    def counts_text(self) -> str:
        """``angry 3 · happy 120 · relaxed 70 · sad 16 of 209``."""
        return " · ".join(f"{lab} {self.counts.get(lab, 0)}" for lab in LABELS4) + f" of {self.n_obs}"

    def set_aside_text(self) -> str | None:
        """``12 readings set aside: face not clearly visible`` (None when none were)."""
        if self.n_set_aside <= 0:
            return None
        noun = "reading" if self.n_set_aside == 1 else "readings"
        return f"{self.n_set_aside:,} {noun} set aside: {SET_ASIDE_REASON}"

    def window_text(self) -> str:
        minutes = self.window_s / 60
        return f"{minutes:g} min" if minutes >= 1 else f"{self.window_s} s"

    def headline(self) -> str:
        """One line for notes, e-mails and titles: score, threshold, counts and window."""
        text = f"{self.score_text()}; {self.counts_text()} observations in {self.window_text()}"
        aside = self.set_aside_text()
        return f"{text}; {aside}" if aside else text

    # -- JSON --------------------------------------------------------------------------------------
    def public(self) -> dict[str, Any]:
        """The summary every surface shows (tile JSON, API, webhook and e-mail payloads)."""
        return {
            "rule": RULE,
            "measure": self.measure,
            "name": self.name,
            "score": round(self.score, 4),
            "open_at": self.open_at,
            "close_below": self.close_below,
            "n_obs": self.n_obs,
            "min_obs": self.min_obs,
            "counts": {lab: int(self.counts.get(lab, 0)) for lab in LABELS4},
            "dominant": self.dominant,
            "window_s": self.window_s,
            "window_start": _iso(self.window_start),
            "window_end": _iso(self.window_end),
            "latest_score": None if self.latest_score is None else round(self.latest_score, 4),
            "latest_at": _iso(self.latest_at),
            "baseline": self.baseline_public(),
            "set_aside": {"n": self.n_set_aside, "reason": SET_ASIDE_REASON, "min_quality": self.min_quality},
            "headline": self.headline(),
        }

    def baseline_public(self) -> dict[str, Any] | None:
        """The baseline part of :meth:`public` (None when the rule is off for this patient)."""
        if self.baseline_s <= 0:
            return None
        return {
            "applied": self.baseline_applied,
            "usual": None if self.baseline is None else round(self.baseline, 4),
            "n_obs": self.baseline_n,
            "min_obs": self.baseline_min_obs,
            "period_s": self.baseline_s,
            "start": _iso(self.baseline_start),
            "end": _iso(self.baseline_end),
            "margin": self.baseline_margin,
            "ceiling": self.baseline_ceiling,
            "plain_open_at": self.plain_open_at,
            "plain_close_below": self.plain_close_below,
            "raised_by": round(self.raised_by, 4),
            "part": self.baseline_part,
            "quantile": self.baseline_quantile,
            "night_raise": self.night_raise,
        }

    def to_json(self) -> dict[str, Any]:
        """What an alert stores (the public summary plus the raw aggregates and the legacy keys)."""
        n = self.n_obs
        negative_labels = sum(self.counts.get(lab, 0) for lab in ("angry", "sad"))
        out = self.public()
        del out["latest_score"], out["latest_at"], out["headline"]
        out.update(
            {
                "min_obs": self.min_obs,
                "open_share": self.open_at,  # legacy names of the thresholds
                "close_share": self.close_below,
                "share": round(sum(self.mean_probs.get(lab, 0.0) for lab in ("angry", "sad")), 4),
                "label_share": round(negative_labels / n, 4) if n else 0.0,
                "mean_probs": {lab: round(self.mean_probs.get(lab, 0.0), 4) for lab in LABELS4},
                "first_at": _iso(self.first_at),
                "last_at": _iso(self.last_at),
            }
        )
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> NegativeEvidence | None:
        """Back from an alert's stored evidence (alerts from before ``measure`` existed read as probability)."""
        if not data or ("score" not in data and "share" not in data):
            return None
        measure = str(data.get("measure") or "probability")
        score = float(data["score"] if "score" in data else data["share"])
        latest = data.get(LATEST_KEY) if isinstance(data.get(LATEST_KEY), dict) else {}
        base = data.get("baseline") if isinstance(data.get("baseline"), dict) else {}
        aside = data.get("set_aside") if isinstance(data.get("set_aside"), dict) else {}
        return cls(
            measure=measure,
            score=score,
            open_at=float(data.get("open_at", data.get("open_share", 0.0)) or 0.0),
            close_below=float(data.get("close_below", data.get("close_share", 0.0)) or 0.0),
            n_obs=int(data.get("n_obs") or 0),
            min_obs=int(data.get("min_obs") or 0),
            counts={lab: int((data.get("counts") or {}).get(lab, 0)) for lab in LABELS4},
            mean_probs={lab: float((data.get("mean_probs") or {}).get(lab, 0.0)) for lab in LABELS4},
            window_s=int(data.get("window_s") or 0),
            window_end=_parse(data.get("window_end")),
            first_at=_parse(data.get("first_at")),
            last_at=_parse(data.get("last_at")),
            latest_score=float(latest["score"]) if latest.get("score") is not None else None,
            latest_at=_parse(latest.get("at")),
            baseline_s=int(base.get("period_s") or 0),
            baseline=float(base["usual"]) if base.get("usual") is not None else None,
            baseline_n=int(base.get("n_obs") or 0),
            baseline_min_obs=int(base.get("min_obs") or 0),
            baseline_margin=float(base.get("margin") or 0.0),
            baseline_ceiling=float(base.get("ceiling") or 1.0),
            baseline_start=_parse(base.get("start")),
            baseline_end=_parse(base.get("end")),
            plain_open_at=float(base["plain_open_at"]) if base.get("plain_open_at") is not None else None,
            plain_close_below=float(base["plain_close_below"]) if base.get("plain_close_below") is not None else None,
            n_set_aside=int(aside.get("n") or 0),
            min_quality=float(aside.get("min_quality") or 0.0),
            night_raise=float(base.get("night_raise") or 0.0),
            baseline_part=str(base["part"]) if base.get("part") in ("night", "day") else None,
            baseline_quantile=float(base.get("quantile") or 0.0),
        )

    def resolved_level(self) -> float:
        """The level a clinician dismissed by resolving: the higher of the score at open and the latest one."""
        return max(self.score, self.latest_score if self.latest_score is not None else self.score)


def negative_evidence(
    stats: WindowStats | None, params: RuleParams, now: datetime, baseline: Baseline | None = None
) -> NegativeEvidence:
    """The evidence of one patient's window ``(now - params.window_s, now]`` (empty window: score 0), with the
    thresholds the rule applies (raised by ``baseline``, the patient's usual score, when the rule uses one)."""
    th = thresholds(params, baseline, params.night_raise > 0 and params.is_night(now))
    on = params.baseline_s > 0
    n = stats.n if stats is not None else 0
    counts = {lab: int(stats.counts.get(lab, 0)) if stats is not None else 0 for lab in LABELS4}
    mean_probs = {lab: (stats.prob_sums.get(lab, 0.0) / n if stats is not None and n else 0.0) for lab in LABELS4}
    return NegativeEvidence(
        measure=params.measure,
        score=stats.score(params.measure) if stats is not None else 0.0,
        open_at=th.open_at,
        close_below=th.close_below,
        n_obs=n,
        min_obs=params.min_obs,
        counts=counts,
        mean_probs=mean_probs,
        window_s=params.window_s,
        window_end=now,
        first_at=stats.first_at if stats is not None else None,
        last_at=stats.last_at if stats is not None else None,
        baseline_s=params.baseline_s if on else 0,
        baseline=baseline.usual(params) if on and baseline is not None and baseline.n else None,
        baseline_n=baseline.n if on and baseline is not None else 0,
        baseline_min_obs=params.baseline_min_obs if on else 0,
        baseline_margin=params.baseline_margin if on else 0.0,
        baseline_ceiling=params.baseline_ceiling if on else 1.0,
        baseline_start=baseline.start if on and baseline is not None else None,
        baseline_end=baseline.end if on and baseline is not None else None,
        plain_open_at=th.plain_open_at if on else None,
        plain_close_below=th.plain_close_below if on else None,
        n_set_aside=stats.n_set_aside if stats is not None else 0,
        min_quality=params.min_quality,
        night_raise=th.night_raise,
        baseline_part=baseline.part if on and baseline is not None else None,
        baseline_quantile=params.baseline_quantile if on else 0.0,
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None
