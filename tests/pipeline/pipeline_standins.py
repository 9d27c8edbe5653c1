"""A stand-in classifier for worker processes whose classifier is not under test.

Subprocess workers (crash tests) would otherwise spend most of their run starting Keras on a
shared 2-core machine; the worker's code path is the same as with the real classifier.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np


class FixedClassifier:
    """'relaxed' for every crop, optionally slow (to widen the window of a mid-batch crash); may fail on demand."""

    model_version = "fixed-test"

    def __init__(self, delay_s: float = 0.0, fail: bool = False) -> None:
        self.delay_s = delay_s
        self.fail = fail
        self.calls = 0

    def classify(self, crops: Sequence[np.ndarray]) -> list:  # noqa: ANN401
        from areya.emotion.inference import EmotionResult

        self.calls += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("classifier failure (test)")
        p4 = np.array([0.1, 0.1, 0.7, 0.1], np.float32)
        p7 = np.array([0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.7], np.float32)
        return [EmotionResult(p4, p7) for _ in crops]
