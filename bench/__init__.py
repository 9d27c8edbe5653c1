"""Benchmarks (not tests): each module runs from the repository root as ``python -m bench.<name> [--quick] ...``.

``--quick`` is the smallest run that goes through a bench's whole code path in seconds;
tests/test_bench_quick.py runs every bench that way (marked ``slow``).
"""

from __future__ import annotations

from typing import Any


def quick_subset(data: Any, count: int) -> Any:
    """About ``count`` faces of a :class:`areya.emotion.dataset.FaceDataset`, evenly spaced through it (a folder
    tree is read class by class, so every class keeps some): the faces a ``--quick`` run classifies."""
    import numpy as np

    step = max(1, len(data) // max(count, 1))
    return data.subset(np.arange(0, len(data), step)[:count], data.report)
