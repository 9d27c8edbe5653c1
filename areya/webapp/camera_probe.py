"""Camera connection test: open the source (OpenCV / synthetic) and read one frame, within a time limit."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from areya.camera.url_policy import CameraUrlPolicy
from areya.source_url import mask_source_url

DEFAULT_TIMEOUT_S = 8.0


@dataclass
class ProbeResult:
    ok: bool
    message: str
    width: int = 0
    height: int = 0
    seconds: float = 0.0
    jpeg: bytes | None = None
    frame: Any = field(default=None, repr=False)  # the BGR frame read (for the face detection check)


def probe_camera(
    url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, fps: float = 2.0, policy: CameraUrlPolicy | None = None
) -> ProbeResult:
    """Open ``url`` and grab one frame in a worker thread; give up after ``timeout_s`` (the thread is left to
    finish on its own: OpenCV calls cannot be interrupted). Messages never contain the URL's credentials.
    ``policy``: the camera URL policy, applied again when connecting (HTTP redirects included)."""
    box: dict[str, Any] = {}
    started = time.monotonic()

    def work() -> None:
        from areya.camera.sources import SourceError, open_source

        source = None
        try:
            source = open_source(url, fps=fps, realtime=False, policy=policy)
            source.open()
            source.grab()
            frame, _ = source.retrieve()
            import cv2

            ok, buf = cv2.imencode(".jpg", frame, [int(cv2.IMWRITE_JPEG_QUALITY), 85])
            box["frame"] = (int(frame.shape[1]), int(frame.shape[0]), bytes(buf) if ok else None, frame)
        except SourceError as exc:
            box["error"] = str(exc)
        except Exception as exc:  # noqa: BLE001 - any failure is the test's answer
            box["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        finally:
            if source is not None:
                with contextlib.suppress(Exception):
                    source.close()

    thread = threading.Thread(target=work, name="camera-probe", daemon=True)
    thread.start()
    thread.join(timeout_s)
    elapsed = time.monotonic() - started
    masked = mask_source_url(url)
    if thread.is_alive():
        return ProbeResult(False, f"no frame from {masked} within {timeout_s:g} s", seconds=elapsed)
    if "error" in box:
        message = str(box["error"]).replace(url, masked)
        return ProbeResult(False, f"cannot read {masked}: {message}", seconds=elapsed)
    width, height, jpeg, frame = box["frame"]
    return ProbeResult(
        True, f"connected to {masked}: {width}x{height} frame in {elapsed:.1f} s", width, height, elapsed, jpeg, frame
    )
