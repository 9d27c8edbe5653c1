"""Fine-tuning from a trained network and stochastic weight averaging, on generated faces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from synthetic_faces import TINY_TRAINING, write_face_tree

from areya.emotion.dataset import holdout_split, load_dataset
from areya.emotion.model_card import _ensemble_lines, _member_entry
from areya.emotion.network import build_network
from areya.emotion.swa import AVERAGE_FILE, WeightAverage, recompute_batchnorm, start_from
from areya.emotion.train import learning_rate_schedule, train
from areya.emotion.train_config import TrainConfig

keras = pytest.importorskip("keras")

FINE_TUNE = {**TINY_TRAINING, "epochs": 3, "swa_epochs": 2, "lr_schedule": "constant", "use_ema": False}


@pytest.fixture(scope="module")
def face_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fer")
    write_face_tree(root / "train", per_class=6, seed=1)
    return root


@pytest.fixture(scope="module")
def trained(face_tree: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trained")
    train(TrainConfig(**TINY_TRAINING), face_tree, out, run_dir=out / "run", report=lambda s: None)
    return out / "model.keras"


def _weights(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(3, 2)), rng.normal(size=4)]


def test_weight_average_is_the_mean_of_its_epochs_and_survives_a_reload(tmp_path: Path):
    path = tmp_path / AVERAGE_FILE
    avg = WeightAverage(path)
    avg.add(1, _weights(1), first=True)
    avg.add(2, _weights(2))
    avg.add(3, _weights(99))
    avg.add(3, _weights(3))  # epoch 4 trained again after a crash: it replaces its entry, it does not count twice
    expected = [np.mean([_weights(s)[i] for s in (1, 2, 3)], axis=0) for i in range(2)]
    for got, want in zip(avg.mean(), expected, strict=True):
        np.testing.assert_allclose(got, want)
    reloaded = WeightAverage(path)
    assert reloaded.count == 3 and reloaded.epochs == [2, 3, 4]
    reloaded.add(4, _weights(4))
    expected = [np.mean([_weights(s)[i] for s in (1, 2, 3, 4)], axis=0) for i in range(2)]
    for got, want in zip(reloaded.mean(), expected, strict=True):
        np.testing.assert_allclose(got, want)
    with pytest.raises(ValueError, match="comes before"):
        reloaded.add(2, _weights(5))
    reloaded.add(1, _weights(7), first=True)  # a training begun again starts the mean afresh
    assert reloaded.count == 1
    np.testing.assert_allclose(reloaded.mean()[0], _weights(7)[0])
    with pytest.raises(ValueError, match="no epoch"):
        WeightAverage(tmp_path / "other.npz").mean()


def test_recomputed_batchnorm_statistics_are_those_of_the_images():
    inputs = keras.Input((6, 6, 1))
    conv = keras.layers.Conv2D(3, 3, padding="same", name="conv")(inputs)
    model = keras.Model(inputs, keras.layers.BatchNormalization(momentum=0.9, name="bn")(conv))
    images = np.random.default_rng(0).uniform(0, 1, (40, 6, 6)).astype(np.float32)
    recompute_batchnorm(model, images, 10, lambda x: x[..., None])
    features = keras.Model(inputs, conv).predict(images[..., None], verbose=0)
    bn = model.get_layer("bn")
    np.testing.assert_allclose(bn.moving_mean.numpy(), features.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-5)
    batch_vars = np.mean([features[i : i + 10].var(axis=(0, 1, 2)) for i in range(0, 40, 10)], axis=0)
    np.testing.assert_allclose(bn.moving_variance.numpy(), batch_vars, rtol=1e-3)
    assert bn.momentum == 0.9  # put back


def test_constant_schedule_stays_at_the_learning_rate_after_warm_up():
    cfg = TrainConfig(**{**FINE_TUNE, "learning_rate": 0.003, "warmup_epochs": 1.0, "epochs": 4})
    lr = learning_rate_schedule(cfg, steps_per_epoch=10)
    late = [float(lr(step)) for step in (10, 25, 39)]
    np.testing.assert_allclose(late, 0.003, rtol=1e-6)
    assert float(lr(0)) == pytest.approx(0.0003)
    cosine = learning_rate_schedule(TrainConfig(**{**FINE_TUNE, "lr_schedule": "cosine", "epochs": 4}), 10)
    assert float(cosine(39)) < 0.1 * float(cosine(10))


@pytest.mark.slow
def test_fine_tuning_starts_from_the_model_and_serves_the_average_of_the_last_epochs(
    face_tree: Path, trained: Path, tmp_path: Path
):
    seen: dict[str, list] = {"start": [], "ends": []}

    class Watch(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen["start"] = self.model.get_weights()

        def on_epoch_end(self, epoch, logs=None):
            seen["ends"].append([np.array(w) for w in self.model.get_weights()])

    cfg = TrainConfig(**{**FINE_TUNE, "init_model": str(trained)})
    lines: list[str] = []
    train(cfg, face_tree, tmp_path / "out", run_dir=tmp_path / "run", report=lines.append, extra_callbacks=[Watch()])
    start_model = keras.models.load_model(trained, compile=False)
    for got, want in zip(seen["start"], start_model.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    served = keras.models.load_model(tmp_path / "out" / "model.keras", compile=False)
    assert len(seen["ends"]) == 3
    for layer in ("s0_conv0", "s1_conv0", "embed", "emotion7"):  # trained weights: the mean of epochs 2 and 3
        index = [w.path for w in served.weights].index(served.get_layer(layer).kernel.path)
        want = (seen["ends"][1][index] + seen["ends"][2][index]) / 2
        np.testing.assert_allclose(served.get_layer(layer).kernel.numpy(), want, rtol=1e-5, atol=1e-6)
        assert not np.allclose(want, seen["ends"][2][index])  # it is not the last epoch's weights
    # BatchNorm statistics belong to the averaged weights: those of its first convolution over the training part
    part, _ = holdout_split(load_dataset(face_tree, "train"), cfg.val_fraction, cfg.holdout_seed)
    conv = keras.Model(served.input, served.get_layer("s0_conv0").output)
    features = conv.predict(part.images.astype(np.float32)[..., None], verbose=0)
    bn = served.get_layer("s0_bn0")
    np.testing.assert_allclose(bn.moving_mean.numpy(), features.mean(axis=(0, 1, 2)), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(bn.moving_variance.numpy(), features.var(axis=(0, 1, 2)), rtol=1e-3, atol=1e-4)
    assert any(line.startswith("fine-tuning from") for line in lines)
    assert any(line.startswith("weight average of epochs 2-3 (2), BatchNorm recomputed | val acc7") for line in lines)
    swa = json.loads((tmp_path / "out" / "history.json").read_text())["swa"]
    assert swa["epochs"] == [2, 3] and 0 <= swa["val_emotion7_accuracy"] <= 1
    # a model card's member table gives the averaged weights' figure and says where the fine-tuning started
    entry = _member_entry(tmp_path / "out", "model.keras")
    assert entry["final_val_accuracy7"] == swa["val_emotion7_accuracy"]
    row = _ensemble_lines({"ensemble": [entry, entry]})[-1]
    assert "| 3, fine-tuned from `model.keras`, weights averaged over the last 2 |" in row


@pytest.mark.slow
def test_a_resumed_fine_tuning_keeps_its_weight_average(face_tree: Path, trained: Path, tmp_path: Path):
    class Crash(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt("simulated crash")

    cfg = TrainConfig(**{**FINE_TUNE, "init_model": str(trained)})
    with pytest.raises(KeyboardInterrupt):
        train(
            cfg, face_tree, tmp_path / "out", run_dir=tmp_path / "run", report=lambda s: None, extra_callbacks=[Crash()]
        )
    assert WeightAverage(tmp_path / "run" / AVERAGE_FILE).epochs == [2]
    lines: list[str] = []
    train(cfg, face_tree, tmp_path / "out", run_dir=tmp_path / "run", report=lines.append)
    assert [line.split(" |")[0] for line in lines if line.startswith("epoch ")] == ["epoch 3/3"]
    assert json.loads((tmp_path / "out" / "history.json").read_text())["swa"]["epochs"] == [2, 3]


@pytest.mark.slow
def test_fine_tuning_settings_are_checked(tmp_path: Path, trained: Path):
    with pytest.raises(ValueError, match="swa_epochs"):
        TrainConfig.from_dict({**FINE_TUNE, "swa_epochs": 4})
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig.from_dict({**FINE_TUNE, "lr_schedule": "step"})
    with pytest.raises(ValueError, match="use_ema"):
        TrainConfig.from_dict({**FINE_TUNE, "use_ema": True})

    wider = build_network(TrainConfig(**{**TINY_TRAINING, "widths": [8, 32]}))
    with pytest.raises(ValueError, match="another architecture"):
        start_from(wider, trained)
    with pytest.raises(FileNotFoundError, match="init_model not found"):
        start_from(wider, tmp_path / "missing.keras")
