"""Build the demo face pack ``areya/demo/assets/faces.npz`` from FER-2013 PublicTest (see its README.md).

    nice python scripts/make_demo_faces.py --data ../shared/data/fer2013/publictest

For each of Areya's four classes (angry, happy, neutral = relaxed, sad) it reads the class folder in file-name
order (at most ``--scan`` files, 1000 by default: every PublicTest file of those classes, so that the command
above writes the shipped pack) and keeps faces that the synthetic ward's checks find on a pillow of the demo ward
(BlazeFace and OpenCV's Haar cascade, one face, in place).  Each kept face is then put on demo ward frames,
JPEG-encoded as the ingestor does, found by the worker's detector and classified by the shipped model
(``--model``); ``agrees`` records whether the model's 4-class answer is the dataset label on at least 7 of its 8
crops (every bed of the demo ward, two head positions, detected and cropped by the worker's own code with the
configured detector) and its mean p_angry + p_sad is clearly on the same side (>= 0.6 for angry and sad, <= 0.3
for happy and neutral), so the alert rule reads the face as intended under either measure (labels or
probability).
Per class the pack keeps the agreeing faces first, then the others, at most ``--per-class``; the original JPEG
bytes are stored (no re-encoding) and the pack is trimmed until it is at most ``--max-bytes``.  Rebuild it
whenever the model changes (the story picks agreeing faces).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

CLASSES = ("angry", "happy", "neutral", "sad")  # FER names; neutral = Areya's relaxed
AGREE_SHARE = 0.875  # of a face's 8 crops (4 beds x 2 head positions) the model must label as the dataset does
NEGATIVE_AT_LEAST = 0.6  # and its mean p_angry + p_sad must be >= this for angry and sad faces,
POSITIVE_AT_MOST = 0.3  # and <= this for happy and neutral ones (story.toml opens at 0.5, closes below 0.35)
ROOT = Path(__file__).resolve().parents[1]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=ROOT.parent / "shared/data/fer2013/publictest",
        help="FER-2013 PublicTest class folders",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "areya/demo/assets/faces.npz")
    parser.add_argument("--model", default=None, help="emotion model (default: the shipped areya-fer)")
    parser.add_argument("--per-class", type=int, default=50, help="faces per class (4 classes: at most 200)")
    parser.add_argument(
        "--scan",
        type=int,
        default=1000,
        help="files read per class at most (default: every PublicTest file; the shipped pack)",
    )
    parser.add_argument("--max-bytes", type=int, default=300_000)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.per_class * len(CLASSES) > 200:
        parser.error("at most 200 faces in all")

    import tempfile

    import cv2

    from areya.camera.facepack import write_face_pack
    from areya.camera.synthetic import SyntheticWard
    from areya.config import load_settings
    from areya.detectors import detector_from_settings
    from areya.emotion.inference import EmotionClassifier
    from areya.emotion.schemes import FER_TO_AREYA4
    from areya.logsetup import import_tensorflow_quietly
    from areya.worker.assign import Zone
    from areya.worker.worker import WorkerConfig, crop

    import_tensorflow_quietly("INFO")  # and the TFLite XNNPACK line
    ward = SyntheticWard(beds=4)  # the demo story's geometry: 4 beds in 1280x720
    settings = load_settings(env={"AREYA_DATA_DIR": tempfile.mkdtemp(prefix="areya-pack-")})
    detector = detector_from_settings(settings)  # the worker's detector, as configured by default
    zones = [Zone(i, *rect) for i, rect in ward.zones()]
    margin = WorkerConfig.crop_margin

    def worker_crops(frame):  # noqa: ANN001, ANN202 - what the worker classifies for this frame
        if getattr(detector, "zone_mode", "frame") != "frame" and hasattr(detector, "detect_in_zones"):
            boxes = detector.detect_in_zones(frame, zones)
        else:
            boxes = detector.detect(frame)
        return [crop(frame, box, margin) for box in boxes]

    classifier = EmotionClassifier.load(args.model)
    chosen: dict[str, list[tuple[bool, bytes, str]]] = {}
    started = time.monotonic()
    for name in CLASSES:
        files = sorted(p for p in (args.data / name).iterdir() if p.suffix.lower() in (".jpg", ".png"))[: args.scan]
        kept: list[tuple[bytes, str]] = []
        crops: list[list] = []  # per kept face: its crops on every bed, two head positions
        for path in files:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                continue
            patch = ward.library.compose(image)
            if not ward._detectable(patch):  # noqa: SLF001 - the very check the ward applies at run time
                continue
            face_crops = []
            for dx, dy in ((0, 0), (3, -2)):  # the ward sways heads by a few pixels
                frame = ward.background.copy()
                ph, pw = patch.shape[:2]
                for bed in ward.layout:
                    x, y = bed.face_cx - pw // 2 + dx, bed.face_cy - ph // 2 + dy
                    frame[y : y + ph, x : x + pw] = patch
                jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])[1]  # as the ingestor sends it
                frame = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
                face_crops += worker_crops(frame)
            if len(face_crops) != 2 * len(ward.layout):
                continue
            crops.append(face_crops)
            kept.append((path.read_bytes(), path.name))
        agrees = []
        for face_crops in crops:
            results = classifier.classify(face_crops)
            labels = [r.label4 for r in results]
            negative = sum(r.negative_share for r in results) / len(results)  # mean p_angry + p_sad
            clear = negative >= NEGATIVE_AT_LEAST if name in ("angry", "sad") else negative <= POSITIVE_AT_MOST
            agrees.append(labels.count(FER_TO_AREYA4[name]) >= AGREE_SHARE * len(labels) and clear)
        ranked = sorted(zip(agrees, kept, strict=True), key=lambda item: not item[0])  # stable: file order kept
        chosen[name] = [(a, data, src) for a, (data, src) in ranked[: args.per_class]]
        print(
            f"{name:8s} read {len(files)}, detectable {len(kept)}, model agrees {sum(agrees)}, "
            f"packed {len(chosen[name])} ({sum(a for a, _, _ in chosen[name])} agreeing)",
            flush=True,
        )

    while True:
        entries = [(name, *item) for name in CLASSES for item in chosen[name]]
        meta = {
            "source": "FER-2013 (Goodfellow et al., ICML 2013 Challenges in Representation Learning)",
            "split": "PublicTest",
            "classes": list(CLASSES),
            "model": classifier.model_version,
            "detector": settings.detector,
            "agreeing": {n: sum(a for a, _, _ in chosen[n]) for n in CLASSES},
            "faces": {n: len(chosen[n]) for n in CLASSES},
            "script": "scripts/make_demo_faces.py",
        }
        size = write_face_pack(
            args.out,
            [e[2] for e in entries],
            [e[0] for e in entries],
            [e[1] for e in entries],
            [e[3] for e in entries],
            meta,
        )
        if size <= args.max_bytes:
            break
        largest = max(CLASSES, key=lambda n: (len(chosen[n]), n))
        chosen[largest].pop()  # the last is a non-agreeing one while there are any
    print(
        f"wrote {args.out}: {len(entries)} faces, {size} bytes, model {classifier.model_version}, "
        f"{time.monotonic() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
