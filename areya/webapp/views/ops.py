"""Operational view (camera health, queue lag, worker throughput) and the Prometheus ``/metrics`` endpoint."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, abort, render_template
from sqlalchemy import select

from areya.db.models import Camera
from areya.webapp.ops_metrics import RateTracker, by_label, parse_prometheus, total
from areya.webapp.security import ADMIN, roles
from areya.webapp.services import db, services

bp = Blueprint("ops", __name__)
_rates = RateTracker()


def _metrics_text() -> str | None:
    client = services().redis
    if client is None:
        return None
    from areya.metrics import render_metrics

    try:
        return render_metrics(client, services().settings)
    except Exception:  # noqa: BLE001 - Redis away: the page says so
        return None


@bp.route("/metrics")
@roles(*ADMIN)
def metrics() -> Response:
    text = _metrics_text()
    if text is None:
        abort(503, description="metrics unavailable: Redis is not reachable")
    from areya.metrics import CONTENT_TYPE

    return Response(text, content_type=CONTENT_TYPE)


@bp.route("/ops")
@roles(*ADMIN)
def ops() -> str:
    from areya.camera.health import read_health

    text = _metrics_text()
    samples = parse_prometheus(text) if text is not None else {}
    client = services().redis
    now = time.time()
    cameras: list[dict[str, Any]] = []
    for cam in db().scalars(select(Camera).order_by(Camera.ward_id, Camera.name)):
        health: dict[str, Any] = {}
        if client is not None:
            try:
                health = read_health(client, cam.id)
            except Exception:  # noqa: BLE001
                health = {}
        last = health.get("last_frame_at")
        cameras.append(
            {
                "camera": cam,
                "status": "disabled" if not cam.enabled else health.get("status") or cam.health_status,
                "fps": health.get("actual_fps"),
                "age": (now - last) if last else None,
                "last_error": health.get("last_error") or cam.last_error,
                "reconnects": health.get("reconnects"),
                "frames": health.get("frames"),
            }
        )
    processed = total(samples, "areya_frames_processed_total")
    observations = total(samples, "areya_observations_written_total")
    queue = {
        "length": total(samples, "areya_stream_length"),
        "pending": total(samples, "areya_stream_pending"),
        "lag_s": total(samples, "areya_stream_lag_seconds"),
        "consumers": total(samples, "areya_stream_consumers"),
        "dead_letters": total(samples, "areya_dead_letter_length"),
        "dropped": total(samples, "areya_frames_dropped_total"),
        "published": total(samples, "areya_frames_published_total"),
    }
    worker = {
        "processed": processed,
        "observations": observations,
        "errors": total(samples, "areya_worker_errors_total"),
        "faces": total(samples, "areya_faces_detected_total"),
        "processed_rate": _rates.rate("processed", processed),
        "observation_rate": _rates.rate("observations", observations),
        "last_batch": {
            w: now - ts for w, ts in by_label(samples, "areya_worker_last_batch_timestamp", "worker").items()
        },
    }
    from areya.notify.outbox import outbox_counts, problem_deliveries

    outbox = {"counts": outbox_counts(db()), "problems": problem_deliveries(db(), 50)}
    return render_template(
        "ops.html", cameras=cameras, queue=queue, worker=worker, redis_ok=text is not None, outbox=outbox
    )
