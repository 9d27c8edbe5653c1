"""Server-side SVG charts (no script, CSP-friendly): tile sparkline and the patient timeline."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, tzinfo
from html import escape

from areya.webapp.timeline import Bucket

COLORS: dict[str, str] = {
    "angry": "#d64545",
    "sad": "#3f6fd1",
    "happy": "#e0a82e",
    "relaxed": "#3aa76d",
    "disgust": "#8a5a2b",
    "fear": "#8e44ad",
    "surprise": "#e67e22",
    "neutral": "#95a5a6",
}
# stacking order: negative classes at the bottom, where the eye looks first
STACK4 = ("angry", "sad", "relaxed", "happy")
STACK7 = ("angry", "disgust", "fear", "sad", "surprise", "neutral", "happy")


def _stack_order(labels: Sequence[str]) -> list[str]:
    order = STACK4 if len(labels) == 4 else STACK7
    return [lab for lab in order if lab in labels]


def stacked_bars(
    buckets: Sequence[Bucket],
    labels: Sequence[str],
    *,
    width: int = 240,
    height: int = 40,
    title: str = "",
    axis: bool = False,
    bucket_minutes: int = 1,
    tz: tzinfo = UTC,
) -> str:
    """One column per bucket, its height split by the share of each label (empty buckets stay blank).

    Times on the axis and in the tooltips are shown in ``tz`` (the hospital time zone)."""
    order = _stack_order(labels)
    n = max(1, len(buckets))
    pad_bottom = 16 if axis else 0
    plot_h = height - pad_bottom
    col_w = width / n
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" preserveAspectRatio="none" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{width}" height="{plot_h}" fill="#f3f4f6"/>',
    ]
    for i, bucket in enumerate(buckets):
        total = bucket.total
        if not total:
            continue
        x = i * col_w
        y = float(plot_h)
        tip = ", ".join(f"{lab} {bucket.counts.get(lab, 0) / total:.0%}" for lab in order)
        stamp = bucket.start.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")
        parts.append(f"<g><title>{escape(stamp)} ({bucket_minutes} min, n={total}): {escape(tip)}</title>")
        for lab in order:
            share = bucket.counts.get(lab, 0) / total
            if share <= 0:
                continue
            h = share * plot_h
            y -= h
            parts.append(
                f'<rect x="{x:.2f}" y="{y:.2f}" width="{max(col_w - 0.3, 0.5):.2f}" height="{h:.2f}" '
                f'fill="{COLORS.get(lab, "#999")}"/>'
            )
        parts.append("</g>")
    if axis and buckets:
        ticks = 6
        for t in range(ticks + 1):
            index = min(len(buckets) - 1, round(t * (len(buckets) - 1) / ticks))
            x = index * col_w + col_w / 2
            label = (
                buckets[index]
                .start.astimezone(tz)
                .strftime("%H:%M" if len(buckets) * bucket_minutes <= 1440 else "%d %b %H:%M")
            )
            anchor = "start" if t == 0 else "end" if t == ticks else "middle"
            parts.append(
                f'<text x="{x:.1f}" y="{height - 3}" font-size="10" fill="#4b5563" text-anchor="{anchor}">'
                f"{escape(label)}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)
