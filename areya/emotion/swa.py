"""Fine-tuning from a trained network, and stochastic weight averaging (SWA) of its last epochs.

SWA (Izmailov et al. 2018): train on at a constant learning rate, average the weights reached at the ends of the
last epochs, then recompute the BatchNorm statistics for the averaged weights (the running statistics gathered
during training belong to the individual epochs' weights, not to their average).  The running average lives in
the run directory and is written after every epoch, so a resumed training keeps it; an epoch trained again after
a crash replaces its own entry instead of counting twice.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

AVERAGE_FILE = "swa.npz"


class WeightAverage:
    """The mean of the weights at chosen epoch ends, kept as (sum of the earlier epochs, the latest epoch): the
    latest can be replaced when its epoch is trained again, and the file survives a crash at any point."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.earlier: list[np.ndarray] | None = None
        self.latest: list[np.ndarray] | None = None
        self.earlier_count = 0
        self.latest_epoch = -1
        self.epochs: list[int] = []
        if self.path.is_file():
            with np.load(self.path) as data:
                n = int(data["n_arrays"])
                self.earlier_count = int(data["earlier_count"])
                self.latest_epoch = int(data["latest_epoch"])
                self.epochs = [int(e) for e in data["epochs"]]
                self.earlier = [data[f"earlier_{i}"] for i in range(n)]
                self.latest = [data[f"latest_{i}"] for i in range(n)]

    @property
    def count(self) -> int:
        return self.earlier_count + (self.latest is not None)

    def add(self, epoch: int, weights: list[np.ndarray], first: bool = False) -> None:
        """Take the weights at the end of ``epoch`` (0-based) into the mean and save it; ``first``: the averaging
        window's first epoch, which starts the mean afresh (a training begun again forgets an earlier one's)."""
        weights = [np.array(w, np.float64) for w in weights]
        if first:
            self.earlier, self.latest, self.earlier_count, self.latest_epoch, self.epochs = None, None, 0, -1, []
        if self.latest is None:
            self.earlier = [np.zeros_like(w) for w in weights]
        elif epoch < self.latest_epoch:
            raise ValueError(f"epoch {epoch + 1} comes before the last averaged epoch {self.latest_epoch + 1}")
        elif epoch > self.latest_epoch:
            self.earlier = self._sum()
            self.earlier_count += 1
        if self.latest is None or epoch > self.latest_epoch:
            self.epochs.append(epoch + 1)
        self.latest, self.latest_epoch = weights, epoch
        self._save()

    def mean(self) -> list[np.ndarray]:
        if self.latest is None:
            raise ValueError("no epoch has been averaged yet")
        return [t / self.count for t in self._sum()]

    def _sum(self) -> list[np.ndarray]:
        assert self.earlier is not None and self.latest is not None
        return [a + b for a, b in zip(self.earlier, self.latest, strict=True)]

    def _save(self) -> None:
        assert self.earlier is not None and self.latest is not None
        arrays = {f"earlier_{i}": a for i, a in enumerate(self.earlier)}
        arrays.update({f"latest_{i}": a for i, a in enumerate(self.latest)})
        tmp = self.path.with_name(self.path.name + ".tmp.npz")
        np.savez(
            tmp,
            n_arrays=len(self.latest),
            earlier_count=self.earlier_count,
            latest_epoch=self.latest_epoch,
            epochs=np.array(self.epochs, np.int64),
            **arrays,
        )
        tmp.replace(self.path)  # a crash while writing leaves the previous average whole


def averaging_callback(average: WeightAverage, first_epoch: int):
    """A Keras callback adding the model's weights to ``average`` at the end of every epoch from ``first_epoch``
    (0-based) on."""
    import keras

    class AverageWeights(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch >= first_epoch:
                average.add(epoch, self.model.get_weights(), first=epoch == first_epoch)

    return AverageWeights()


def start_from(model, path: str | Path) -> None:
    """Copy a trained model's weights into ``model`` (fine-tuning); the two must have the same architecture."""
    import keras

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"init_model not found: {path}")
    trained = keras.models.load_model(path, compile=False)
    ours, theirs = model.get_weights(), trained.get_weights()
    shapes = [w.shape for w in ours], [w.shape for w in theirs]
    if shapes[0] != shapes[1]:
        raise ValueError(f"init_model {path} has another architecture than the config (weight shapes differ)")
    model.set_weights(theirs)


def recompute_batchnorm(model, images: np.ndarray, batch_size: int, as_input: Callable[[np.ndarray], np.ndarray]):
    """Reset every BatchNormalization layer's moving statistics and set them to the mean over ``images`` of the
    batch statistics (a cumulative average: momentum 1 - 1/k at batch k), in batches, without changing weights."""
    import keras

    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if not bns or len(images) == 0:
        return
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.moving_mean.assign(np.zeros(bn.moving_mean.shape, "float32"))
        bn.moving_variance.assign(np.ones(bn.moving_variance.shape, "float32"))
    try:
        for k, start in enumerate(range(0, len(images), batch_size), start=1):
            for bn in bns:
                bn.momentum = 1.0 - 1.0 / k
            model(as_input(images[start : start + batch_size]), training=True)
    finally:
        for bn, momentum in zip(bns, momenta, strict=True):
            bn.momentum = momentum
