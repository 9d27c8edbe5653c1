"""``areya predict``: faces and both schemes' emotions per image, annotated copies, per-file errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from areya.cli import cli


@pytest.fixture(scope="module")
def astronaut_bgr() -> np.ndarray:
    data = pytest.importorskip("skimage.data")
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="module")
def untrained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny randomly initialised two-headed network saved as .keras (the trained one may not exist yet)."""
    import keras

    from areya.emotion.network import build_network
    from areya.emotion.train_config import TrainConfig

    keras.utils.set_random_seed(0)
    cfg = TrainConfig(name="untrained", widths=[8, 16], convs_per_stage=[1, 1])
    path = tmp_path_factory.mktemp("model") / "model.keras"
    build_network(cfg).save(path)
    return path


@pytest.fixture
def images(tmp_path: Path, astronaut_bgr: np.ndarray) -> dict[str, Path]:
    """one face, two faces, no face, an unreadable file and a missing one."""
    head = astronaut_bgr[0:260, 100:350]
    one = np.full((480, 640, 3), 100, np.uint8)
    one[100:360, 200:450] = head
    two = np.full((480, 900, 3), 100, np.uint8)
    two[50:310, 30:280] = head
    two[200:460, 600:850] = cv2.flip(head, 1)
    paths = {
        "one": tmp_path / "one.png",
        "two": tmp_path / "two.jpg",
        "none": tmp_path / "none.png",
        "bad": tmp_path / "bad.jpg",
        "missing": tmp_path / "missing.png",
    }
    cv2.imwrite(str(paths["one"]), one)
    cv2.imwrite(str(paths["two"]), two)
    cv2.imwrite(str(paths["none"]), np.full((240, 320, 3), 30, np.uint8))
    paths["bad"].write_text("not an image")
    return paths


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["predict", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_predict_prints_faces_and_both_schemes(images, untrained_model, tmp_path: Path) -> None:
    out_dir = tmp_path / "annotated"
    code, out, err = run(
        str(images["one"]), str(images["two"]), str(images["none"]), "--model", str(untrained_model),
        "--out", str(out_dir),
    )  # fmt: skip
    assert code == 0, err
    lines = out.splitlines()
    one = [line for line in lines if line.startswith("one.png face")]
    two = [line for line in lines if line.startswith("two.jpg face")]
    assert len(one) == 1 and len(two) == 2
    for line in one + two:
        assert "box=(" in line and "4-class: " in line and " | 7-class: " in line
    assert "none.png: no faces" in lines
    written = sorted(p.name for p in out_dir.iterdir())
    assert written == ["none.annotated.png", "one.annotated.png", "two.annotated.png"]
    original = cv2.imread(str(images["two"]))
    annotated = cv2.imread(str(out_dir / "two.annotated.png"))
    assert annotated.shape == original.shape
    assert np.abs(annotated.astype(int) - original.astype(int)).max() > 100  # boxes and labels drawn


def test_predict_json_has_probabilities(images, untrained_model) -> None:
    code, out, err = run(str(images["two"]), "--model", str(untrained_model), "--json")
    assert code == 0, err
    (record,) = [json.loads(line) for line in out.splitlines()]
    assert record["image"].endswith("two.jpg") and record["detector"] == "blazeface"
    assert len(record["faces"]) == 2
    for face in record["faces"]:
        assert len(face["box"]) == 4
        assert sum(face["probs4"].values()) == pytest.approx(1.0, abs=1e-3)
        assert sum(face["probs7"].values()) == pytest.approx(1.0, abs=1e-3)
        assert face["label4"] == max(face["probs4"], key=face["probs4"].get)
        assert list(face["probs4"]) == ["angry", "happy", "relaxed", "sad"]


def test_bad_files_are_reported_and_the_others_still_processed(images, untrained_model, tmp_path: Path) -> None:
    out_dir = tmp_path / "annotated"
    code, out, err = run(
        str(images["bad"]), str(images["one"]), str(images["missing"]), "--model", str(untrained_model),
        "--out", str(out_dir),
    )  # fmt: skip
    assert code != 0
    assert f"{images['bad']}: not a readable image" in err
    assert f"{images['missing']}: no such file" in err
    assert "2 of 3 image(s) failed" in err
    assert len([line for line in out.splitlines() if line.startswith("one.png face")]) == 1
    assert sorted(p.name for p in out_dir.iterdir()) == ["one.annotated.png"]


def test_without_a_model_boxes_only_with_a_note(images, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AREYA_MODELS_DIR", str(tmp_path / "no-models"))
    code, out, err = run(str(images["one"]), "--detector", "haar")
    assert code == 0
    assert "no emotion model available" in err and "--model" in err
    (line,) = out.splitlines()
    assert line.startswith("one.png face 1 box=(") and "4-class" not in line


def test_explicit_model_that_cannot_load_is_an_error(images, tmp_path: Path) -> None:
    code, _, err = run(str(images["one"]), "--model", str(tmp_path / "nope.keras"))
    assert code != 0
    assert "cannot load emotion model" in err


def test_unknown_detector_is_an_error(images) -> None:
    code, _, err = run(str(images["one"]), "--detector", "nope")
    assert code != 0
    assert "unknown face detector 'nope'" in err and "haar" in err
