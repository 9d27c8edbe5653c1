"""Detecting a training split with less image detail than the test split (areya models check-data)."""

from __future__ import annotations

import numpy as np
from synthetic_faces import synthetic_face, write_face_tree

from areya.emotion.domain import domain_report, sharpness


def _faces(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([synthetic_face(i % 7, rng) for i in range(n)])


def blur_faces(x: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    return np.stack([cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101) for img in x])


def test_blur_lowers_sharpness():
    faces = _faces(10)
    assert np.median(sharpness(blur_faces(faces, 3.3))) < 0.5 * np.median(sharpness(faces))


def test_domain_report_flags_a_blurred_training_split():
    faces = _faces(30)
    mismatch = domain_report(blur_faces(faces, 3.3), faces)
    assert mismatch.mismatched and "WARNING" in mismatch.summary()
    same = domain_report(faces[:15], faces[15:])
    assert not same.mismatched and "WARNING" not in same.summary()


def test_check_data_cli_exits_3_on_mismatch(tmp_path):
    import cv2
    from click.testing import CliRunner

    from areya.cli.models import models_group

    write_face_tree(tmp_path / "train", per_class=4, seed=1)
    write_face_tree(tmp_path / "publictest", per_class=4, seed=2)
    ok = CliRunner().invoke(models_group, ["check-data", "--data", str(tmp_path)])
    assert ok.exit_code == 0, ok.output
    for path in (tmp_path / "train").rglob("*.png"):
        cv2.imwrite(str(path), cv2.GaussianBlur(cv2.imread(str(path), 0), (0, 0), 3.3))
    bad = CliRunner().invoke(models_group, ["check-data", "--data", str(tmp_path)])
    assert bad.exit_code == 3 and "WARNING" in bad.output
