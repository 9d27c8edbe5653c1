"""Detecting a blurred training split, and serving a model with the blur it was trained on."""

from __future__ import annotations

import numpy as np
from synthetic_faces import synthetic_face, write_face_tree

from areya.emotion.domain import blur_faces, domain_report, sharpness
from areya.emotion.inference import EmotionClassifier


def _faces(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([synthetic_face(i % 7, rng) for i in range(n)])


def test_blur_lowers_sharpness_and_zero_sigma_is_identity():
    faces = _faces(10)
    assert blur_faces(faces, 0) is faces
    blurred = blur_faces(faces, 3.3)
    assert blurred.shape == faces.shape and blurred.dtype == faces.dtype
    assert np.median(sharpness(blurred)) < 0.5 * np.median(sharpness(faces))


def test_domain_report_flags_a_blurred_training_split():
    faces = _faces(30)
    mismatch = domain_report(blur_faces(faces, 3.3), faces)
    assert mismatch.mismatched and "WARNING" in mismatch.summary()
    same = domain_report(faces[:15], faces[15:])
    assert not same.mismatched and "WARNING" not in same.summary()


def test_classifier_applies_its_input_blur():
    faces = _faces(4).astype(np.float32)[..., None]
    plain = EmotionClassifier.untrained()
    blurring = EmotionClassifier(plain._model, "blur", tta_flip=False, input_blur_sigma=3.3)
    np.testing.assert_allclose(
        blurring.predict_arrays(faces)[1], plain.predict_arrays(blur_faces(faces, 3.3))[1], atol=1e-5
    )
    assert not np.allclose(blurring.predict_arrays(faces)[1], plain.predict_arrays(faces)[1], atol=1e-4)


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
