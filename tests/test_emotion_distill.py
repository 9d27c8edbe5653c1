"""Knowledge distillation: teacher labels keyed by image, the mixed targets, and a student that learns its
teacher's answer, on generated faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from synthetic_faces import TINY_TRAINING, write_face_tree

from areya.emotion.dataset import holdout_split, load_dataset
from areya.emotion.distill import TeacherLabels, distilled_targets, image_digests, soften
from areya.emotion.inference import EmotionClassifier
from areya.emotion.schemes import FER7_CLASSES, four_of_seven
from areya.emotion.train import train, training_targets
from areya.emotion.train_config import TrainConfig

keras = pytest.importorskip("keras")

TINY = dict(
    TINY_TRAINING,
    name="student",
    use_ema=False,  # a weight average over a few dozen steps would still be mostly the initial weights
)
HAPPY = FER7_CLASSES.index("happy")


@pytest.fixture(scope="module")
def face_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fer")
    write_face_tree(root / "train", per_class=6, seed=1)
    return root


def _faces(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 48, 48), dtype=np.uint8)


def _labels_for(images: np.ndarray, probs7: np.ndarray) -> TeacherLabels:
    return TeacherLabels(
        image_digests(images), four_of_seven(probs7).astype(np.float32), probs7.astype(np.float32), "test-teacher"
    )


def test_teacher_labels_are_found_by_image_whatever_the_order(tmp_path: Path):
    images = _faces(20)
    probs7 = np.random.default_rng(1).dirichlet(np.ones(7), 20).astype(np.float32)
    path = _labels_for(images, probs7).save(tmp_path / "teacher.npz")
    loaded = TeacherLabels.load(path)
    order = np.random.default_rng(2).permutation(20)
    p4, p7 = loaded.lookup(images[order])
    np.testing.assert_allclose(p7, probs7[order], rtol=1e-6)
    np.testing.assert_allclose(p4, four_of_seven(probs7[order]), rtol=1e-5)
    assert loaded.teacher == "test-teacher"


def test_a_face_the_teacher_never_labelled_is_a_clear_error():
    images = _faces(5)
    labels = _labels_for(images, np.full((5, 7), 1 / 7))
    other = images.copy()
    other[3, 0, 0] ^= 1  # one pixel differs
    with pytest.raises(ValueError, match="lack 1 of the 5"):
        labels.lookup(other)


def test_a_file_that_is_not_teacher_labels_is_refused(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="teacher-labels"):
        TeacherLabels.load(tmp_path / "none.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, something=np.zeros(3))
    with pytest.raises(ValueError, match="not a teacher-labels file"):
        TeacherLabels.load(bad)


def test_soften_keeps_the_answer_at_temperature_one_and_flattens_it_above():
    p = np.array([[0.8, 0.15, 0.05]])
    np.testing.assert_allclose(soften(p, 1.0), p, rtol=1e-5)
    warm = soften(p, 2.0)
    np.testing.assert_allclose(warm.sum(), 1.0, rtol=1e-6)
    assert warm[0, 0] < 0.8 and warm.argmax() == 0


def test_distilled_targets_mix_hard_and_teacher_rows():
    labels7 = np.array([FER7_CLASSES.index(c) for c in ("angry", "disgust", "happy")])
    hard = training_targets(labels7, smoothing=0.0)
    teacher7 = np.random.default_rng(3).dirichlet(np.ones(7), 3).astype(np.float32)
    same = distilled_targets(hard, labels7, teacher7, weight=0.0, temperature=1.0)
    np.testing.assert_allclose(same["emotion7"], hard["emotion7"])
    np.testing.assert_allclose(same["emotion4"], hard["emotion4"])
    full = distilled_targets(hard, labels7, teacher7, weight=1.0, temperature=1.0)
    np.testing.assert_allclose(full["emotion7"], teacher7, rtol=1e-5)
    assert full["emotion4"][1].sum() == 0  # disgust: still no 4-class target
    np.testing.assert_allclose(full["emotion4"][[0, 2]], four_of_seven(teacher7[[0, 2]]), rtol=1e-5)
    half = distilled_targets(hard, labels7, teacher7, weight=0.5, temperature=1.0)
    np.testing.assert_allclose(half["emotion7"], 0.5 * hard["emotion7"] + 0.5 * teacher7, rtol=1e-5)
    np.testing.assert_allclose(half["emotion7"].sum(axis=1), 1.0, rtol=1e-5)


def test_distillation_settings_are_validated():
    with pytest.raises(ValueError, match="needs teacher_labels"):
        TrainConfig(distill_weight=0.5).validate()
    with pytest.raises(ValueError, match="distill_weight"):
        TrainConfig(distill_weight=1.5, teacher_labels="t.npz").validate()
    with pytest.raises(ValueError, match="cannot be combined"):
        TrainConfig(distill_weight=0.5, teacher_labels="t.npz", class_weight_power=0.5).validate()


@pytest.mark.slow
def test_a_student_learns_its_teachers_answer_not_the_labels(face_tree: Path, tmp_path: Path):
    """A teacher that calls every face happy, at full weight: the student calls (almost) every face happy,
    though only a seventh of the faces are labelled so."""
    cfg = TrainConfig(
        **{
            **TINY,
            "epochs": 6,
            "learning_rate": 0.01,
            "distill_weight": 1.0,
            "teacher_labels": str(tmp_path / "teacher.npz"),
        }
    )
    data = load_dataset(face_tree, "train")
    probs7 = np.full((len(data), 7), 0.01, np.float32)
    probs7[:, HAPPY] = 0.94
    _labels_for(data.images, probs7).save(tmp_path / "teacher.npz")
    lines: list[str] = []
    train(cfg, face_tree, tmp_path / "out", run_dir=tmp_path / "run", report=lines.append)
    assert any("distilling from test-teacher" in line for line in lines)
    student = EmotionClassifier.load(tmp_path / "out", tta_flip=False)
    _, probs = student.predict_raw(data.images.astype(np.float32)[..., None])
    assert (probs.argmax(1) == HAPPY).mean() >= 0.9
    assert (data.labels7 == HAPPY).mean() < 0.2


@pytest.mark.slow
def test_teacher_labels_cli_labels_the_training_split_and_a_student_trains_on_them(face_tree: Path, tmp_path: Path):
    from areya.cli.models import models_group

    teacher_dir = tmp_path / "teacher"
    train(
        TrainConfig(**{**TINY, "name": "teacher"}),
        face_tree,
        teacher_dir,
        run_dir=tmp_path / "trun",
        report=lambda s: None,
    )
    out = tmp_path / "labels.npz"
    result = CliRunner().invoke(
        models_group, ["teacher-labels", str(teacher_dir), "--data", str(face_tree), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {out}: 42 faces" in result.output
    labels = TeacherLabels.load(out)
    data = load_dataset(face_tree, "train")
    teacher = EmotionClassifier.load(teacher_dir)
    _, expected7 = teacher.predict_raw(data.images.astype(np.float32)[..., None])
    np.testing.assert_allclose(labels.lookup(data.images)[1], expected7, rtol=1e-4, atol=1e-5)

    part, _ = holdout_split(data, TINY["val_fraction"], TINY["seed"])
    assert len(part) < len(data)  # the student looks up only its training part
    cfg = TrainConfig(**{**TINY, "distill_weight": 0.7, "distill_temperature": 2.0, "teacher_labels": str(out)})
    train(cfg, face_tree, tmp_path / "student", run_dir=tmp_path / "srun", report=lambda s: None)
    assert (tmp_path / "student" / "model.keras").is_file()


def test_a_student_whose_teacher_missed_training_faces_does_not_train(face_tree: Path, tmp_path: Path):
    data = load_dataset(face_tree, "train")
    _labels_for(data.images[:10], np.full((10, 7), 1 / 7)).save(tmp_path / "partial.npz")
    cfg = TrainConfig(**{**TINY, "distill_weight": 0.5, "teacher_labels": str(tmp_path / "partial.npz")})
    with pytest.raises(ValueError, match="lack"):
        train(cfg, face_tree, tmp_path / "out", run_dir=tmp_path / "run", report=lambda s: None)
    assert not (tmp_path / "out" / "model.keras").exists()


def _happy_teacher(folder: Path) -> Path:
    """A model folder whose network calls every face happy, whatever it sees."""
    from areya.emotion.network import build_network

    cfg = TrainConfig(**{**TINY, "name": "happy-teacher"})
    model = build_network(cfg)
    for head, happy in (("emotion7", HAPPY), ("emotion4", 1)):
        kernel, bias = model.get_layer(head).get_weights()
        bias = np.zeros_like(bias)
        bias[happy] = 8.0
        model.get_layer(head).set_weights([np.zeros_like(kernel), bias])
    folder.mkdir(parents=True)
    model.save(folder / "model.keras")
    (folder / "config.toml").write_text(cfg.to_toml())
    return folder


@pytest.mark.slow
def test_a_teacher_model_labels_every_augmented_batch_and_the_student_learns_its_answer(
    face_tree: Path, tmp_path: Path
):
    teacher = _happy_teacher(tmp_path / "teacher")
    cfg = TrainConfig(
        **{**TINY, "epochs": 6, "learning_rate": 0.01, "distill_weight": 1.0, "teacher_model": str(teacher)}
    )
    lines: list[str] = []
    train(cfg, face_tree, tmp_path / "out", run_dir=tmp_path / "run", report=lines.append)
    assert any("on every augmented batch" in line for line in lines)
    data = load_dataset(face_tree, "train")
    student = EmotionClassifier.load(tmp_path / "out", tta_flip=False)
    _, probs = student.predict_raw(data.images.astype(np.float32)[..., None])
    assert (probs.argmax(1) == HAPPY).mean() >= 0.9


def test_a_student_has_one_teacher():
    with pytest.raises(ValueError, match="not both"):
        TrainConfig(distill_weight=0.5, teacher_labels="t.npz", teacher_model="models/x").validate()
