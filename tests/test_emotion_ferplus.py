"""FER+ vote targets, the FER+ majority test labels, ward-robust augmentation, a tiny FER+ training and the
evaluate CLI against both label sets, on generated faces and a generated votes CSV."""

from __future__ import annotations

import csv
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from synthetic_faces import TINY_TRAINING, write_face_tree

from areya.emotion.augment import augment_faces, ward_conditions
from areya.emotion.dataset import load_dataset
from areya.emotion.ferplus import (
    FERPLUS_TO_FER7,
    VOTE_COLUMNS,
    FerPlusVotes,
    dataset_targets,
    ferplus_targets,
    majority7,
    restrict_to_four,
    soft_class_weights,
    soft_training_targets,
    usable,
    vote_distribution,
)
from areya.emotion.metrics import soft_nll
from areya.emotion.schemes import AREYA4_CLASSES, FER7_CLASSES
from areya.emotion.train import class_weights, training_targets
from areya.emotion.train_config import TrainConfig

F7 = FER7_CLASSES.index
A4 = AREYA4_CLASSES.index
COLUMN_OF = {fer: VOTE_COLUMNS.index(plus) for plus, fer in FERPLUS_TO_FER7.items()}  # FER-7 name -> vote column


def votes(**counts: int) -> np.ndarray:
    """One row of FER+ votes by column name."""
    row = np.zeros(len(VOTE_COLUMNS), np.int64)
    for name, n in counts.items():
        row[VOTE_COLUMNS.index(name)] = n
    return row


def write_votes(path: Path, rows: list[tuple[str, str, np.ndarray]]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["split", "file", "original_label", "ferplus_image", *VOTE_COLUMNS])
        for i, (label, name, counts) in enumerate(rows):
            w.writerow(["train", name, label, f"fer{i:07d}.png", *counts.tolist()])
    return path


# ----------------------------------------------------------------------------------------------- the vote rule


def test_contempt_unknown_and_nf_votes_are_dropped_and_the_rest_renormalised():
    v = np.stack(
        [
            votes(happiness=6, neutral=2, contempt=1, unknown=1),
            votes(sadness=4, anger=4, NF=2),
            votes(surprise=10),
        ]
    )
    d = vote_distribution(v)
    np.testing.assert_allclose(d.sum(axis=1), 1.0, rtol=1e-6)
    assert d[0, F7("happy")] == pytest.approx(0.75) and d[0, F7("neutral")] == pytest.approx(0.25)
    assert d[1, F7("sad")] == pytest.approx(0.5) and d[1, F7("angry")] == pytest.approx(0.5)
    assert d[2, F7("surprise")] == 1.0


def test_faces_mostly_unknown_contempt_or_not_a_face_are_unusable():
    v = np.stack(
        [
            votes(NF=6, neutral=4),  # not a face, says the majority
            votes(unknown=3, contempt=3, fear=4),  # 4 of 10 votes on the seven classes
            votes(contempt=10),  # no seven-class vote at all
            votes(unknown=5, sadness=5),  # exactly half: kept
        ]
    )
    np.testing.assert_array_equal(usable(v), [False, False, False, True])
    assert (vote_distribution(v)[:3] == 0).all()


def test_targets_mix_votes_with_the_label_and_faces_without_a_row_keep_their_label():
    labels7 = np.array([F7("angry"), F7("sad"), F7("fear"), F7("happy")])
    v = np.stack([votes(neutral=8, anger=2), votes(sadness=10), votes(NF=9, fear=1), np.zeros(10, np.int64)])
    found = np.array([True, True, True, False])
    t = ferplus_targets(labels7, v, found, weight=0.8)
    np.testing.assert_array_equal(t.keep, [True, True, False, True])
    assert t.targets7[0, F7("neutral")] == pytest.approx(0.8 * 0.8)
    assert t.targets7[0, F7("angry")] == pytest.approx(0.8 * 0.2 + 0.2)
    assert t.targets7[1, F7("sad")] == pytest.approx(1.0)
    assert (t.targets7[2] == 0).all()  # dropped
    np.testing.assert_array_equal(t.targets7[3], np.eye(7)[F7("happy")])  # no FER+ row: one-hot
    only_votes = ferplus_targets(labels7, v, found, weight=1.0).targets7
    assert only_votes[0, F7("neutral")] == pytest.approx(0.8)
    only_label = ferplus_targets(labels7, v, found, weight=0.0).targets7
    np.testing.assert_array_equal(only_label[[0, 1, 3]], np.eye(7)[labels7[[0, 1, 3]]])
    with pytest.raises(ValueError, match="ferplus_weight"):
        ferplus_targets(labels7, v, found, weight=1.5)


