"""Calibration: ECE/Brier figures, temperature fitting on a known-miscalibrated toy model, storage, inference."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from synthetic_faces import synthetic_face

from areya.emotion.calibrate import fit_calibration
from areya.emotion.calibration import (
    CALIBRATION_FILE,
    Calibration,
    apply_temperature,
    brier_score,
    expected_calibration_error,
    fit_temperature,
    fit_temperature_offsets,
    negative_log_likelihood,
)
from areya.emotion.inference import EmotionClassifier
from areya.emotion.schemes import four_of_seven


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def toy_model(n: int, classes: int, overconfidence: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from a known, calibrated softmax; the "model" reports that softmax at logits x overconfidence."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.5, (n, classes))
    true_p = _softmax(logits)
    labels = np.array([rng.choice(classes, p=p) for p in true_p])
    return _softmax(logits * overconfidence), labels


def test_ece_and_brier_on_hand_worked_examples():
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    labels = np.array([0, 1, 0, 0])
    # bin (0.8667, 0.9333]: confidence 0.9, accuracy 0.5; bin (0.6, 0.6667]: confidence 0.6, accuracy 1.0
    assert expected_calibration_error(probs, labels) == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)
    assert brier_score(probs, labels) == pytest.approx((0.02 + 1.62 + 0.32 + 0.32) / 4)
    perfect = np.eye(3)[[0, 1, 2]]
    assert expected_calibration_error(perfect, np.array([0, 1, 2])) == 0.0
    assert brier_score(perfect, np.array([0, 1, 2])) == 0.0


def test_temperature_keeps_the_arg_max_and_one_is_identity():
    probs, _ = toy_model(200, 7, 2.0, seed=1)
    for t in (0.5, 2.5):
        scaled = apply_temperature(probs, t)
        np.testing.assert_allclose(scaled.sum(axis=1), 1.0, atol=1e-5)
        assert np.array_equal(scaled.argmax(axis=1), probs.argmax(axis=1))
    np.testing.assert_allclose(apply_temperature(probs, 1.0), probs, atol=1e-6)
    assert apply_temperature(probs, 3.0).max(axis=1).mean() < probs.max(axis=1).mean()  # T > 1 softens


def test_fitting_finds_the_known_temperature_and_cuts_the_ece():
    probs, labels = toy_model(6000, 4, overconfidence=3.0, seed=2)  # logits 3x too large -> T should be ~3
    t = fit_temperature(probs, labels)
    assert t == pytest.approx(3.0, rel=0.12)
    before, after = (
        expected_calibration_error(probs, labels),
        expected_calibration_error(apply_temperature(probs, t), labels),
    )
    assert before > 0.1 and after < 0.03 and after < before / 4
    assert brier_score(apply_temperature(probs, t), labels) < brier_score(probs, labels)
    assert negative_log_likelihood(apply_temperature(probs, t), labels) < negative_log_likelihood(probs, labels)
    under, labels_u = toy_model(6000, 4, overconfidence=0.5, seed=3)  # underconfident -> T < 1
    assert fit_temperature(under, labels_u) == pytest.approx(0.5, rel=0.12)


def test_fit_calibration_fits_both_heads_and_picks_the_better_four_class_source():
    probs7, labels7 = toy_model(4000, 7, overconfidence=2.0, seed=4)
    uninformative4 = np.full((4000, 4), 0.25)  # a useless 4-class head: the 7-class head must win
    cal = fit_calibration(uninformative4, probs7, labels7, fitted_on="toy")
    assert cal.temperature7 == pytest.approx(2.0, rel=0.15)
    assert cal.four_class_source in ("seven", "mean") and cal.four_class_source != "head"
    v = cal.validation
    assert v["7class"]["after"]["ece"] < v["7class"]["before"]["ece"]
    assert set(v["4class_sources"]) == {"head", "seven", "mean"}
    forced = fit_calibration(uninformative4, probs7, labels7, fitted_on="toy", source="head")
    assert forced.four_class_source == "head"


def test_a_temperature_fitted_to_annotators_votes_follows_their_disagreement():
    probs7, labels7 = toy_model(4000, 7, overconfidence=1.0, seed=6)  # calibrated against its hard labels
    onehot = np.eye(7)[labels7]
    assert fit_temperature(probs7, onehot) == pytest.approx(fit_temperature(probs7, labels7), rel=1e-3)
    # annotators split 60/40 on every face: the same answers are too sure of themselves against the votes
    second = (labels7 + 1) % 7
    split = 0.6 * onehot + 0.4 * np.eye(7)[second]
    assert fit_temperature(probs7, split) > 1.2 * fit_temperature(probs7, labels7)
    with pytest.raises(ValueError, match="do not match"):
        fit_temperature(probs7, split[:, :4])


def test_fit_calibration_against_votes_reports_the_vote_nll_and_skips_unlabelled_faces_in_the_figures():
    probs7, labels7 = toy_model(3000, 7, overconfidence=2.0, seed=7)
    targets = 0.8 * np.eye(7)[labels7] + 0.2 / 7
    majority = labels7.copy()
    majority[:100] = -1  # annotators tied on these: no label, still a target
    cal = fit_calibration(np.full((3000, 4), 0.25), probs7, majority, fitted_on="toy", targets7=targets)
    v = cal.validation
    assert v["faces_7class"] == 2900 and "FER+ vote" in v["fitted_to"]
    assert v["7class"]["after"]["vote_nll"] < v["7class"]["before"]["vote_nll"]
    assert cal.temperature7 > 2.0  # softer than the hard-label fit would be (about 2)
    assert all("vote_nll" in s["after"] for s in v["4class_sources"].values())
    hard = fit_calibration(
        np.full((3000, 4), 0.25), probs7, majority, fitted_on="toy", targets7=targets, fit_to_targets=False
    )
    assert hard.temperature7 == pytest.approx(2.0, rel=0.15)  # the majority's fit, the vote NLL still reported
    assert "FER+ majority" in hard.validation["fitted_to"] and "vote_nll" in hard.validation["7class"]["after"]
    with pytest.raises(ValueError, match="targets7"):
        fit_calibration(np.full((3000, 4), 0.25), probs7, majority, fitted_on="toy", targets7=targets[:, :4])


def test_calibration_file_round_trip_and_errors(tmp_path: Path):
    assert Calibration.load(tmp_path) == Calibration.identity()  # no file: identity
    cal = Calibration(temperature7=1.7, temperature4=1.3, four_class_source="mean", fitted_on="x")
    cal.save(tmp_path)
    assert Calibration.load(tmp_path) == cal
    (tmp_path / CALIBRATION_FILE).write_text(json.dumps({"temperature7": -1}))
    with pytest.raises(ValueError, match="temperature7"):
        Calibration.load(tmp_path)
    (tmp_path / CALIBRATION_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="invalid calibration file"):
        Calibration.load(tmp_path)
    with pytest.raises(ValueError, match="four_class_source"):
        Calibration(four_class_source="vote")


def test_classifier_serves_the_stored_temperature_and_four_class_source():
    clf = EmotionClassifier.untrained(seed=3)
    rng = np.random.default_rng(0)
    x = np.stack([synthetic_face(i % 7, rng) for i in range(6)]).astype(np.float32)[..., None]
    head4, raw7 = clf.predict_raw(x)
    clf.calibration = Calibration(temperature7=2.0, temperature4=0.5, four_class_source="seven")
    p4, p7 = clf.predict_arrays(x)
    np.testing.assert_allclose(p7, apply_temperature(raw7, 2.0), atol=1e-5)
    np.testing.assert_allclose(p4, apply_temperature(four_of_seven(raw7), 0.5), atol=1e-5)
    assert not np.allclose(p7, raw7, atol=1e-4)
    results = clf.classify(list(x[..., 0].astype(np.uint8)))
    np.testing.assert_allclose(results[0].probs7, p7[0], atol=1e-3)  # classify() serves calibrated figures


@pytest.mark.slow
def test_calibrate_command_on_a_trained_tiny_model(tmp_path: Path):
    from click.testing import CliRunner
    from synthetic_faces import write_face_tree

    from areya.cli.models import models_group
    from areya.emotion.train import train
    from areya.emotion.train_config import TrainConfig

    write_face_tree(tmp_path / "fer" / "train", per_class=10, seed=1)
    cfg = TrainConfig(
        name="tiny", widths=[8, 16], convs_per_stage=[1, 1], batch_size=16, epochs=1, seed=5, val_fraction=0.3
    )
    out = tmp_path / "model"
    train(cfg, tmp_path / "fer", out, run_dir=tmp_path / "run", report=lambda s: None)
    before = EmotionClassifier.load(out).model_version
    result = CliRunner().invoke(models_group, ["calibrate", str(out), "--data", str(tmp_path / "fer")])
    assert result.exit_code == 0, result.output
    assert "7-class: T=" in result.output and "<- served" in result.output
    cal = Calibration.load(out)
    assert cal.validation["faces_7class"] == 21  # 30 % of 10 faces per class, 7 classes
    assert "validation part" in cal.fitted_on
    loaded = EmotionClassifier.load(out)
    assert loaded.calibration == cal
    assert loaded.model_version != before  # the version names the calibration too
    bad = CliRunner().invoke(models_group, ["calibrate", str(tmp_path), "--data", str(tmp_path / "fer")])
    assert bad.exit_code != 0 and "config" in bad.output


@pytest.mark.slow
def test_calibrate_without_copies_fits_on_the_validation_faces_the_network_never_saw(tmp_path: Path):
    import shutil

    from click.testing import CliRunner
    from synthetic_faces import write_face_tree

    from areya.cli.models import models_group
    from areya.emotion.dataset import holdout_split, image_digests, load_dataset
    from areya.emotion.train import train
    from areya.emotion.train_config import TrainConfig

    write_face_tree(tmp_path / "fer" / "train", per_class=10, seed=1)
    for i in range(6):  # one happy face seven times over: the split puts copies on both sides
        shutil.copy(
            tmp_path / "fer" / "train" / "happy" / "happy_0.png", tmp_path / "fer" / "train" / "happy" / f"z{i}.png"
        )
    cfg = TrainConfig(
        name="tiny", widths=[8, 16], convs_per_stage=[1, 1], batch_size=16, epochs=1, seed=5, val_fraction=0.3
    )
    rest, val = holdout_split(load_dataset(tmp_path / "fer", "train"), cfg.val_fraction, cfg.holdout_seed)
    seen = set(image_digests(rest.images).tolist())
    copies = sum(d in seen for d in image_digests(val.images).tolist())
    assert copies >= 1  # the test's premise
    out = tmp_path / "model"
    train(cfg, tmp_path / "fer", out, run_dir=tmp_path / "run", report=lambda s: None)
    args = ["calibrate", str(out), "--data", str(tmp_path / "fer")]
    assert CliRunner().invoke(models_group, args).exit_code == 0
    assert Calibration.load(out).validation["faces_7class"] == len(val)
    result = CliRunner().invoke(models_group, [*args, "--without-copies"])
    assert result.exit_code == 0, result.output
    cal = Calibration.load(out)
    assert cal.validation["faces_7class"] == len(val) - copies
    assert f"less {copies} copies of faces in" in cal.fitted_on


def _prior_shifted_model(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A model whose answers are softmax(logits x 2) while labels follow softmax(logits + b): over-confident
    and blind to a shift in class priors ``b`` (class 2 is twice as common as it thinks, class 0 rarer)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.5, (n, 4))
    shift = np.array([-0.5, 0.0, 0.7, -0.2])
    labels = np.array([rng.choice(4, p=p) for p in _softmax(logits + shift)])
    return _softmax(logits * 2.0), labels, shift


def test_temperature_with_offsets_recovers_a_shift_in_class_priors():
    probs, labels, shift = _prior_shifted_model(20000, seed=11)
    t, offsets = fit_temperature_offsets(probs, labels)
    assert t == pytest.approx(2.0, rel=0.08)
    np.testing.assert_allclose(offsets, shift - shift.mean(), atol=0.1)
    assert abs(sum(offsets)) < 1e-3  # centred: softmax ignores a common shift
    served = apply_temperature(probs, t, offsets)
    assert negative_log_likelihood(served, labels) < negative_log_likelihood(apply_temperature(probs, t), labels)
    # the offsets move answers toward the class the model under-calls: its recall rises
    recall2 = lambda p: float((p.argmax(axis=1)[labels == 2] == 2).mean())  # noqa: E731
    assert recall2(served) > recall2(probs) + 0.05
    # no shift: the offsets stay near zero and the temperature matches the temperature-only fit
    plain, plain_labels = toy_model(8000, 4, overconfidence=2.0, seed=12)
    t0, b0 = fit_temperature_offsets(plain, plain_labels)
    assert t0 == pytest.approx(fit_temperature(plain, plain_labels), rel=0.05)
    assert max(abs(b) for b in b0) < 0.1


def test_fit_calibration_with_offsets_stores_and_serves_them(tmp_path: Path):
    probs, labels4, _ = _prior_shifted_model(6000, seed=13)
    # a 7-class head that is the 4-class answer spread over seven classes (FER order: angry, happy, neutral, sad)
    probs7 = np.full((6000, 7), 1e-4)
    for j, k in enumerate((0, 3, 6, 4)):
        probs7[:, k] = probs[:, j]
    probs7 /= probs7.sum(axis=1, keepdims=True)
    labels7 = np.array([(0, 3, 6, 4)[y] for y in labels4])
    cal = fit_calibration(probs, probs7, labels7, fitted_on="toy", offsets=True)
    assert len(cal.offsets7) == 7 and len(cal.offsets4) == 4
    v = cal.validation
    assert "offsets" in v["7class"] and "accuracy_after" in v["7class"]
    assert all("accuracy_after" in s for s in v["4class_sources"].values())
    plain = fit_calibration(probs, probs7, labels7, fitted_on="toy")
    assert plain.offsets7 == [] and plain.offsets4 == [] and "offsets" not in plain.validation["7class"]
    assert v["7class"]["after"]["nll"] < plain.validation["7class"]["after"]["nll"]
    cal.save(tmp_path)
    assert Calibration.load(tmp_path) == cal
    p4, p7 = cal.serve(probs, probs7)
    np.testing.assert_allclose(p7, apply_temperature(probs7, cal.temperature7, cal.offsets7), atol=1e-6)
    assert not np.array_equal(p4.argmax(axis=1), probs.argmax(axis=1))  # offsets move some answers
    for bad in ([0.1] * 5, [float("nan")] * 7, "0.1"):
        with pytest.raises(ValueError, match="offsets7"):
            Calibration(offsets7=bad)  # type: ignore[arg-type]
