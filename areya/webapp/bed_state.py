"""A bed's one state, in the words a nurse uses, from one source of truth: the bed's open alert and its evidence,
the alert rule's window now, the latest manual resolve and the bed's cameras.

Every surface that shows a bed (the ward view, the central station, the patient page, the tile JSON) reads the
state from here, so the headline emotion can never contradict it: a bed that needs attention shows the negative
emotion the alert is about, never the window's most frequent label when that is a calm one.

Groups, in the order of need (the central station sorts by them):

0. **Needs attention**: a sustained negative emotion alert is open ("Needs attention — sad for 12 min").
1. **Still low mood**: a clinician resolved the alert less than the cool-down ago and the window still reads at or
   above the level the rule would keep an alert open at ("Resolved by doctor at 10:02 · still low mood · re-alerts
   if it worsens or after 10:32").  Not when the clinician found **no distress** at the bedside: that look is
   the patient's usual one, and the bed is calm ("Found calm": "No distress seen by doctor at 10:02 · reads low
   mood as then · re-alerts before 10:02 tomorrow only if it reads clearly worse (above 90%)").
2. **Not monitored**: the bed's cameras are offline, off or missing, or an open technical alert covers them
   ("Camera offline — this bed is not monitored"); or no readable face ("Face not clearly visible", "No face seen
   for 12 min").
3. **Calm**: readings below the alert level ("Calm"; a negative emotion below the alert level says so).
4. No patient: an empty bed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from areya.alerts.evidence import NegativeEvidence
from areya.alerts.rules import NO_DISTRESS
from areya.webapp.fmt import duration, local

NEEDS_ATTENTION, STILL_NEGATIVE, NOT_MONITORED, CALM, EMPTY = range(5)
GROUPS: tuple[tuple[str, str], ...] = (
    ("attention", "Needs attention"),
    ("still", "Still low mood"),
    ("unmonitored", "Not monitored"),
    ("calm", "Calm"),
    ("empty", "Empty bed"),
)
NEGATIVE = ("sad", "angry")
MOOD_WORDS = {"sad": "low mood", "angry": "angry"}
CAMERA_DOWN = {
    "offline": "Camera offline",
    "error": "Camera offline",
    "ended": "Camera video ended",
    "disabled": "Camera turned off",
    "none": "No camera covers this bed",
}
NOT_MONITORED_TEXT = "this bed is not monitored"
TECHNICAL_TITLES = {"camera_offline": "Camera offline", "pipeline_stalled": "Camera feed not analysed"}


@dataclass(frozen=True)
class OpenAlert:
    """The bed's open negative-emotion alert, as the state needs it."""

    alert_id: int
    state: str  # firing | acknowledged
    opened_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    escalation_level: int = 0


@dataclass(frozen=True)
class RecentResolve:
    """The patient's latest alert a clinician resolved by hand, still in its cool-down."""

    alert_id: int
    resolved_at: datetime
    resolved_by: str
    until: datetime  # the end of the cool-down: after it the plain threshold opens again
    reopen_at: float | None = None  # the score that reopens it before then (None: unknown)
    finding: str | None = None  # what the clinician found at the bedside (no_distress_seen: the look is usual)


@dataclass(frozen=True)
class BedState:
    """What one bed's tile says: the group (order of need), a title, the sentence, the headline emotion (None:
    no emotion shown), the evidence in clinical words, the technical measure (folded under "details"), when it
    began (longest first within a group) and a secondary note."""

    group: int
    title: str
    text: str
    headline: str | None = None
    evidence: str | None = None
    details: str | None = None
    since: datetime | None = None
    note: str | None = None
    firing: bool = False

    @property
    def key(self) -> str:
        return GROUPS[self.group][0]

    @property
    def group_title(self) -> str:
        return GROUPS[self.group][1]

    def sort_key(self) -> tuple[Any, ...]:
        """Group, firing before acknowledged, then the longest first."""
        since = self.since.timestamp() if self.since is not None else float("inf")
        return (self.group, 0 if self.firing else 1, since)

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "group": self.group,
            "group_title": self.group_title,
            "title": self.title,
            "text": self.text,
            "headline": self.headline,
            "evidence": self.evidence,
            "details": self.details,
            "since": self.since.isoformat() if self.since is not None else None,
            "note": self.note,
        }


def negative_label(evidence: NegativeEvidence | None) -> str | None:
    """The negative emotion (sad or angry) read most in the evidence, None when neither was read."""
    if evidence is None or evidence.n_obs <= 0:
        return None
    best = max(NEGATIVE, key=lambda lab: (evidence.counts.get(lab, 0), evidence.mean_probs.get(lab, 0.0)))
    return best if evidence.counts.get(best, 0) > 0 else None


def readings_text(evidence: NegativeEvidence, label: str) -> str:
    """``sad in 69 of 98 readings over 5 min``."""
    return f"{label} in {evidence.counts.get(label, 0)} of {evidence.n_obs} readings over {evidence.window_text()}"


def _details(window: NegativeEvidence | None, at_alert: NegativeEvidence | None) -> str | None:
    parts = []
    if window is not None and window.n_obs:
        parts.append(f"now: {window.score_text()}; {window.counts_text()}")
    if at_alert is not None:
        parts.append(f"at alert: {at_alert.score_text()}; {at_alert.counts_text()}")
    return " · ".join(parts) or None


