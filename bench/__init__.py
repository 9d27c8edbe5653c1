"""Benchmarks (not tests): each module runs from the repository root as ``python -m bench.<name> [--quick] ...``.

``--quick`` is the smallest run that goes through a bench's whole code path in seconds;
tests/test_bench_quick.py runs every bench that way (marked ``slow``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any


def quick_subset(data: Any, count: int) -> Any:
    """About ``count`` faces of a :class:`areya.emotion.dataset.FaceDataset`, evenly spaced through it (a folder
    tree is read class by class, so every class keeps some): the faces a ``--quick`` run classifies."""
    import numpy as np

    from areya.emotion.schemes import FER7_CLASSES

    step = max(1, len(data) // max(count, 1))
    pick = np.arange(0, len(data), step)[:count]
    report = replace(
        data.report,
        source=f"{data.report.source} [--quick: {len(pick)} of {len(data)}]",
        loaded=len(pick),
        per_class=Counter(FER7_CLASSES[int(label)] for label in data.labels7[pick]),
    )
    return data.subset(pick, report)