def test_the_4_class_target_is_the_7_class_one_restricted_where_a_4_class_class_leads():
    d = np.zeros((4, 7), np.float32)
    d[0, [F7("neutral"), F7("sad"), F7("surprise")]] = [0.5, 0.3, 0.2]  # neutral leads
    d[1, [F7("surprise"), F7("happy")]] = [0.6, 0.4]  # surprise leads: no 4-class target
    d[2, [F7("fear"), F7("sad")]] = [0.5, 0.5]  # a tie with a 4-class class counts as inside
    d[3, F7("disgust")] = 1.0
    four, inside = restrict_to_four(d)
    np.testing.assert_array_equal(inside, [True, False, True, False])
    assert four[0, A4("relaxed")] == pytest.approx(0.625) and four[0, A4("sad")] == pytest.approx(0.375)
    assert four[2, A4("sad")] == pytest.approx(1.0)
    assert (four[[1, 3]] == 0).all()
    y = soft_training_targets(d, smoothing=0.1)
    np.testing.assert_allclose(y["emotion7"].sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(y["emotion4"][[0, 2]].sum(axis=1), 1.0, rtol=1e-6)
    assert (y["emotion4"][[1, 3]] == 0).all()


def test_one_hot_soft_targets_and_weights_equal_the_hard_label_ones():
    labels7 = np.repeat(np.arange(7), [40, 4, 40, 80, 40, 20, 3])
    onehot = np.eye(7, dtype=np.float32)[labels7]
    np.testing.assert_allclose(soft_class_weights(onehot, 0.5), class_weights(labels7, 0.5), rtol=1e-5)
    w = class_weights(labels7, 0.5)
    hard, soft = training_targets(labels7, 0.1, w), soft_training_targets(onehot, 0.1, w)
    for head in ("emotion7", "emotion4"):
        np.testing.assert_allclose(soft[head], hard[head], rtol=1e-5, atol=1e-7)


def test_a_soft_face_is_weighted_by_its_expected_class_weight_and_keeps_its_shape():
    targets = np.array([[0.5, 0.5, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0, 0]], np.float32)
    w = soft_class_weights(targets, 1.0)
    assert float((targets @ w).mean()) == pytest.approx(1.0, rel=1e-5)
    y = soft_training_targets(targets, 0.0, w)["emotion7"]
    assert y[0].sum() == pytest.approx(float(targets[0] @ w), rel=1e-5)
    assert y[0, 0] == pytest.approx(y[0, 1])  # the face's target keeps its shape


def test_votes_are_found_by_class_folder_and_file_name(tmp_path: Path):
    write_face_tree(tmp_path / "train", per_class=2, seed=3, classes=("angry", "happy"))
    csv_path = write_votes(
        tmp_path / "votes.csv",
        [
            ("angry", "angry_0.png", votes(anger=7, sadness=3)),
            ("happy", "angry_0.png", votes(happiness=10)),  # the same file name in another folder: another face
            ("happy", "happy_1.png", votes(NF=10)),
        ],
    )
    data = load_dataset(tmp_path / "train")
    v = FerPlusVotes.load(csv_path)
    counts, found = v.lookup(data)
    names = [Path(s).name for s in data.sources]
    assert found.tolist() == [n in ("angry_0.png", "happy_1.png") for n in names]
    assert counts[names.index("angry_0.png"), VOTE_COLUMNS.index("anger")] == 7
    kept, targets, line = dataset_targets(data, v, 1.0)
    assert len(kept) == 3 and targets.shape == (3, 7)  # happy_1 (not a face) dropped
    assert "1 dropped" in line and "2 without a FER+ row" in line
    assert kept.sources is not None and "happy_1.png" not in [Path(s).name for s in kept.sources]


def test_a_votes_csv_with_conflicting_rows_or_missing_columns_is_refused(tmp_path: Path):
    bad = write_votes(tmp_path / "v.csv", [("sad", "a.jpg", votes(sadness=9)), ("sad", "a.jpg", votes(anger=9))])
    with pytest.raises(ValueError, match="two rows"):
        FerPlusVotes.load(bad)
    (tmp_path / "w.csv").write_text("file,original_label,neutral\na.jpg,sad,3\n")
    with pytest.raises(ValueError, match="missing column"):
        FerPlusVotes.load(tmp_path / "w.csv")
    with pytest.raises(FileNotFoundError):
        FerPlusVotes.load(tmp_path / "none.csv")


def test_config_validates_the_new_settings():
    assert TrainConfig().labels == "fer2013" and TrainConfig().ward_noise == 0.0
    with pytest.raises(ValueError, match="labels"):
        TrainConfig.from_dict({"labels": "ferplus+"})
    with pytest.raises(ValueError, match="ferplus_weight"):
        TrainConfig.from_dict({"labels": "ferplus", "ferplus_weight": -0.1})
    with pytest.raises(ValueError, match="ward_jpeg"):
        TrainConfig.from_dict({"ward_jpeg": 1.5})
    with pytest.raises(ValueError, match="distillation"):
        TrainConfig.from_dict({"labels": "ferplus", "distill_weight": 0.5, "teacher_labels": "x.npz"})
    cfg = TrainConfig.from_dict({"labels": "ferplus", "ferplus_weight": 0.8, "votes_csv": "v.csv", "ward_roll": 0.3})
    assert TrainConfig.from_dict(tomllib.loads(cfg.to_toml())) == cfg


# ----------------------------------------------------------------------------------------- the FER+ majority


def test_the_majority_is_the_unique_top_class_of_a_usable_face():
    v = np.stack(
        [
            votes(happiness=5, neutral=3, contempt=2),
            votes(sadness=4, neutral=4, unknown=2),  # tie
            votes(anger=3, disgust=2, unknown=5),  # 5 of 10 on the seven classes: usable
            votes(fear=2, unknown=8),  # unusable
        ]
    )
    np.testing.assert_array_equal(majority7(v), [F7("happy"), -1, F7("angry"), -1])


def test_soft_nll_against_votes():
    p = np.array([[0.5, 0.5], [0.9, 0.1]])
    q = np.array([[1.0, 0.0], [0.5, 0.5]])
    assert soft_nll(p, q) == pytest.approx(-(np.log(0.5) + 0.5 * np.log(0.9) + 0.5 * np.log(0.1)) / 2)
    assert soft_nll(p, np.eye(2)[[0, 0]]) == pytest.approx(-(np.log(0.5) + np.log(0.9)) / 2)


class _CornerClassifier:
    """The corner pixel holds the class it answers, with probability 0.7."""

    model_version = "corner@test"
    tta_flip = False

    def __init__(self) -> None:
        from areya.emotion.calibration import Calibration

        self.calibration = Calibration(four_class_source="seven")

    def predict_arrays(self, x):
        return self.predict_raw(x)

    def predict_raw(self, x):
        c = x[:, 0, 0, 0].astype(int)
        p7 = np.full((len(x), 7), 0.05, np.float32)
        p7[np.arange(len(x)), c] = 0.7
        return np.full((len(x), 4), 0.25, np.float32), p7


def test_evaluate_against_the_ferplus_majority_on_hand_made_votes(tmp_path: Path):
    from areya.emotion.evaluate import evaluate

    write_face_tree(tmp_path / "t", per_class=1, seed=4, classes=("angry", "happy", "sad", "neutral", "fear"))
    data = load_dataset(tmp_path / "t")
    names = {FER7_CLASSES[int(lbl)]: Path(s).name for lbl, s in zip(data.labels7, data.sources, strict=True)}
    rows = [
        ("angry", names["angry"], votes(sadness=6, anger=4)),  # FER+ says sad
        ("happy", names["happy"], votes(happiness=10)),
        ("sad", names["sad"], votes(sadness=5, neutral=5)),  # tie: not scored
        ("neutral", names["neutral"], votes(neutral=7, fear=3)),
        ("fear", names["fear"], votes(surprise=6, fear=4)),  # majority outside the 4 classes
    ]
    v = FerPlusVotes.load(write_votes(tmp_path / "votes.csv", rows))
    data.images[:, 0, 0] = data.labels7  # the model answers the FER-2013 label
    ev = evaluate(_CornerClassifier(), tmp_path / "t", "7", data=data, labels="both", votes=v)
    assert ev.report.n == 5 and ev.report.accuracy == 1.0
    plus = ev.ferplus
    assert plus is not None and plus.label_set == "ferplus"
    assert plus.report.n == 4 and plus.report.accuracy == pytest.approx(2 / 4)  # angry->sad, fear->surprise wrong
    assert plus.report.per_class["sad"]["recall"] == 0.0 and plus.report.per_class["angry"]["precision"] == 0.0
    assert plus.extra["ferplus_faces"]["tied_majority"] == 1
    after = plus.extra["calibration"]["after"]
    assert set(after) == {"ece", "brier", "nll", "vote_nll"}
    # the happy face: votes all happy, the model 0.7 happy
    assert after["vote_nll"] > -np.log(0.7) / 4
    d = ev.to_dict()
    assert d["labels"] == "fer2013" and d["ferplus"]["n"] == 4 and d["ferplus"]["labels"] == "ferplus"
    ev4 = evaluate(_CornerClassifier(), tmp_path / "t", "4", data=data, labels="ferplus", votes=v)
    assert ev4.label_set == "ferplus" and ev4.report.n == 3  # angry(->sad), happy, neutral; fear's is surprise
    assert ev4.report.accuracy == pytest.approx(2 / 3)
    assert ev4.extra["ferplus_faces"]["majority_outside_scheme"] == 1


# ---------------------------------------------------------------------------------------------- augmentation


def _faces(n: int = 16, seed: int = 0) -> np.ndarray:
    from synthetic_faces import synthetic_face

    rng = np.random.default_rng(seed)
    return np.stack([synthetic_face(i % 7, rng) for i in range(n)]).astype(np.float32)


def _ward(**on: float) -> TrainConfig:
    return TrainConfig(**on)


def test_low_light_darkens():
    faces = _faces()
    out = ward_conditions(faces.copy(), _ward(ward_low_light=1.0), np.random.default_rng(1))
    assert (out.mean(axis=(1, 2)) < 0.8 * faces.mean(axis=(1, 2))).all()
    assert out.min() >= 0 and out.max() <= 255 and (out == np.round(out)).all()


def test_noise_changes_pixels_but_keeps_the_range():
    faces = _faces()
    out = ward_conditions(faces.copy(), _ward(ward_noise=1.0), np.random.default_rng(2))
    diff = out - faces
    assert (np.abs(diff).mean(axis=(1, 2)) > 1).all()
    assert abs(float(diff.mean())) < 1.0  # zero-mean
    assert out.min() >= 0 and out.max() <= 255


def test_small_faces_lose_detail():
    faces = _faces()
    out = ward_conditions(faces.copy(), _ward(ward_small_face=1.0), np.random.default_rng(3))

    def detail(x):
        return np.abs(np.diff(x, axis=2)).mean()

    assert detail(out) < 0.9 * detail(faces)
    assert abs(out.mean() - faces.mean()) < 2


def test_jpeg_changes_pixels_a_little():
    faces = _faces()
    out = ward_conditions(faces.copy(), _ward(ward_jpeg=1.0), np.random.default_rng(4))
    err = np.abs(out - np.round(faces)).mean()
    assert 0.5 < err < 15


def test_occlusion_covers_one_edge_with_a_flat_band():
    faces = np.full((32, 48, 48), 128.0, np.float32)
    faces[:, 20:28, 20:28] = 0  # the centre stays untouched
    out = ward_conditions(faces.copy(), _ward(ward_occlusion=1.0), np.random.default_rng(5))
    changed = np.abs(out - faces) > 0
    assert changed.any(axis=(1, 2)).all()
    np.testing.assert_array_equal(out[:, 20:28, 20:28], 0)
    edges = changed[:, -1, :].all(axis=1) | changed[:, 0, :].all(axis=1)
    edges |= changed[:, :, 0].all(axis=1) | changed[:, :, -1].all(axis=1)
    assert edges.all()


def test_roll_rotates_and_off_means_off():
    face = np.zeros((1, 48, 48), np.uint8)
    face[:, 23:25, 4:44] = 255  # a horizontal bar
    base = dict(flip=False, translate=0.0, rotate_degrees=0.0, zoom=0.0, contrast=0.0, brightness=0.0)
    plain = augment_faces(face, TrainConfig(**base), np.random.default_rng(6))[0, :, :, 0]
    np.testing.assert_array_equal(plain, face[0])
    rolled = [
        augment_faces(face, TrainConfig(**base, ward_roll=1.0), np.random.default_rng(s))[0, :, :, 0] for s in range(4)
    ]
    for r in rolled:
        ys, xs = np.nonzero(r > 128)
        slope = np.polyfit(xs, ys, 1)[0]
        assert 0.02 < abs(slope) < np.tan(np.radians(15.5))


def test_ward_defaults_leave_batches_as_before():
    images = _faces(12).astype(np.uint8)
    cfg = TrainConfig(erasing=0.25)
    a = augment_faces(images, cfg, np.random.default_rng([1, 2, 3]))
    zero = TrainConfig(erasing=0.25, ward_low_light=0.0, ward_roll=0.0)
    b = augment_faces(images, zero, np.random.default_rng([1, 2, 3]))
    np.testing.assert_array_equal(a, b)
    c = augment_faces(images, TrainConfig(erasing=0.25, ward_noise=0.5), np.random.default_rng([1, 2, 3]))
    d = augment_faces(images, TrainConfig(erasing=0.25, ward_noise=0.5), np.random.default_rng([1, 2, 3]))
    np.testing.assert_array_equal(c, d)  # seeded
    assert not np.array_equal(a, c)


# ------------------------------------------------------------------------------------ training and the CLI


@pytest.fixture(scope="module")
def ferplus_tree(tmp_path_factory) -> Path:
    """A face tree with train/ and publictest/, and ferplus_votes.csv beside them: most faces' votes agree with
    their folder, some disagree, one face per split is not a face, one has no row."""
    root = tmp_path_factory.mktemp("ferplus")
    write_face_tree(root / "train", per_class=6, seed=1)
    write_face_tree(root / "publictest", per_class=3, seed=2)
    for path in (root / "publictest").glob("*/*.png"):  # file names are unique across splits, as in FER-2013
        path.rename(path.with_name("test_" + path.name))
    rng = np.random.default_rng(9)
    rows = []
    for split in ("train", "publictest"):
        data = load_dataset(root / split)
        for i, (label, src) in enumerate(zip(data.labels7, data.sources, strict=True)):
            name = Path(src).name
            if i == 0:
                continue  # no FER+ row
            if i == 1:
                counts = votes(NF=8, neutral=2)
            else:
                seven = rng.multinomial(10, np.eye(7)[label] * 0.7 + 0.3 / 7)
                counts = np.zeros(10, np.int64)
                for k, n in enumerate(seven):
                    counts[COLUMN_OF[FER7_CLASSES[k]]] = n
            rows.append((FER7_CLASSES[int(label)], name, counts))
    write_votes(root / "ferplus_votes.csv", rows)
    return root


@pytest.fixture(scope="module")
def ferplus_run(ferplus_tree: Path, tmp_path_factory) -> tuple[Path, list[str], list[str]]:
    """models/areya-ferplus's recipe in small: a network fine-tuned on FER+ vote targets with every ward
    augmentation, class weights and weight averaging over its two epochs; interrupted after its first epoch and
    resumed.  Returns (output folder, the first run's report lines, the resumed run's)."""
    import keras

    from areya.emotion import train as train_module
    from areya.emotion.network import build_network

    root = tmp_path_factory.mktemp("ferplus-run")
    keras.utils.set_random_seed(3)
    build_network(TrainConfig(**TINY_TRAINING)).save(root / "start.keras")  # the network it starts from
    cfg = TrainConfig(
        **{
            **TINY_TRAINING,
            "epochs": 2,
            "init_model": str(root / "start.keras"),
            "swa_epochs": 2,
            "use_ema": False,
            "labels": "ferplus",
            "ferplus_weight": 0.8,
            "class_weight_power": 0.5,
            "ward_low_light": 0.3,
            "ward_noise": 0.3,
            "ward_small_face": 0.3,
            "ward_jpeg": 0.3,
            "ward_roll": 0.3,
            "ward_occlusion": 0.3,
        }
    )

    class Crash(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt("simulated crash")

    first: list[str] = []
    out, run = root / "model", root / "run"
    saved = train_module.PROGRESS_SECONDS
    train_module.PROGRESS_SECONDS = 1e-9  # a progress line after every batch
    try:
        with pytest.raises(KeyboardInterrupt):
            train_module.train(cfg, ferplus_tree, out, run_dir=run, report=first.append, extra_callbacks=[Crash()])
    finally:
        train_module.PROGRESS_SECONDS = saved
    second: list[str] = []
    train_module.train(cfg, ferplus_tree, out, run_dir=run, report=second.append)
    return out, first, second


def test_a_tiny_ferplus_fine_tuning_reads_the_votes_shows_progress_and_resumes(ferplus_run):
    out, first, second = ferplus_run
    text = "\n".join(first)
    assert "FER+ votes from" in text and "fine-tuning from" in text
    assert "1 dropped" in text and "1 without a FER+ row" in text  # the training part's not-a-face and row-less face
    assert "7-class loss weights" in text
    progress = [line for line in first if line.startswith("  epoch 1/2: batch ")]
    assert progress and "images/s" in progress[0] and "loss" in progress[0]
    assert [line.split(" |")[0] for line in first if line.startswith("epoch ")] == ["epoch 1/2"]
    assert [line.split(" |")[0] for line in second if line.startswith("epoch ")] == ["epoch 2/2"]
    history = json.loads((out / "history.json").read_text())
    assert len(history["history"]["loss"]) == 2 and np.isfinite(history["history"]["loss"]).all()
    assert history["swa"]["epochs"] == [1, 2]  # the average kept the crashed run's epoch
    assert TrainConfig.from_file(out / "config.toml").labels == "ferplus"


def test_the_evaluate_cli_scores_against_both_label_sets(ferplus_run, ferplus_tree: Path, tmp_path: Path):
    from areya.cli.models import evaluate_cmd

    out = ferplus_run[0]
    args = ["--model", str(out), "--scheme", "4", "--data", str(ferplus_tree / "publictest"), "--json", "-"]
    result = CliRunner().invoke(evaluate_cmd, [*args, "--labels", "both", "--plots", str(tmp_path / "plots")])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["labels"] == "fer2013" and data["n"] == 12  # FER-2013 figures as before
    plus = data["ferplus"]
    assert plus["labels"] == "ferplus" and 0 < plus["n"] <= 20
    assert set(plus["calibration"]["after"]) == {"ece", "brier", "nll", "vote_nll"}
    assert set(plus["per_class"]) == set(AREYA4_CLASSES)
    assert plus["ferplus_faces"]["without_votes"] == 1 and plus["ferplus_faces"]["unusable_votes"] == 1
    assert "against the FER+ majority" in result.stderr
    assert (tmp_path / "plots" / "confusion_4class_ferplus.png").is_file()
    assert (tmp_path / "plots" / "confusion_4class.png").is_file()
    default = CliRunner().invoke(evaluate_cmd, args)
    assert default.exit_code == 0 and "ferplus" not in json.loads(default.stdout)
    only = CliRunner().invoke(evaluate_cmd, [*args[:-2], "--labels", "ferplus"])
    assert only.exit_code == 0, only.output
    assert "NLL against the votes" in only.output
    missing = CliRunner().invoke(evaluate_cmd, [*args, "--labels", "ferplus", "--votes", str(tmp_path / "none.csv")])
    assert missing.exit_code != 0 and "not found" in missing.output


def test_calibrate_fits_the_temperatures_to_the_votes_of_a_ferplus_model(ferplus_run, ferplus_tree: Path):
    from areya.cli.models import models_calibrate
    from areya.emotion.calibrate import vote_targets

    out = ferplus_run[0]
    result = CliRunner().invoke(models_calibrate, [str(out), "--data", str(ferplus_tree)])
    assert result.exit_code == 0, result.output  # a FER+ model: fitted to the FER+ majority, the vote NLL reported
    assert "fitted to: FER+ majority" in result.output and "vote NLL" in result.output
    cal = json.loads((out / "calibration.json").read_text())
    assert "FER+ majority" in cal["fitted_on"] and "vote_nll" in cal["validation"]["7class"]["after"]
    soft = CliRunner().invoke(models_calibrate, [str(out), "--data", str(ferplus_tree), "--labels", "votes"])
    assert soft.exit_code == 0, soft.output
    assert "fitted to: FER+ vote distributions" in soft.output
    assert "FER+ vote distributions" in json.loads((out / "calibration.json").read_text())["fitted_on"]
    hard = CliRunner().invoke(models_calibrate, [str(out), "--data", str(ferplus_tree), "--labels", "fer2013"])
    assert hard.exit_code == 0, hard.output
    assert "fitted to" not in hard.output
    assert "vote_nll" not in json.loads((out / "calibration.json").read_text())["validation"]["7class"]["after"]
    # the targets: votes where usable, the folder's label (one-hot) without a row, not-a-face faces left out
    data = load_dataset(ferplus_tree / "train")
    v = FerPlusVotes.load(ferplus_tree / "ferplus_votes.csv")
    keep, labels7, targets7 = vote_targets(data, v)
    counts, found = v.lookup(data)
    assert keep.tolist() == (~found | usable(counts)).tolist() and (~keep).sum() == 1
    assert np.allclose(targets7.sum(axis=1), 1.0)
    rowless = int(np.flatnonzero(~found)[0])
    assert labels7[int(keep[:rowless].sum())] == data.labels7[rowless]
    assert targets7[int(keep[:rowless].sum())][data.labels7[rowless]] == 1.0


def test_the_model_card_also_scores_the_served_answers_against_the_ferplus_majority(
    ferplus_run, ferplus_tree: Path, tmp_path: Path
):
    import shutil

    from areya.emotion.model_card import write_card

    model = tmp_path / "model"
    shutil.copytree(ferplus_run[0], model)
    card_md = write_card(model, ferplus_tree / "publictest", train_command="areya train ...").read_text()
    assert "## Figures against the FER+ majority (PublicTest, as served)" in card_md
    card = json.loads((model / "card.json").read_text())
    served = "tta" if card["served_tta"] else "single"
    plus = card["evaluations"][f"7class_{served}"]["ferplus"]
    assert plus["labels"] == "ferplus" and plus["ferplus_faces"]["without_votes"] == 1
    assert f"| 7-class | {plus['n']} | {plus['accuracy']:.4f} |" in card_md
    other = "single" if served == "tta" else "tta"
    assert "ferplus" not in card["evaluations"][f"7class_{other}"]  # only the served setting
    shutil.rmtree(model)
    shutil.copytree(ferplus_run[0], model)
    (tmp_path / "bare").mkdir()
    shutil.copytree(ferplus_tree / "publictest", tmp_path / "bare" / "publictest")  # no votes beside it
    assert "FER+ majority" not in write_card(model, tmp_path / "bare" / "publictest", "areya train ...").read_text()
