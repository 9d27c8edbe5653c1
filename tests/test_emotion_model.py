"""Training (one epoch, resume), inference API, and evaluate's CLI output, on generated faces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from synthetic_faces import TINY_TRAINING, synthetic_face, write_face_tree

from areya.emotion.calibration import Calibration
from areya.emotion.evaluate import evaluate
from areya.emotion.inference import EmotionClassifier, prepare_crops, resolve_model_path
from areya.emotion.network import masked_categorical_crossentropy
from areya.emotion.schemes import AREYA4_CLASSES, FER7_CLASSES, four_of_seven
from areya.emotion.train import class_weights, full_history, remember_epoch, train, training_targets
from areya.emotion.train_config import TrainConfig

keras = pytest.importorskip("keras")

TINY = TINY_TRAINING


@pytest.fixture(scope="module")
def face_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fer")
    write_face_tree(root / "train", per_class=6, seed=1)
    write_face_tree(root / "publictest", per_class=3, seed=2)
    return root


@pytest.fixture(scope="module")
def tiny_model(face_tree: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("model")
    train(TrainConfig(**TINY), face_tree, out, run_dir=out / "run", report=lambda s: None)
    return out


def test_training_targets_mask_images_outside_the_4_class_scheme():
    labels7 = np.array([FER7_CLASSES.index(c) for c in ("angry", "disgust", "neutral")])
    y = training_targets(labels7, smoothing=0.1)
    assert y["emotion7"].shape == (3, 7)
    np.testing.assert_allclose(y["emotion7"].sum(axis=1), 1.0, rtol=1e-6)
    assert y["emotion7"][0].argmax() == 0
    assert y["emotion4"][1].sum() == 0  # disgust: no 4-class target
    assert y["emotion4"][2].argmax() == AREYA4_CLASSES.index("relaxed")
    np.testing.assert_allclose(y["emotion4"][[0, 2]].sum(axis=1), 1.0, rtol=1e-6)


def test_class_weights_favour_rare_classes_and_average_one_over_the_faces():
    labels7 = np.repeat(np.arange(7), [40, 4, 40, 80, 40, 20, 0])  # one class rare, one absent
    np.testing.assert_array_equal(class_weights(labels7, 0.0), np.ones(7))
    w = class_weights(labels7, 0.5)
    assert w[6] == 0 and w[1] > w[5] > w[0] > w[3] > 0  # rarer classes weigh more
    assert w[1] / w[3] == pytest.approx((80 / 4) ** 0.5, rel=1e-5)
    assert float(w[labels7].mean()) == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ValueError, match="class_weight_power"):
        TrainConfig.from_dict({"class_weight_power": 1.5})


def test_weighted_targets_scale_each_faces_7_class_loss_by_its_class_weight():
    labels7 = np.array([FER7_CLASSES.index(c) for c in ("angry", "disgust")])
    weights = np.ones(7, np.float32)
    weights[FER7_CLASSES.index("disgust")] = 3.0
    plain, weighted = training_targets(labels7, 0.1), training_targets(labels7, 0.1, weights)
    np.testing.assert_allclose(weighted["emotion7"][0], plain["emotion7"][0])
    np.testing.assert_allclose(weighted["emotion7"][1], 3.0 * plain["emotion7"][1])
    np.testing.assert_array_equal(weighted["emotion4"], plain["emotion4"])  # the 4-class head is not weighted
    probs = np.full((2, 7), 1 / 7, np.float32)
    loss = keras.losses.CategoricalCrossentropy(reduction=None)
    plain_loss = np.asarray(loss(plain["emotion7"], probs))
    weighted_loss = np.asarray(loss(weighted["emotion7"], probs))
    np.testing.assert_allclose(weighted_loss, plain_loss * np.array([1.0, 3.0]), rtol=1e-5)


def _head_gradient(loss_fn, targets: np.ndarray) -> np.ndarray:
    """Gradient of ``loss_fn`` w.r.t. the kernel of a softmax Dense head, for fixed inputs and targets."""
    import tensorflow as tf

    keras.utils.set_random_seed(3)
    head = keras.layers.Dense(4, activation="softmax")
    x = tf.constant(np.random.default_rng(0).normal(size=(8, 5)), tf.float32)
    head.build(x.shape)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(loss_fn(tf.constant(targets), head(x)))
    return tape.gradient(loss, head.kernel).numpy()


def test_rows_without_a_4_class_target_add_no_gradient():
    # the 4-class head's targets for disgust/fear/surprise faces are all-zero rows: they must not move the head
    # (Keras's fused softmax cross-entropy gives them the gradient softmax - 0 and training diverged)
    zeros = np.zeros((8, 4), np.float32)
    assert np.abs(_head_gradient(masked_categorical_crossentropy, zeros)).max() == 0.0
    assert np.abs(_head_gradient(keras.losses.categorical_crossentropy, zeros)).max() > 1e-3  # why it exists
    # with real targets it is the ordinary cross-entropy
    onehot = np.eye(4, dtype=np.float32)[np.arange(8) % 4]
    np.testing.assert_allclose(
        _head_gradient(masked_categorical_crossentropy, onehot),
        _head_gradient(keras.losses.categorical_crossentropy, onehot),
        rtol=1e-4,
        atol=1e-6,
    )


def test_a_weighted_row_scales_the_gradient_with_the_row_cross_entropy_not_with_the_fused_one():
    # class weights scale 7-class target rows; the gradient must scale alike (the fused softmax cross-entropy
    # assumes rows summing to 1 and does not: two weighted training runs diverged with it)
    onehot = np.eye(4, dtype=np.float32)[np.arange(8) % 4] * 0.9 + 0.025
    np.testing.assert_allclose(
        _head_gradient(masked_categorical_crossentropy, 3.0 * onehot),
        3.0 * _head_gradient(masked_categorical_crossentropy, onehot),
        rtol=1e-4,
        atol=1e-6,
    )
    fused = keras.losses.categorical_crossentropy
    assert not np.allclose(_head_gradient(fused, 3.0 * onehot), 3.0 * _head_gradient(fused, onehot), atol=1e-4)


@pytest.mark.slow
def test_class_weighted_training_runs_and_reports_its_weights(face_tree: Path, tmp_path: Path):
    lines: list[str] = []
    train(
        TrainConfig(**{**TINY, "class_weight_power": 0.5}),
        face_tree,
        tmp_path,
        run_dir=tmp_path / "run",
        report=lines.append,
    )
    assert any(line.startswith("7-class loss weights: angry ") for line in lines)
    history = json.loads((tmp_path / "history.json").read_text())
    assert np.isfinite(history["history"]["loss"]).all()


def test_one_epoch_training_writes_a_loadable_model(tiny_model: Path):
    assert (tiny_model / "model.keras").is_file()
    assert TrainConfig.from_file(tiny_model / "config.toml").widths == [8, 16]
    history = json.loads((tiny_model / "history.json").read_text())
    assert history["train_images"] == 35 and history["val_images"] == 7  # 42 faces, 1 per class held out
    assert len(history["history"]["loss"]) == 1 and "val_loss" in history["history"]
    clf = EmotionClassifier.load(tiny_model)  # custom layers deserialise
    assert clf.model_version.startswith(tiny_model.name + "@")
    face = synthetic_face(3, np.random.default_rng(0))
    bright = np.clip(face.astype(np.float32) * 0.5 + 100, 0, 255)  # same face, other lighting and contrast
    a, b = clf.predict_arrays(np.stack([face, bright]).astype(np.float32)[..., None])[1]
    np.testing.assert_allclose(a, b, atol=0.02)  # per-image standardisation makes the model lighting-blind


@pytest.mark.slow
def test_interrupted_training_resumes_from_its_checkpoint(face_tree: Path, tmp_path: Path):
    class Crash(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt("simulated crash")

    cfg = TrainConfig(**{**TINY, "epochs": 2})
    lines: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        train(
            cfg, face_tree, tmp_path / "out", run_dir=tmp_path / "run", report=lines.append, extra_callbacks=[Crash()]
        )
    assert any(line.startswith("epoch 1/2") for line in lines)
    lines.clear()
    train(cfg, face_tree, tmp_path / "out", run_dir=tmp_path / "run", report=lines.append)
    epochs_run = [line.split(" |")[0] for line in lines if line.startswith("epoch ")]
    assert epochs_run == ["epoch 2/2"]  # epoch 1 was not trained again
    # the training time covers both runs' epochs, not only the resumed one
    clock = json.loads((tmp_path / "run" / "epoch_seconds.json").read_text())
    assert sorted(clock) == ["1", "2"]
    history = json.loads((tmp_path / "out" / "history.json").read_text())
    assert history["train_seconds_total"] == pytest.approx(sum(clock.values()), abs=0.11)
    # and the curves cover both runs' epochs: epoch 1's figures come from the crashed run
    curves = history["history"]
    assert len(curves["loss"]) == 2 and len(curves["val_emotion7_accuracy"]) == 2
    first_run = json.loads((tmp_path / "run" / "epoch_logs.json").read_text())["1"]
    assert curves["loss"][0] == pytest.approx(first_run["loss"])
    # training again from scratch in the same run directory forgets the finished training's epochs
    train(TrainConfig(**{**TINY, "epochs": 1}), face_tree, tmp_path / "out", run_dir=tmp_path / "run")
    assert sorted(json.loads((tmp_path / "run" / "epoch_seconds.json").read_text())) == ["1"]


def test_full_history_falls_back_to_this_runs_epochs_when_the_record_is_incomplete(tmp_path: Path):
    logs = tmp_path / "epoch_logs.json"
    this_run = {"loss": [0.5], "val_loss": [0.6]}
    assert full_history(logs, 2, this_run) == this_run  # no record
    remember_epoch(logs, 0, {"loss": 0.9, "val_loss": 1.0})
    remember_epoch(logs, 1, {"loss": 0.5, "val_loss": 0.6})
    assert full_history(logs, 2, this_run) == {"loss": [0.9, 0.5], "val_loss": [1.0, 0.6]}
    assert full_history(logs, 3, this_run) == this_run  # epoch 3 missing
    assert full_history(logs, 2, {**this_run, "lr": [0.1]}) == {**this_run, "lr": [0.1]}  # a metric missing
    remember_epoch(logs, 0, {"loss": 0.8, "val_loss": 0.9})  # a fresh training forgets the earlier one's epochs
    assert json.loads(logs.read_text()) == {"1": {"loss": 0.8, "val_loss": 0.9}}


def test_inference_accepts_any_crop_and_returns_both_schemes():
    clf = EmotionClassifier.untrained()
    rng = np.random.default_rng(0)
    crops = [
        rng.integers(0, 255, (48, 48), dtype=np.uint8),
        rng.integers(0, 255, (120, 90, 3), dtype=np.uint8),
        rng.integers(0, 255, (30, 30, 4), dtype=np.uint8),
        rng.integers(0, 255, (64, 64, 1), dtype=np.uint8),
    ]
    results = clf.classify(crops)
    assert len(results) == 4
    for r in results:
        assert r.probs4.shape == (4,) and r.probs7.shape == (7,)
        assert r.probs4.sum() == pytest.approx(1.0, abs=1e-4) and r.probs7.sum() == pytest.approx(1.0, abs=1e-4)
        assert r.label4 in AREYA4_CLASSES and r.label7 in FER7_CLASSES
        assert 0 <= r.negative_share <= 1
    assert clf.classify([]) == []
    with pytest.raises(ValueError, match="face crop 1"):
        prepare_crops([crops[0], np.zeros((5,), np.uint8)])


def test_batches_larger_than_max_batch_match_single_calls():
    clf = EmotionClassifier.untrained()
    clf.max_batch = 4
    rng = np.random.default_rng(3)
    crops = [synthetic_face(i % 7, rng) for i in range(10)]
    together = clf.classify(crops)
    alone = [clf.classify([c])[0] for c in crops]
    for a, b in zip(together, alone, strict=True):
        np.testing.assert_allclose(a.probs7, b.probs7, atol=1e-5)


def test_mirror_tta_averages_a_face_and_its_mirror():
    clf = EmotionClassifier.untrained()
    face = synthetic_face(3, np.random.default_rng(5))
    single = clf.classify([face])[0].probs7
    mirrored = clf.classify([face[:, ::-1]])[0].probs7
    clf.tta_flip = True
    both = clf.classify([face])[0].probs7
    np.testing.assert_allclose(both, (single + mirrored) / 2, atol=1e-5)


def test_unknown_model_name_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        resolve_model_path("no-such-model")


class IntensityClassifier:
    """A stand-in classifier with a known answer: predicts the class written in the image's corner pixel."""

    model_version = "intensity"
    tta_flip = False
    calibration = Calibration.identity()

    def predict_raw(self, x):
        labels7 = x[:, 0, 0, 0].astype(int) % 7
        p7 = np.eye(7)[labels7]
        return four_of_seven(p7 + 1e-3), p7

    def predict_arrays(self, x):
        return self.calibration.serve(*self.predict_raw(x))