def _camera_problem(camera_status: str, technical: str | None) -> str | None:
    if technical is not None:
        return TECHNICAL_TITLES.get(technical, "Camera problem")
    return CAMERA_DOWN.get(camera_status)


def bed_state(
    *,
    has_patient: bool,
    now: datetime,
    window: NegativeEvidence | None,
    alert_evidence: NegativeEvidence | None,
    open_alert: OpenAlert | None,
    resolve: RecentResolve | None,
    camera_status: str,
    technical: str | None,
    face_unclear: bool,
    last_at: datetime | None,
    tz_name: str = "UTC",
) -> BedState:
    """The one state of a bed (see the module doc); ``technical``: the kind of an open technical alert on one of
    the bed's cameras (None: none)."""
    if not has_patient:
        return BedState(EMPTY, "Empty bed", "No patient in this bed")

    def hm(value: datetime) -> str:
        return local(value, tz_name, "%H:%M")

    details = _details(window, alert_evidence)
    aside = window.set_aside_text() if window is not None else None
    camera = _camera_problem(camera_status, technical)
    camera_note = f"{camera} — {NOT_MONITORED_TEXT}" if camera else None
    if open_alert is not None:
        label = negative_label(window) or negative_label(alert_evidence) or "negative emotion"
        source = window if negative_label(window) else alert_evidence
        minutes = duration((now - open_alert.opened_at).total_seconds())
        note = None
        if open_alert.state == "acknowledged":
            who = open_alert.acknowledged_by or "a colleague"
            at = hm(open_alert.acknowledged_at) if open_alert.acknowledged_at else ""
            note = f"Acknowledged by {who}" + (f" at {at}" if at else "")
        elif open_alert.escalation_level:
            note = f"Not acknowledged: reminder {open_alert.escalation_level}"
        if camera_note:
            note = f"{note} · {camera_note}" if note else camera_note
        return BedState(
            NEEDS_ATTENTION,
            "Needs attention",
            f"Needs attention — {label} for {minutes}",
            headline=label if label in NEGATIVE else None,
            evidence=readings_text(source, label) if source is not None and label in NEGATIVE else None,
            details=details,
            since=open_alert.opened_at,
            note=note,
            firing=open_alert.state == "firing",
        )
    still = negative_label(window)
    # the clinician found no distress in this look, and its cool-down runs: calm at the bedside (below)
    found_calm = resolve is not None and resolve.finding == NO_DISTRESS and resolve.until > now
    if (
        resolve is not None
        and not found_calm
        and resolve.until > now
        and window is not None
        and still is not None
        and window.score >= window.close_below
    ):
        if resolve.reopen_at is None:
            worsens = "if it worsens or "
        elif resolve.reopen_at < 1.0:
            worsens = f"if it worsens (above {resolve.reopen_at:.0%}) or "
        else:  # the level resolved was so high that nothing reads worse: only the end of the cool-down re-alerts
            worsens = ""
        return BedState(
            STILL_NEGATIVE,
            f"Still {MOOD_WORDS[still]}",
            f"Resolved by {resolve.resolved_by} at {hm(resolve.resolved_at)} · still {MOOD_WORDS[still]} · "
            f"re-alerts {worsens}after {hm(resolve.until)}",
            headline=still,
            evidence=readings_text(window, still),
            details=details,
            since=resolve.resolved_at,
            note=camera_note,
        )
    if camera:
        return BedState(NOT_MONITORED, camera, camera_note or camera, details=details, note=aside)
    if face_unclear:
        return BedState(
            NOT_MONITORED,
            "Face not clearly visible",
            "Face not clearly visible — readings set aside, no alert can open",
            details=details,
            note=aside,
        )
    stale = window is None or window.n_obs <= 0
    if stale:
        gone = f"for {duration((now - last_at).total_seconds())}" if last_at is not None else "yet"
        return BedState(
            NOT_MONITORED, "No face seen", f"No face seen {gone} — no alert can open", since=last_at, details=details
        )
    assert window is not None
    dominant = window.dominant
    note = None
    if resolve is not None and resolve.until > now:
        note = f"Resolved by {resolve.resolved_by} at {hm(resolve.resolved_at)}"
    if found_calm and resolve is not None and still is not None:  # the reading said as it is
        day = " tomorrow" if local(resolve.until, tz_name, "%Y-%m-%d") != local(now, tz_name, "%Y-%m-%d") else ""
        worse = f" (above {resolve.reopen_at:.0%})" if resolve.reopen_at is not None and resolve.reopen_at < 1 else ""
        return BedState(
            CALM,
            "Found calm",
            f"No distress seen by {resolve.resolved_by} at {hm(resolve.resolved_at)} · reads {MOOD_WORDS[still]} as "
            f"then · re-alerts before {hm(resolve.until)}{day} only if it reads clearly worse{worse}",
            headline=still,
            evidence=readings_text(window, still),
            details=details,
            since=resolve.resolved_at,
            note=aside,
        )
    if dominant in NEGATIVE:
        return BedState(
            CALM,
            "Below alert level",
            f"{dominant.capitalize()} at times — below the alert level",
            headline=dominant,
            evidence=readings_text(window, dominant),
            details=details,
            note=note or aside,
        )
    share = window.counts.get(dominant or "", 0)
    return BedState(
        CALM,
        "Calm",
        "Calm",
        headline=dominant,
        evidence=f"{dominant} in {share} of {window.n_obs} readings over {window.window_text()}" if dominant else None,
        details=details,
        note=note or aside,
    )
