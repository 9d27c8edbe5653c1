"""The night-ward bench's labels: a face's class by its FER-2013 folder or by the FER+ majority of its ten
annotators (``--labels``), and the figures read against either.  The bench's own run is ``tests/test_bench_quick.py``'s
(``--quick``); the run here with FER+ labels needs ``../shared/data/fer2013`` (skipped without it)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from areya.emotion.ferplus import VOTE_COLUMNS
from bench.bench_night_ward import FER_DIR, VOTES, Reading, Tally, ferplus_labels, figures, main, right

P_ANGRY, P_HAPPY, P_RELAXED, P_SAD = np.eye(4)  # answers of the 4-class head (angry, happy, relaxed, sad)


def write_votes(path: Path, rows: dict[str, dict[str, int]]) -> None:
    """A FER+ votes CSV of ``rows`` (``"folder/file"`` -> votes by column; the others 0)."""
    with path.open("w", newline="") as fh:
        out = csv.DictWriter(fh, ["split", "file", "original_label", "ferplus_image", *VOTE_COLUMNS])
        out.writeheader()
        for key, votes in rows.items():
            folder, name = key.split("/")
            line = {"split": "PublicTest", "file": name, "original_label": folder, "ferplus_image": name}
            out.writerow(line | {c: votes.get(c, 0) for c in VOTE_COLUMNS})


def test_a_face_is_what_most_of_its_annotators_read_among_the_four_classes(tmp_path: Path) -> None:
    write_votes(
        tmp_path / "ferplus_votes.csv",
        {
            "sad/a.png": {"neutral": 7, "sadness": 3},  # a FER-2013 sad face most annotators read as neutral
            "neutral/b.png": {"neutral": 2, "sadness": 8},
            "angry/c.png": {"anger": 5, "surprise": 5},  # a tie: no majority
            "happy/d.png": {"surprise": 6, "happiness": 4},  # surprise is none of the four classes
            "angry/e.png": {"anger": 4, "NF": 6},  # most said "not a face": unusable
            "happy/f.png": {"happiness": 10},
        },
    )
    keys = ["sad/a.png", "neutral/b.png", "angry/c.png", "happy/d.png", "angry/e.png", "happy/f.png", "sad/none.png"]
    assert ferplus_labels(keys, tmp_path / "publictest") == ["neutral", "sad", "", "", "", "happy", ""]


def test_the_reading_columns_count_the_faces_with_a_class_by_the_labels_chosen() -> None:
    def face(label: str, ferplus: str, probs: np.ndarray | None) -> Reading:
        return Reading("lit upright", label, 80, 0.0, probs is not None, probs4=probs, ferplus=ferplus)

    readings = [
        face("sad", "neutral", P_RELAXED),  # right by FER+, wrong by its folder
        face("sad", "sad", P_SAD),  # right by both
        face("neutral", "", P_RELAXED),  # no FER+ majority: left out of the FER+ columns
        face("angry", "angry", None),  # not found
    ]
    tally = Tally(readings=readings, detections=4, true_pos=3)
    fer, plus = figures(tally), figures(tally, "ferplus")
    assert [right(r) for r in readings] == [False, True, True, False]
    assert [right(r, "ferplus") for r in readings] == [True, True, False, False]
    assert (fer["faces"], fer["labelled"], fer["recall"], fer["precision"]) == (4, 4, 0.75, 0.75)
    assert (plus["faces"], plus["labelled"], plus["recall"], plus["precision"]) == (4, 3, 0.75, 0.75)
    assert fer["acc"] == pytest.approx(2 / 3) and fer["read_right"] == pytest.approx(2 / 4)
    assert plus["acc"] == 1.0 and plus["read_right"] == pytest.approx(2 / 3) and plus["n_found"] == 2
    assert fer["n_neutral"] == 1 and plus["n_neutral"] == 1  # the neutral faces by each label set


@pytest.mark.slow
@pytest.mark.skipif(not (FER_DIR.is_dir() and VOTES.is_file()), reason="needs ../shared/data/fer2013 and its votes")
def test_a_quick_run_reads_the_faces_against_both_label_sets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quick", "--buckets", "lit upright", "--labels", "both"]) == 0
    out = capsys.readouterr().out
    assert "labels: both" in out
    assert "| lit upright | 6 | " in out  # the FER-2013 table
    assert "| lit upright | " in out.split("Against the FER+ majority")[1]  # then the FER+ one
    assert "faces have no FER+ majority among the four classes" in out
