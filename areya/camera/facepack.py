"""The demo face pack: a few hundred real FER-2013 PublicTest faces shipped inside Areya, in one small file.

``areya/demo/assets/faces.npz`` (built by ``scripts/make_demo_faces.py``; see ``areya/demo/assets/README.md``)
holds the faces' original JPEG bytes back to back (``jpeg`` uint8, ``offsets`` int64: face i is
``jpeg[offsets[i]:offsets[i + 1]]``), their dataset label (``labels``: FER-7 class names), whether the model named in
``meta`` labelled each one as its class on a ward frame (``agrees``), the source file names (``sources``) and
``meta`` (JSON: source, split, model, counts).  No pickled objects: ``np.load(..., allow_pickle=False)`` reads it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

DEMO_FACES = Path(__file__).resolve().parent.parent / "demo" / "assets" / "faces.npz"
BUILTIN_FACES = "builtin"  # the synthetic ward's ``faces=`` value (and SyntheticWard.faces_dir) for the pack


@dataclass(frozen=True)
class FacePack:
    """Decoded lazily: ``image(i)`` is the i-th face as a 48x48 gray uint8 array."""

    jpeg: np.ndarray
    offsets: np.ndarray
    labels: tuple[str, ...]
    agrees: tuple[bool, ...]
    sources: tuple[str, ...]
    meta: dict[str, Any]

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, index: int) -> np.ndarray:
        import cv2  # noqa: PLC0415

        data = self.jpeg[int(self.offsets[index]) : int(self.offsets[index + 1])]
        image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise ValueError(f"face {index} of the face pack cannot be decoded")
        return image

    def indices(self, emotion: str, *, agreeing: bool = False) -> list[int]:
        """Faces labelled ``emotion`` (FER-7 name); with ``agreeing``, only those the pack's model agrees with
        (all of the class if it agrees with none)."""
        found = [i for i, label in enumerate(self.labels) if label == emotion]
        if agreeing:
            agreed = [i for i in found if self.agrees[i]]
            return agreed or found
        return found

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.labels))


def write_face_pack(
    path: Path, jpegs: list[bytes], labels: list[str], agrees: list[bool], sources: list[str], meta: dict[str, Any]
) -> int:
    """Write a pack (see the module doc); returns its size in bytes."""
    offsets = np.zeros(len(jpegs) + 1, np.int64)
    offsets[1:] = np.cumsum([len(j) for j in jpegs])
    blob = np.frombuffer(b"".join(jpegs), np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        np.savez_compressed(
            fh,
            jpeg=blob,
            offsets=offsets,
            labels=np.array(labels),
            agrees=np.array(agrees, bool),
            sources=np.array(sources),
            meta=np.array(json.dumps(meta, sort_keys=True)),
        )
    return path.stat().st_size


@lru_cache(maxsize=4)
def load_face_pack(path: str | Path | None = None) -> FacePack:
    """The pack at ``path`` (default: the one shipped with Areya)."""
    target = Path(path) if path else DEMO_FACES
    if not target.is_file():
        raise FileNotFoundError(f"demo face pack not found: {target} (build it with scripts/make_demo_faces.py)")
    with np.load(target, allow_pickle=False) as data:
        return FacePack(
            jpeg=data["jpeg"].copy(),
            offsets=data["offsets"].copy(),
            labels=tuple(str(x) for x in data["labels"]),
            agrees=tuple(bool(x) for x in data["agrees"]),
            sources=tuple(str(x) for x in data["sources"]),
            meta=json.loads(str(data["meta"])),
        )
