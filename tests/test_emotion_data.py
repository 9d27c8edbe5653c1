"""FER-2013 import (class folders and CSV), scheme mapping."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from synthetic_faces import write_face_tree

from areya.emotion.dataset import (
    FaceDataset,
    ImportReport,
    holdout_split,
    load_dataset,
    load_fer_csv,
    load_folder_tree,
    without_copies,
)
from areya.emotion.schemes import (
    AREYA4_CLASSES,
    FER7_CLASSES,
    SCHEME4,
    SCHEME7,
    fer7_to_scheme_labels,
    folder_to_fer7,
    get_scheme,
)


def test_scheme_mapping_keeps_four_classes_and_drops_the_rest():
    labels7 = np.arange(7)
    labels4 = fer7_to_scheme_labels(labels7, SCHEME4)
    mapped = {FER7_CLASSES[i]: (AREYA4_CLASSES[j] if j >= 0 else None) for i, j in enumerate(labels4)}
    assert mapped == {
        "angry": "angry",
        "disgust": None,
        "fear": None,
        "happy": "happy",
        "sad": "sad",
        "surprise": None,
        "neutral": "relaxed",
    }
    assert list(fer7_to_scheme_labels(labels7, SCHEME7)) == list(range(7))
    assert folder_to_fer7("relaxed") == FER7_CLASSES.index("neutral")
    assert folder_to_fer7("contempt") is None
    with pytest.raises(ValueError, match="unknown scheme"):
        get_scheme("5")


def test_folder_tree_counts_corrupt_and_resized_files(tmp_path: Path):
    counts = write_face_tree(tmp_path, per_class=3)
    (tmp_path / "happy" / "empty.jpg").write_bytes(b"")
    (tmp_path / "sad" / "garbage.jpg").write_bytes(b"this is not a jpeg")
    big = np.full((96, 64, 3), 128, np.uint8)
    cv2.imwrite(str(tmp_path / "angry" / "big.png"), big)
    (tmp_path / "contempt").mkdir()
    (tmp_path / "notes.txt").write_text("not a folder of images")

    ds = load_folder_tree(tmp_path)

    assert len(ds) == sum(counts.values()) + 1
    assert ds.images.shape == (len(ds), 48, 48) and ds.images.dtype == np.uint8
    assert sorted(Path(p).name for p in ds.report.corrupt) == ["empty.jpg", "garbage.jpg"]
    assert [Path(p).name for p in ds.report.resized] == ["big.png"]
    assert ds.report.ignored_folders == ["contempt"]
    assert ds.report.per_class["angry"] == 4
    assert "2 corrupt" in ds.report.summary() and "1 resized" in ds.report.summary()
    # labels follow the folder names
    assert np.bincount(ds.labels7, minlength=7)[FER7_CLASSES.index("angry")] == 4


def test_load_dataset_picks_split_subfolder(tmp_path: Path):
    write_face_tree(tmp_path / "train", per_class=2)
    write_face_tree(tmp_path / "publictest", per_class=1)
    assert len(load_dataset(tmp_path, "train")) == 14
    assert len(load_dataset(tmp_path, "publictest")) == 7
    with pytest.raises(FileNotFoundError):
        load_folder_tree(tmp_path / "missing")


def _row(label, pixels, usage="Training"):
    return f'{label},"{pixels}",{usage}\n'


def test_csv_import_reports_bad_rows_and_filters_usage(tmp_path: Path):
    rng = np.random.default_rng(1)
    good = " ".join(str(v) for v in rng.integers(0, 256, 48 * 48))
    small = " ".join(str(v) for v in rng.integers(0, 256, 24 * 24))
    text = "emotion,pixels,Usage\n"
    text += _row(3, good) + _row(0, good, "PublicTest") + _row(6, small)
    text += _row(9, good)  # label out of range
    text += _row(2, "1 2 3")  # not a square image
    text += _row("x", good)  # not a number
    text += _row(4, "")  # empty
    path = tmp_path / "fer2013.csv"
    path.write_text(text)

    everything = load_fer_csv(path)
    assert len(everything) == 3
    assert len(everything.report.corrupt) == 4
    assert len(everything.report.resized) == 1
    assert list(everything.labels7) == [3, 0, 6]

    train = load_fer_csv(path, "train")
    assert list(train.labels7) == [3, 6]
    assert load_dataset(path, "publictest").labels7.tolist() == [0]
    with pytest.raises(ValueError, match="unknown split"):
        load_fer_csv(path, "validation")


def test_csv_without_fer_columns_is_rejected(tmp_path: Path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="missing column"):
        load_fer_csv(path)


def test_holdout_split_is_stratified_disjoint_and_seeded():
    labels = np.repeat(np.arange(7), [40, 10, 30, 70, 50, 20, 30])
    images = np.arange(labels.size, dtype=np.int64)[:, None, None] * np.ones((1, 48, 48), np.int64)
    data = FaceDataset(images.astype(np.uint16), labels, ImportReport(source="gen"))  # pixel value = face id
    rest, val = holdout_split(data, 0.1, seed=3)
    assert len(rest) + len(val) == len(data)
    assert np.bincount(val.labels7, minlength=7).tolist() == [4, 1, 3, 7, 5, 2, 3]  # 10 % of every class
    ids_val, ids_rest = set(val.images[:, 0, 0].tolist()), set(rest.images[:, 0, 0].tolist())
    assert not ids_val & ids_rest  # no face in both parts
    again, _ = holdout_split(data, 0.1, seed=3)[1], None
    assert np.array_equal(again.images, val.images)  # same seed, same faces
    other = holdout_split(data, 0.1, seed=4)[1]
    assert not np.array_equal(other.images, val.images)
    assert "validation part" in val.report.source and val.report.loaded == len(val)
    with pytest.raises(ValueError):
        holdout_split(data, 1.0, seed=0)


def test_without_copies_leaves_out_pixel_identical_faces_only():
    rng = np.random.default_rng(3)
    train = FaceDataset(rng.integers(0, 256, (5, 48, 48), dtype=np.uint8), np.arange(5), ImportReport("train", 5))
    near = train.images[1].copy()
    near[0, 0] ^= 1  # one pixel off: a different face
    images = np.stack([train.images[0], near, rng.integers(0, 256, (48, 48), dtype=np.uint8), train.images[4]])
    test = FaceDataset(images, np.array([3, 1, 6, 2]), ImportReport("test", 4))  # the last copy under another label
    kept = without_copies(test, train)
    assert len(kept) == 2 and kept.labels7.tolist() == [1, 6]
    np.testing.assert_array_equal(kept.images[0], near)
    assert kept.report.loaded == 2 and kept.report.source == "test less 2 copies of faces in train"
    assert dict(kept.report.per_class) == {FER7_CLASSES[1]: 1, FER7_CLASSES[6]: 1}
    assert len(without_copies(test, FaceDataset(images[:0], np.arange(0), ImportReport("none", 0)))) == 4
