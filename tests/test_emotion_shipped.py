"""The shipped model loads with its calibration, and reproduces its model card's figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from areya.emotion.calibration import CALIBRATION_FILE, Calibration
from areya.emotion.inference import EmotionClassifier, models_dir

MODEL_DIR = models_dir() / "areya-fer"
PUBLICTEST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fer2013" / "publictest"

pytestmark = pytest.mark.skipif(not (MODEL_DIR / "model.keras").is_file(), reason="no shipped model")


@pytest.fixture(scope="module")
def shipped() -> EmotionClassifier:
    return EmotionClassifier.load()


def test_shipped_model_is_small_and_carries_its_calibration(shipped: EmotionClassifier):
    assert (MODEL_DIR / "model.keras").stat().st_size < 25e6
    assert (MODEL_DIR / CALIBRATION_FILE).is_file()
    assert shipped.calibration == Calibration.load(MODEL_DIR) != Calibration.identity()
    assert "validation part" in shipped.calibration.fitted_on  # fitted on data held out from train/, not the test
    assert shipped.model_version.startswith("areya-fer@")
    card = json.loads((MODEL_DIR / "card.json").read_text())
    assert card["model_version"] == shipped.model_version  # the card describes this very file


@pytest.mark.slow
@pytest.mark.skipif(not PUBLICTEST.is_dir(), reason="../shared/data/fer2013/publictest absent")
@pytest.mark.parametrize("scheme", ["7", "4"])
def test_shipped_model_reproduces_its_card_on_publictest(shipped: EmotionClassifier, scheme: str):
    from areya.emotion.evaluate import evaluate

    card = json.loads((MODEL_DIR / "card.json").read_text())
    expected = card["evaluations"][f"{scheme}class_{'tta' if shipped.tta_flip else 'single'}"]
    assert card["served_tta"] == shipped.tta_flip
    ev = evaluate(shipped, PUBLICTEST, scheme)
    assert ev.report.n == expected["n"]
    assert ev.report.accuracy == pytest.approx(expected["accuracy"], abs=0.003)
    assert ev.report.macro_f1 == pytest.approx(expected["macro_f1"], abs=0.005)
    cal = ev.extra["calibration"]
    assert cal["after"]["ece"] == pytest.approx(expected["calibration"]["after"]["ece"], abs=0.005)
