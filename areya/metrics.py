"""Pipeline metrics, shared through Redis, rendered in the Prometheus text exposition format.

Processes (workers) accumulate counters and histograms in memory (:class:`Metrics`)
and flush them to Redis hashes after each batch; ingestors' publish/drop counts are
kept by the stream's Lua script.  Any process (the web app's ``/metrics``) renders
everything with :func:`render_metrics`, adding live gauges read from Redis (queue
length, pending, lag, dead letters, camera health).
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from typing import Any

import redis

COUNTERS_KEY = "areya:metrics:counters"
HISTOGRAMS_KEY = "areya:metrics:histograms"
GAUGES_KEY = "areya:metrics:gauges"
WORKER_GROUP = "areya-workers"

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
HISTOGRAM_BUCKETS: dict[str, tuple[float, ...]] = {"areya_batch_size": SIZE_BUCKETS}

# name -> (type, help).  Everything rendered is declared here.
METRICS: dict[str, tuple[str, str]] = {
    "areya_frames_published_total": ("counter", "Frames sampled by ingestors and appended to the stream."),
    "areya_frames_dropped_total": (
        "counter",
        "Frames lost before processing (trimmed from the capped stream, "
        "Redis unreachable, or lost with a dead worker).",
    ),
    "areya_frames_processed_total": ("counter", "Frames processed and acknowledged after the DB commit."),
    "areya_frames_dead_lettered_total": ("counter", "Frames moved to the dead-letter stream, by reason."),
    "areya_faces_detected_total": ("counter", "Faces detected in processed frames."),
    "areya_faces_assigned_total": ("counter", "Faces mapped to an admitted patient (observations)."),
    "areya_faces_unassigned_total": ("counter", "Faces not stored: outside every bed zone or in an empty bed."),
    "areya_observations_written_total": ("counter", "Observation rows inserted."),
    "areya_observations_duplicate_total": ("counter", "Observations skipped as already stored (re-delivery)."),
    "areya_worker_errors_total": ("counter", "Worker errors by stage (retried; frames are not acknowledged)."),
    "areya_batch_size": ("histogram", "Frames per worker batch."),
    "areya_stage_seconds": ("histogram", "Worker time per batch and stage."),
    "areya_frame_latency_seconds": ("histogram", "Capture to database commit, per frame."),
    "areya_stream_length": ("gauge", "Frames in the stream (delivered or not)."),
    "areya_stream_pending": ("gauge", "Frames delivered to a worker and not yet acknowledged."),
    "areya_stream_lag_seconds": ("gauge", "Age of the oldest frame no worker has read yet (0 if none)."),
    "areya_stream_consumers": ("gauge", "Workers registered in the consumer group."),
    "areya_dead_letter_length": ("gauge", "Entries in the dead-letter stream."),
    "areya_camera_up": ("gauge", "1 if the camera delivers frames, 0 otherwise."),
    "areya_camera_fps": ("gauge", "Frames per second actually sampled from the camera."),
    "areya_camera_last_frame_age_seconds": ("gauge", "Seconds since the camera's last frame."),
    "areya_worker_last_batch_timestamp": ("gauge", "Epoch seconds of each worker's last batch."),
}

Labels = tuple[tuple[str, str], ...]


def _labels(labels: dict[str, Any] | None) -> Labels:
    return tuple(sorted((str(k), str(v)) for k, v in (labels or {}).items()))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt_labels(labels: Labels, extra: tuple[tuple[str, str], ...] = ()) -> str:
    items = list(labels) + list(extra)
    if not items:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in items) + "}"


def _field(name: str, labels: Labels) -> str:
    return name + _fmt_labels(labels)


def _parse_field(text: str) -> tuple[str, Labels]:
    name, brace, rest = text.partition("{")
    if not brace:
        return name, ()
    out = []
    body = rest[:-1]
    i = 0
    while i < len(body):
        eq = body.index("=", i)
        key = body[i:eq]
        j = eq + 2
        value = []
        while body[j] != '"':
            if body[j] == "\\":
                j += 1
                value.append({"n": "\n"}.get(body[j], body[j]))
            else:
                value.append(body[j])
            j += 1
        out.append((key, "".join(value)))
        i = j + 2  # skip '",'
    return name, tuple(out)


def _fmt_value(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


class Metrics:
    """In-process accumulation, flushed to Redis by :meth:`flush` (thread-safe)."""

    def __init__(self, client: redis.Redis | None) -> None:
        self.client = client
        self._lock = threading.Lock()
        self._counters: dict[str, float] = defaultdict(float)
        self._hist: dict[str, int] = defaultdict(int)
        self._hist_sum: dict[str, float] = defaultdict(float)
        self._gauges: dict[str, float] = {}
        # totals kept for the process itself (tests, bench, logs)
        self.totals: dict[str, float] = defaultdict(float)

    def inc(self, name: str, value: float = 1.0, **labels: Any) -> None:
        if value == 0:
            return
        key = _field(name, _labels(labels))
        with self._lock:
            self._counters[key] += value
            self.totals[key] += value

    def observe(self, name: str, value: float, **labels: Any) -> None:
        buckets = HISTOGRAM_BUCKETS.get(name, LATENCY_BUCKETS)
        lab = _labels(labels)
        bound = next((b for b in buckets if value <= b), math.inf)
        with self._lock:
            self._hist[_field(name, lab + (("le", _fmt_value(bound)),))] += 1
            self._hist_sum[_field(name + "_sum", lab)] += value
            self._hist[_field(name + "_count", lab)] += 1

    def set_gauge(self, name: str, value: float, **labels: Any) -> None:
        with self._lock:
            self._gauges[_field(name, _labels(labels))] = value

    def total(self, name: str, **labels: Any) -> float:
        return self.totals.get(_field(name, _labels(labels)), 0.0)

    def flush(self) -> bool:
        """Add the accumulated values to Redis; keeps them for the next flush if Redis is unreachable."""
        if self.client is None:
            return True
        with self._lock:
            counters, hist, sums, gauges = (
                dict(self._counters),
                dict(self._hist),
                dict(self._hist_sum),
                dict(self._gauges),
            )
            self._counters.clear()
            self._hist.clear()
            self._hist_sum.clear()
            self._gauges.clear()
        if not (counters or hist or sums or gauges):
            return True
        try:
            pipe = self.client.pipeline(transaction=False)
            for key, value in counters.items():
                pipe.hincrbyfloat(COUNTERS_KEY, key, value)
            for key, value in hist.items():
                pipe.hincrby(HISTOGRAMS_KEY, key, value)
            for key, value in sums.items():
                pipe.hincrbyfloat(HISTOGRAMS_KEY, key, value)
            if gauges:
                pipe.hset(GAUGES_KEY, mapping={k: repr(float(v)) for k, v in gauges.items()})
            pipe.execute()
            return True
        except redis.RedisError:
            with self._lock:  # put them back: nothing is lost while Redis is away
                for key, value in counters.items():
                    self._counters[key] += value
                for key, value in hist.items():
                    self._hist[key] += value
                for key, value in sums.items():
                    self._hist_sum[key] += value
                for key, value in gauges.items():
                    self._gauges.setdefault(key, value)
            return False


def _stream_gauges(client: redis.Redis, stream: str, group: str, now: float) -> dict[str, float]:
    out = {
        "areya_stream_length": 0.0,
        "areya_stream_pending": 0.0,
        "areya_stream_lag_seconds": 0.0,
        "areya_stream_consumers": 0.0,
    }
    if not client.exists(stream):
        return out
    out["areya_stream_length"] = float(client.xlen(stream))
    last_delivered = "0-0"
    for info in client.xinfo_groups(stream):
        name = info["name"].decode() if isinstance(info["name"], bytes) else info["name"]
        if name == group:
            out["areya_stream_pending"] = float(info["pending"])
            out["areya_stream_consumers"] = float(info["consumers"])
            ld = info["last-delivered-id"]
            last_delivered = ld.decode() if isinstance(ld, bytes) else ld
    ms, _, seq = last_delivered.partition("-")
    start = f"{ms}-{int(seq) + 1}"
    oldest = client.xrange(stream, min=start, count=1)
    if oldest:
        first_id = oldest[0][0].decode()
        out["areya_stream_lag_seconds"] = max(0.0, now - int(first_id.split("-")[0]) / 1000.0)
    return out


def render_metrics(client: redis.Redis, settings: Any = None, *, now: float | None = None) -> str:
    """All pipeline metrics in the Prometheus text format (version 0.0.4)."""
    from areya.camera.health import read_health  # noqa: PLC0415
    from areya.comms.frames import read_counters  # noqa: PLC0415

    now = time.time() if now is None else now
    stream = getattr(settings, "frame_stream", "areya:frames")
    dead = getattr(settings, "dead_letter_stream", "areya:deadletter")
    samples: dict[str, list[tuple[str, Labels, float]]] = defaultdict(list)

    published, dropped = read_counters(client, stream)
    for cam, n in sorted(published.items()):
        samples["areya_frames_published_total"].append(("", (("camera", cam),), n))
    for (cam, reason), n in sorted(dropped.items()):
        samples["areya_frames_dropped_total"].append(("", (("camera", cam), ("reason", reason)), n))

    for key, value in client.hgetall(COUNTERS_KEY).items():
        name, labels = _parse_field(key.decode())
        samples[name].append(("", labels, float(value)))
    hist: dict[tuple[str, Labels], dict[str, float]] = defaultdict(dict)
    for key, value in client.hgetall(HISTOGRAMS_KEY).items():
        name, labels = _parse_field(key.decode())
        for suffix in ("_sum", "_count"):
            if name.endswith(suffix):
                hist[(name[: -len(suffix)], labels)][suffix] = float(value)
                break
        else:
            le = dict(labels).get("le", "+Inf")
            base = tuple(kv for kv in labels if kv[0] != "le")
            hist[(name, base)][le] = float(value)
    for key, value in client.hgetall(GAUGES_KEY).items():
        name, labels = _parse_field(key.decode())
        samples[name].append(("", labels, float(value)))

    for name, value in _stream_gauges(client, stream, WORKER_GROUP, now).items():
        samples[name].append(("", (), value))
    samples["areya_dead_letter_length"].append(("", (), float(client.xlen(dead)) if client.exists(dead) else 0.0))

    for key in sorted(client.scan_iter(match="areya:camera:*:health", count=500)):
        cam = key.decode().split(":")[2]
        health = read_health(client, int(cam)) if cam.isdigit() else {}
        if not health:
            continue
        lab = (("camera", cam),)
        samples["areya_camera_up"].append(("", lab, 1.0 if health.get("status") == "online" else 0.0))
        samples["areya_camera_fps"].append(("", lab, health.get("actual_fps") or 0.0))
        if health.get("last_frame_at"):
            samples["areya_camera_last_frame_age_seconds"].append(("", lab, max(0.0, now - health["last_frame_at"])))

    lines: list[str] = []
    for name, (kind, help_text) in METRICS.items():
        if kind == "histogram":
            series = sorted((labels, data) for (n, labels), data in hist.items() if n == name)
            if not series:
                continue
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
            for labels, data in series:
                cumulative = 0.0
                for bound in HISTOGRAM_BUCKETS.get(name, LATENCY_BUCKETS):
                    cumulative += data.get(_fmt_value(bound), 0.0)
                    lines.append(
                        f"{name}_bucket{_fmt_labels(labels, (('le', _fmt_value(bound)),))} {_fmt_value(cumulative)}"
                    )
                total = data.get("_count", cumulative)
                lines.append(f"{name}_bucket{_fmt_labels(labels, (('le', '+Inf'),))} {_fmt_value(total)}")
                lines.append(f"{name}_sum{_fmt_labels(labels)} {_fmt_value(data.get('_sum', 0.0))}")
                lines.append(f"{name}_count{_fmt_labels(labels)} {_fmt_value(total)}")
            continue
        rows = samples.get(name)
        if not rows:
            continue
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        for _, labels, value in sorted(rows):
            lines.append(f"{name}{_fmt_labels(labels)} {_fmt_value(value)}")
    return "\n".join(lines) + "\n"


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
