"""``areya predict IMAGE...``: find faces in images and classify each one's emotion in both schemes."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click


@dataclass
class FacePrediction:
    box: Any  # areya.detectors.FaceBox
    result: Any | None = None  # areya.emotion.inference.EmotionResult, None without a model

    def describe(self) -> str:
        b = self.box
        text = f"box=({b.x},{b.y},{b.w},{b.h}) score={b.score:.2f}"
        if self.result is not None:
            r = self.result
            text += f" 4-class: {r.label4} {r.confidence4:.2f} | 7-class: {r.label7} {r.confidence7:.2f}"
        return text

    def labels(self) -> list[str]:
        if self.result is None:
            return [f"face {self.box.score:.2f}"]
        r = self.result
        return [f"{r.label4} {r.confidence4:.2f}", f"7: {r.label7} {r.confidence7:.2f}"]

    def to_dict(self) -> dict[str, Any]:
        b = self.box
        out: dict[str, Any] = {"box": [b.x, b.y, b.w, b.h], "score": round(b.score, 4)}
        if self.result is not None:
            from areya.emotion.schemes import AREYA4_CLASSES, FER7_CLASSES

            r = self.result
            out["label4"], out["label7"] = r.label4, r.label7
            out["probs4"] = {c: round(float(p), 4) for c, p in zip(AREYA4_CLASSES, r.probs4, strict=True)}
            out["probs7"] = {c: round(float(p), 4) for c, p in zip(FER7_CLASSES, r.probs7, strict=True)}
        return out


@dataclass
class ImagePrediction:
    path: Path
    faces: list[FacePrediction] = field(default_factory=list)
    annotated: Path | None = None


def predict_image(frame: Any, detector: Any, classifier: Any | None, margin: float) -> list[FacePrediction]:
    """Faces of one BGR frame, all crops classified in a single classifier call."""
    from areya.detectors import crop_face

    boxes = detector.detect(frame)
    faces = [FacePrediction(b) for b in boxes]
    if classifier is not None and boxes:
        results = classifier.classify([crop_face(frame, b, margin) for b in boxes])
        for face, result in zip(faces, results, strict=True):
            face.result = result
    return faces


def annotate(frame: Any, faces: list[FacePrediction]) -> Any:
    from areya.detectors.annotate import GREEN, RED, draw_faces
    from areya.emotion.schemes import NEGATIVE_4

    colors = [RED if f.result is not None and f.result.label4 in NEGATIVE_4 else GREEN for f in faces]
    return draw_faces(frame, [f.box for f in faces], [f.labels() for f in faces], colors)


def _unique_output(out_dir: Path, image: Path, taken: set[Path]) -> Path:
    target = out_dir / f"{image.stem}.annotated.png"
    n = 2
    while target in taken:
        target = out_dir / f"{image.stem}-{n}.annotated.png"
        n += 1
    taken.add(target)
    return target


def cli_detector_options(options: tuple[str, ...]) -> dict[str, str]:
    """``--detector-option NAME=VALUE`` values -> ``{name: raw}`` (a malformed one -> usage error, exit 2)."""
    from areya.detectors.options import parse_options_text

    try:
        return parse_options_text(list(options))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--detector-option") from None


def detector_from_cli(
    settings: Any, name: str | None, options: tuple[str, ...], camera_options: str | None = None
) -> Any:
    """The configured detector with ``--detector NAME`` / ``--detector-option NAME=VALUE`` overrides, and a
    camera's own ``detector_options`` between the two (settings < camera < command line); a bad name, option or
    value -> a one-line click error."""
    from areya.detectors import detector_from_settings, detector_key
    from areya.detectors.options import check_camera_options

    overrides = cli_detector_options(options)
    if camera_options:
        try:
            check_camera_options(detector_key(name or settings.detector), camera_options)
        except ValueError as exc:
            raise click.ClickException(f"the camera's detector options {camera_options!r}: {exc}") from None
    try:
        return detector_from_settings(settings, name, overrides, camera_options=camera_options)
    except (ValueError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None


def camera_detector_options(ref: str) -> str | None:
    """The stored ``detector_options`` of camera ``WARD/CAMERA`` or id (unknown camera -> exit 1)."""
    from areya.admin import get_camera
    from areya.cli.context import get_context

    with get_context().session_factory()() as session:
        return get_camera(session, ref).detector_options


def _load_classifier(model: str | None, default_model: str) -> Any | None:
    """The emotion classifier; without ``--model`` a missing shipped model means boxes only (with a note)."""
    from areya.emotion.inference import EmotionClassifier

    try:
        return EmotionClassifier.load(model or default_model)
    except (FileNotFoundError, OSError, ValueError) as exc:
        if model:
            raise click.ClickException(f"cannot load emotion model {model!r}: {exc}") from None
        click.echo(
            f"note: no emotion model available ({exc}); showing face boxes only. Pass --model PATH to classify.",
            err=True,
        )
        return None


@click.command("predict")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write an annotated copy of each image (boxes and labels) into this folder.",
)
@click.option("--detector", "detector_name", default=None, help="Face detector [settings: detector].")
@click.option(
    "--detector-option",
    "detector_options",
    multiple=True,
    metavar="NAME=VALUE",
    help="Detector option, e.g. tiles=2 (repeatable; overrides detector_options) [settings: detector_options].",
)
@click.option(
    "--camera",
    "camera",
    metavar="WARD/CAMERA|ID",
    default=None,
    help="Use this camera's own detector options too (laid over the settings', under --detector-option).",
)
@click.option("--model", default=None, help="Emotion model: name under models/, folder or .keras [settings].")
@click.option("--margin", type=click.FloatRange(0, 2), default=0.15, show_default=True, help="Face crop margin.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per image instead of text.")
def predict(
    images: tuple[Path, ...],
    out_dir: Path | None,
    detector_name: str | None,
    detector_options: tuple[str, ...],
    camera: str | None,
    model: str | None,
    margin: float,
    as_json: bool,
) -> None:
    """Detect faces in IMAGE files and print each face's box and top emotions (4- and 7-class)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import cv2

    from areya.cli.context import get_context

    settings = get_context().settings
    camera_options = camera_detector_options(camera) if camera else None
    detector = detector_from_cli(settings, detector_name, detector_options, camera_options)
    classifier = _load_classifier(model, settings.emotion_model)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)

    failed = 0
    written: set[Path] = set()
    for path in images:
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR) if path.is_file() else None
        if frame is None:
            reason = "no such file" if not path.exists() else "not a readable image"
            click.echo(f"error: {path}: {reason}", err=True)
            failed += 1
            continue
        pred = ImagePrediction(path, predict_image(frame, detector, classifier, margin))
        if out_dir is not None:
            target = _unique_output(out_dir, path, written)
            if not cv2.imwrite(str(target), annotate(frame, pred.faces)):
                click.echo(f"error: {path}: could not write {target}", err=True)
                failed += 1
            else:
                pred.annotated = target
        _print(pred, as_json, None if classifier is None else classifier.model_version, detector.name)

    if failed:
        raise click.ClickException(f"{failed} of {len(images)} image(s) failed")


def _print(pred: ImagePrediction, as_json: bool, model_version: str | None, detector: str) -> None:
    if as_json:
        record = {
            "image": str(pred.path),
            "detector": detector,
            "model": model_version,
            "faces": [f.to_dict() for f in pred.faces],
            "annotated": str(pred.annotated) if pred.annotated else None,
        }
        click.echo(json.dumps(record))
        return
    name = pred.path.name
    if not pred.faces:
        click.echo(f"{name}: no faces")
    for i, face in enumerate(pred.faces, start=1):
        click.echo(f"{name} face {i} {face.describe()}")
    if pred.annotated:
        click.echo(f"{name}: annotated -> {pred.annotated}")
