"""What the worker says about each bed's bedside, and the admins' corrections it reads, in Redis.

``areya:bed:{id}:bedside`` (JSON, expires after :data:`STATE_TTL_S`): when the worker last judged the bed's faces,
when someone other than the patient was last seen in its zone and how many, and its face tracks with their roles
(where each face was, lying or not, since when: never a picture).  The ward tile shows "Someone else at the
bedside" from it; the patient page lists the tracks so that an admin can correct the decision.

``areya:bed:{id}:role_fix`` (JSON, kept a day): the latest correction (``patient`` / ``not_patient`` / ``auto``,
the track, who, when) with a sequence number; every worker applies each correction once
(:meth:`areya.detectors.roles.BedRoles.correct`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

STATE_KEY = "areya:bed:{bed_id}:bedside"
FIX_KEY = "areya:bed:{bed_id}:role_fix"
FIX_SEQ_KEY = "areya:bed:role_fix_seq"
STATE_TTL_S = 600
FIX_TTL_S = 24 * 3600
PRESENCE_S = 60.0  # someone else seen within this many seconds: "at the bedside"
ACTIONS = ("patient", "not_patient", "auto")


def state_key(bed_id: int) -> str:
    return STATE_KEY.format(bed_id=bed_id)


def fix_key(bed_id: int) -> str:
    return FIX_KEY.format(bed_id=bed_id)


def publish_states(client: Any, states: dict[int, dict[str, Any]], at: float | None = None) -> None:
    """Write each bed's state (``BedRoles.snapshot`` plus ``at``) in one round trip."""
    if not states:
        return
    now = time.time() if at is None else at
    pipe = client.pipeline(transaction=False)
    for bed_id, state in states.items():
        pipe.set(state_key(bed_id), json.dumps({**state, "at": now}), ex=STATE_TTL_S)
    pipe.execute()


def read_state(client: Any, bed_id: int) -> dict[str, Any] | None:
    """The bed's last published state, or None (none, expired, Redis away or unreadable)."""
    try:
        raw = client.get(state_key(bed_id))
        return json.loads(raw) if raw else None
    except Exception:  # noqa: BLE001 - Redis away or a stray value: nothing known
        return None


def others_present(state: dict[str, Any] | None, now: float, within_s: float = PRESENCE_S) -> int:
    """How many other people the bed's zone held when one was last seen, if that was within ``within_s``; else 0."""
    if not state or state.get("others_at") is None:
        return 0
    try:
        seen = float(state["others_at"])
        count = int(state.get("others") or 1)
    except (TypeError, ValueError):
        return 0
    return max(1, count) if 0 <= now - seen <= within_s else 0


def post_correction(client: Any, bed_id: int, action: str, track: int | None, by: str) -> dict[str, Any]:
    """Store an admin's correction for the workers; returns it (with its sequence number)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown correction {action!r} (one of {', '.join(ACTIONS)})")
    fix = {"n": int(client.incr(FIX_SEQ_KEY)), "action": action, "track": track, "by": by, "at": time.time()}
    client.set(fix_key(bed_id), json.dumps(fix), ex=FIX_TTL_S)
    return fix


def read_corrections(client: Any, bed_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """The latest correction of each of ``bed_ids`` that has one (one round trip)."""
    ids = sorted(set(bed_ids))
    if not ids:
        return {}
    out: dict[int, dict[str, Any]] = {}
    for bed_id, raw in zip(ids, client.mget([fix_key(b) for b in ids]), strict=True):
        if not raw:
            continue
        try:
            fix = json.loads(raw)
            fix["n"] = int(fix["n"])
        except (ValueError, TypeError, KeyError):
            continue
        if fix.get("action") in ACTIONS:
            out[bed_id] = fix
    return out


BEDSIDE_TEXT = "Someone else at the bedside"


def bedside_presence(client: Any, bed_id: int, now: float | None = None) -> tuple[int, str | None]:
    """For a ward tile: how many other people were in the bed's zone when one was last seen within
    :data:`PRESENCE_S` seconds, and the tile's line (None when nobody): staff and visitors are not told apart."""
    if client is None:
        return 0, None
    count = others_present(read_state(client, bed_id), time.time() if now is None else now)
    return count, (BEDSIDE_TEXT if count else None)