def test_evaluate_figures_on_a_known_answer(face_tree: Path):
    from areya.emotion.dataset import load_dataset

    data = load_dataset(face_tree / "publictest")
    data.images[:, 0, 0] = data.labels7  # the corner pixel holds the true class...
    wrong = np.flatnonzero(data.labels7 == FER7_CLASSES.index("sad"))[:1]
    data.images[wrong, 0, 0] = FER7_CLASSES.index("happy")  # ...except for one sad face, called happy
    ev7 = evaluate(IntensityClassifier(), face_tree / "publictest", "7", data=data)
    assert ev7.report.n == 21
    assert ev7.report.accuracy == pytest.approx(20 / 21)
    assert ev7.report.per_class["sad"]["recall"] == pytest.approx(2 / 3)
    assert ev7.report.per_class["happy"]["precision"] == pytest.approx(3 / 4)
    ev4 = evaluate(IntensityClassifier(), face_tree / "publictest", "4", data=data)
    assert ev4.report.n == 12  # disgust, fear and surprise are not in the 4-class scheme
    assert ev4.report.accuracy == pytest.approx(11 / 12)
    assert ev4.report.confusion[AREYA4_CLASSES.index("sad"), AREYA4_CLASSES.index("happy")] == 1


def test_evaluate_cli_json_shape(tiny_model: Path, face_tree: Path, tmp_path: Path):
    from areya.cli.models import evaluate_cmd

    result = CliRunner().invoke(
        evaluate_cmd,
        [
            "--model",
            str(tiny_model),
            "--scheme",
            "4",
            "--data",
            str(face_tree / "publictest"),
            "--json",
            "-",
            "--plots",
            str(tmp_path / "plots"),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["n"] == 12 and data["scheme"] == "4"
    assert set(data["per_class"]) == set(AREYA4_CLASSES)
    assert 0 <= data["accuracy"] <= 1 and 0 <= data["macro_f1"] <= 1
    assert np.array(data["confusion_matrix"]).sum() == 12
    assert (tmp_path / "plots" / "confusion_4class.png").stat().st_size > 1000
    assert (tmp_path / "plots" / "roc_4class.png").stat().st_size > 1000
    assert (tmp_path / "plots" / "reliability_4class.png").stat().st_size > 1000
    cal = data["calibration"]
    assert cal["bins"] == 15 and set(cal["before"]) == set(cal["after"]) == {"ece", "brier", "nll"}
    assert data["four_class_source"] in ("head", "seven", "mean")
    assert set(data["four_class_head"]["recall"]) == set(AREYA4_CLASSES)


def test_evaluate_cli_leaves_out_copies_of_training_faces(tiny_model: Path, face_tree: Path, tmp_path: Path):
    import shutil

    from areya.cli.models import evaluate_cmd

    test = tmp_path / "publictest"
    shutil.copytree(face_tree / "publictest", test)
    # two Training faces appear again in the test tree, under other names (one of them under another class)
    shutil.copy(face_tree / "train" / "happy" / "happy_0.png", test / "happy" / "again.png")
    shutil.copy(face_tree / "train" / "sad" / "sad_1.png", test / "angry" / "again.png")
    args = ["--model", str(tiny_model), "--scheme", "4", "--data", str(test), "--json", "-"]
    plain = CliRunner().invoke(evaluate_cmd, args)
    assert plain.exit_code == 0, plain.output
    assert json.loads(plain.stdout)["n"] == 14
    result = CliRunner().invoke(evaluate_cmd, [*args, "--exclude-copies-of", str(face_tree / "train")])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["n"] == 12 and np.array(data["confusion_matrix"]).sum() == 12  # the original test faces only
    assert "less 2 copies of faces in" in data["import"]
    missing = CliRunner().invoke(evaluate_cmd, [*args, "--exclude-copies-of", str(tmp_path / "nope")])
    assert missing.exit_code != 0 and "not found" in missing.output


def test_evaluate_cli_rejects_missing_data(tmp_path: Path):
    from areya.cli.models import evaluate_cmd

    result = CliRunner().invoke(evaluate_cmd, ["--scheme", "7", "--data", str(tmp_path / "nope")])
    assert result.exit_code != 0 and "not found" in result.output
