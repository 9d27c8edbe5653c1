"""Health probes for the deployed services (Docker HEALTHCHECK, Kubernetes liveness/readiness, monitoring).

Each probe answers from outside the service's process, from what the service leaves in Redis or on its port:

* ``deps``: the database is reachable and its schema is at the head revision; Redis answers PING.
* ``web``: ``GET /login`` on the dashboard answers 200.
* ``worker``: when frames wait undelivered, a worker of *this host* (consumer names start with the hostname,
  which is the container's or the pod's own) has read from the group within ``max_idle_s``.
* ``ingest``: the freshest camera health record (written every second by the ingest loop) is younger than
  ``max_age_s``; with no enabled camera there is nothing to read and the ingestor is healthy.
* ``scheduler``: Redis answers; if the leader lock is held by this host, its heartbeat is younger than the lock
  period (a standby has nothing to prove: it takes over when the lock expires).
"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

SERVICES = ("deps", "web", "worker", "ingest", "scheduler")


@dataclass(frozen=True)
class Probe:
    ok: bool
    detail: str

    def line(self, service: str) -> str:
        return f"{service}: {'ok' if self.ok else 'unhealthy'}: {self.detail}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def check_redis(client: Any) -> Probe:
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure to answer is the finding
        return Probe(False, f"redis not answering: {exc}")
    return Probe(True, "redis answers")


def check_database(settings: Any) -> Probe:
    from areya.db.migrate import current_revision, head_revision

    try:
        current, head = current_revision(settings), head_revision(settings)
    except Exception as exc:  # noqa: BLE001
        return Probe(False, f"database not reachable: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    if current != head:
        return Probe(False, f"database schema at {current or 'nothing'}, not {head}: run `areya db upgrade`")
    return Probe(True, f"database at {head}")


def check_web(url: str, timeout: float = 5.0) -> Probe:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - http(s) URL given by the operator
            status = resp.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        return Probe(False, f"{url}: {getattr(exc, 'reason', exc)}")
    return Probe(status == 200, f"{url} answered {status}")


def _entry_id(value: Any) -> tuple[int, int]:
    ms, _, seq = _text(value).partition("-")
    return int(ms), int(seq or 0)


def check_worker(
    client: Any, stream: str, group: str, *, hostname: str | None = None, max_idle_s: float = 120.0
) -> Probe:
    """Unhealthy when frames wait undelivered and no worker of this host has read for ``max_idle_s``.

    Redis only records a consumer (and refreshes its idle time) when a read hands it entries, so an idle
    worker on an empty stream is indistinguishable from a hung one; a worker with frames waiting is not.
    """
    prefix = f"{hostname or socket.gethostname()}-"
    try:
        last_added = client.xinfo_stream(stream)["last-generated-id"]
        groups = {_text(g["name"]): g for g in client.xinfo_groups(stream)}
        consumers = client.xinfo_consumers(stream, group) if group in groups else []
    except Exception as exc:  # noqa: BLE001 - no stream yet, or Redis away
        return Probe(False, f"stream {stream!r} not readable (no worker has created it yet?): {exc}")
    if group not in groups:
        return Probe(False, f"no consumer group {group!r} on {stream!r}: no worker has started")
    info = groups[group]
    mine = sorted((int(c["idle"]), _text(c["name"])) for c in consumers if _text(c["name"]).startswith(prefix))
    if _entry_id(last_added) <= _entry_id(info["last-delivered-id"]):
        return Probe(
            True, "no frame waiting" + (f"; worker {mine[0][1]} read {mine[0][0] / 1000:.0f}s ago" if mine else "")
        )
    waiting = info.get("lag")
    what = f"{waiting} frame(s)" if waiting is not None else "frames"
    if not mine:
        return Probe(
            False,
            f"{what} waiting and no worker of host {prefix[:-1]!r} in group {group!r} ({len(consumers)} other(s))",
        )
    idle_ms, name = mine[0]
    if idle_ms > max_idle_s * 1000:
        return Probe(False, f"{what} waiting and worker {name} silent for {idle_ms / 1000:.0f}s (> {max_idle_s:g}s)")
    return Probe(True, f"worker {name} read {idle_ms / 1000:.1f}s ago")


def check_ingest(client: Any, camera_ids: Iterable[int], *, max_age_s: float = 30.0, now: float | None = None) -> Probe:
    from areya.camera.health import health_key

    ids = list(camera_ids)
    if not ids:
        return Probe(True, "no enabled camera to read")
    now = time.time() if now is None else now
    try:
        stamps = [client.hget(health_key(cid), "updated_at") for cid in ids]
    except Exception as exc:  # noqa: BLE001
        return Probe(False, f"camera health not readable: {exc}")
    ages = [now - float(_text(s)) for s in stamps if s]
    if not ages:
        return Probe(False, f"no health published yet for {len(ids)} camera(s)")
    freshest = min(ages)
    if freshest > max_age_s:
        return Probe(False, f"camera health not updated for {freshest:.0f}s (> {max_age_s:g}s)")
    return Probe(True, f"{len(ages)}/{len(ids)} camera(s) reporting, freshest {freshest:.1f}s ago")


def check_scheduler(client: Any, *, lock_ttl_s: float, hostname: str | None = None, now: float | None = None) -> Probe:
    from areya.alerts.lock import LOCK_KEY
    from areya.alerts.scheduler import HEARTBEAT_KEY

    host = hostname or socket.gethostname()
    now = time.time() if now is None else now
    try:
        holder = client.get(LOCK_KEY)
        beat = client.hgetall(HEARTBEAT_KEY)
    except Exception as exc:  # noqa: BLE001
        return Probe(False, f"scheduler state not readable: {exc}")
    if holder is None:
        return Probe(True, "no leader at the moment (a scheduler takes the lock on its next tick)")
    holder_s = _text(holder)
    if holder_s.split(":", 1)[0] != host:
        return Probe(True, f"standby; leader is {holder_s}")
    beat_s = {_text(k): _text(v) for k, v in beat.items()}
    if beat_s.get("owner") != holder_s or "at" not in beat_s:
        return Probe(True, f"leader {holder_s} has not finished its first tick yet")
    age = now - float(beat_s["at"])
    if age > lock_ttl_s:
        return Probe(False, f"leader {holder_s} last ticked {age:.0f}s ago (> lock period {lock_ttl_s:g}s)")
    return Probe(True, f"leader {holder_s}, last tick {age:.1f}s ago")


def enabled_camera_ids(session_factory: Any) -> list[int]:
    """The cameras the ingestor reads: enabled ones, less the video files still waiting for a bed zone."""
    from sqlalchemy import select

    from areya.camera.waiting import waiting_for_zones
    from areya.db.models import Camera

    with session_factory() as session:
        waiting = waiting_for_zones(session)
        ids = session.scalars(select(Camera.id).where(Camera.enabled.is_(True)).order_by(Camera.id))
        return [camera_id for camera_id in ids if camera_id not in waiting]
