"""Read the pipeline's Prometheus text (areya.metrics.render_metrics) back into numbers for the ops page."""

from __future__ import annotations

import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line.strip())
        if not match:
            continue
        labels = {k: v.replace('\\"', '"').replace("\\\\", "\\") for k, v in _LABEL.findall(match.group(3) or "")}
        try:
            value = float(match.group(4))
        except ValueError:
            continue
        out[match.group(1)].append((labels, value))
    return out


def total(samples: dict[str, list[tuple[dict[str, str], float]]], name: str) -> float:
    return sum(v for _, v in samples.get(name, []))


def by_label(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, label: str) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for labels, value in samples.get(name, []):
        out[labels.get(label, "")] += value
    return dict(out)


@dataclass
class RateTracker:
    """Per-process memory of the previous counter reading, for frames/s between two ops page views."""

    _last: dict[str, tuple[float, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def rate(self, name: str, value: float, now: float | None = None) -> float | None:
        now = time.monotonic() if now is None else now
        with self._lock:
            previous = self._last.get(name)
            self._last[name] = (now, value)
        if previous is None or now - previous[0] < 0.5 or value < previous[1]:
            return None
        return (value - previous[1]) / (now - previous[0])
