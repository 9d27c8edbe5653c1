"""The frame message on the Redis stream: schema, validation, publishing with counted drops.

One stream entry is one sampled frame::

    v=1  cam=<camera id>  seq=<per-camera sequence>  ts=<capture time, epoch seconds>
    w=<width>  h=<height>  jpeg=<JPEG bytes>

The stream is capped: frames are perishable.  Publishing goes through one Lua
script that appends the frame and, when the stream is longer than
``maxlen + slack``, trims it back to ``maxlen`` (chunked, like ``MAXLEN ~``),
counting every trimmed frame that no consumer group had been handed yet as
*dropped* for its camera.  Publish and drop counters live in two Redis hashes
beside the stream, so drops are never silent.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis

SCHEMA_VERSION = b"1"
MAX_SIDE = 16384
MAX_FUTURE_S = 300.0

# Drop reasons (the label of ``areya_frames_dropped_total``).
DROP_TRIMMED = "trimmed"  # trimmed from the capped stream before any worker read it
DROP_UNPUBLISHED = "unpublished"  # Redis was unreachable when the frame was captured
DROP_LOST_PENDING = "lost_pending"  # read by a worker that died, trimmed before it could be reclaimed


class BadFrame(ValueError):
    """A stream entry that is not a valid frame; ``reason`` says why (it goes to the dead-letter stream)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class FrameMessage:
    camera_id: int
    seq: int
    captured_at: float
    jpeg: bytes
    width: int
    height: int

    def fields(self) -> dict[bytes, bytes]:
        return {
            b"v": SCHEMA_VERSION,
            b"cam": str(self.camera_id).encode(),
            b"seq": str(self.seq).encode(),
            b"ts": repr(float(self.captured_at)).encode(),
            b"w": str(self.width).encode(),
            b"h": str(self.height).encode(),
            b"jpeg": self.jpeg,
        }

    def decode_image(self) -> np.ndarray:
        """The BGR image; :class:`BadFrame` if the JPEG is corrupt or not the announced size."""
        import cv2  # noqa: PLC0415 - heavy import, only where needed

        buf = np.frombuffer(self.jpeg, dtype=np.uint8)
        image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        if image is None:
            raise BadFrame("corrupt jpeg: cannot be decoded")
        h, w = image.shape[:2]
        if (w, h) != (self.width, self.height):
            raise BadFrame(f"jpeg is {w}x{h}, message says {self.width}x{self.height}")
        return image


def encode_jpeg(image: np.ndarray, quality: int = 80) -> bytes:
    import cv2  # noqa: PLC0415

    ok, buf = cv2.imencode(".jpg", image, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def make_frame(
    camera_id: int, seq: int, image: np.ndarray, captured_at: float | None = None, quality: int = 80
) -> FrameMessage:
    h, w = image.shape[:2]
    return FrameMessage(
        camera_id=camera_id,
        seq=seq,
        captured_at=time.time() if captured_at is None else captured_at,
        jpeg=encode_jpeg(image, quality),
        width=int(w),
        height=int(h),
    )


def _text(fields: dict[Any, Any], name: str) -> str:
    raw = fields.get(name.encode(), fields.get(name))
    if raw is None:
        raise BadFrame(f"missing field {name!r}")
    if isinstance(raw, bytes):
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise BadFrame(f"field {name!r} is not ASCII text") from None
    return str(raw)


def _int(fields: dict[Any, Any], name: str, low: int, high: int) -> int:
    text = _text(fields, name)
    try:
        value = int(text)
    except ValueError:
        raise BadFrame(f"field {name!r} is not an integer: {text[:40]!r}") from None
    if not low <= value <= high:
        raise BadFrame(f"field {name!r} out of range [{low}, {high}]: {value}")
    return value


def decode_fields(fields: dict[Any, Any] | None, *, now: float | None = None) -> FrameMessage:
    """Validate a stream entry's fields; :class:`BadFrame` with a clear reason otherwise.

    The JPEG itself is only checked for its start marker here; :meth:`FrameMessage.decode_image`
    decodes it.
    """
    if not fields:
        raise BadFrame("empty entry (deleted or no fields)")
    version = fields.get(b"v", fields.get("v"))
    if version is not None and (version.encode() if isinstance(version, str) else version) != SCHEMA_VERSION:
        raise BadFrame(f"unknown schema version {version!r}")
    camera_id = _int(fields, "cam", 1, 2**63 - 1)
    seq = _int(fields, "seq", 0, 2**63 - 1)
    ts_text = _text(fields, "ts")
    try:
        captured_at = float(ts_text)
    except ValueError:
        raise BadFrame(f"field 'ts' is not a number: {ts_text[:40]!r}") from None
    now = time.time() if now is None else now
    if not math.isfinite(captured_at) or captured_at <= 0 or captured_at > now + MAX_FUTURE_S:
        raise BadFrame(f"field 'ts' is not a plausible capture time: {ts_text[:40]!r}")
    width = _int(fields, "w", 1, MAX_SIDE)
    height = _int(fields, "h", 1, MAX_SIDE)
    jpeg = fields.get(b"jpeg", fields.get("jpeg"))
    if jpeg is None:
        raise BadFrame("missing field 'jpeg'")
    if isinstance(jpeg, str):
        jpeg = jpeg.encode("latin-1")
    if len(jpeg) < 4 or jpeg[:2] != b"\xff\xd8":
        raise BadFrame("field 'jpeg' is not JPEG data (no start-of-image marker)")
    return FrameMessage(
        camera_id=camera_id, seq=seq, captured_at=captured_at, jpeg=bytes(jpeg), width=width, height=height
    )


# KEYS: stream, published hash, dropped hash.  ARGV: maxlen, slack, camera id, then field/value pairs.
_PUBLISH_LUA = """
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 4))
redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
local maxlen = tonumber(ARGV[1])
local slack = tonumber(ARGV[2])
local len = redis.call('XLEN', KEYS[1])
local dropped = 0
if maxlen > 0 and len > maxlen + slack then
  local function parse(sid)
    local dash = string.find(sid, '-', 1, true)
    return tonumber(string.sub(sid, 1, dash - 1)), tonumber(string.sub(sid, dash + 1))
  end
  local fms, fseq = nil, nil
  local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
  for _, g in ipairs(groups) do
    for i = 1, #g, 2 do
      if g[i] == 'last-delivered-id' then
        local ms, sq = parse(g[i + 1])
        if fms == nil or ms < fms or (ms == fms and sq < fseq) then fms, fseq = ms, sq end
      end
    end
  end
  local entries = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', len - maxlen)
  for _, e in ipairs(entries) do
    local ms, sq = parse(e[1])
    if fms == nil or ms > fms or (ms == fms and sq > fseq) then
      local cam = '?'
      local f = e[2]
      for i = 1, #f, 2 do
        if f[i] == 'cam' then cam = f[i + 1] end
      end
      redis.call('HINCRBY', KEYS[3], cam .. '|trimmed', 1)
      dropped = dropped + 1
    end
  end
  redis.call('XTRIM', KEYS[1], 'MAXLEN', maxlen)
end
return {id, dropped}
"""


def published_key(stream: str) -> str:
    return f"{stream}:published"


def dropped_key(stream: str) -> str:
    return f"{stream}:dropped"


class FramePublisher:
    """Appends frames to the capped stream; thread-safe (shares the client's connection pool)."""

    def __init__(self, client: redis.Redis, stream: str, maxlen: int, slack: int | None = None) -> None:
        if maxlen < 1:
            raise ValueError(f"stream maxlen must be >= 1, got {maxlen}")
        self.client = client
        self.stream = stream
        self.maxlen = maxlen
        self.slack = max(1, maxlen // 10) if slack is None else max(0, slack)
        self._script = client.register_script(_PUBLISH_LUA)

    def publish(self, frame: FrameMessage) -> tuple[str, int]:
        """Append ``frame``; returns (entry id, frames dropped by the trim this call did)."""
        args: list[Any] = [self.maxlen, self.slack, frame.camera_id]
        for key, value in frame.fields().items():
            args.extend((key, value))
        entry_id, dropped = self._script(
            keys=[self.stream, published_key(self.stream), dropped_key(self.stream)], args=args
        )
        return (entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)), int(dropped)

    def count_dropped(self, camera_id: int | str, reason: str, n: int = 1) -> None:
        """Record ``n`` frames of a camera lost for ``reason`` (e.g. Redis unreachable)."""
        if n > 0:
            self.client.hincrby(dropped_key(self.stream), f"{camera_id}|{reason}", n)


def read_counters(client: redis.Redis, stream: str) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """(published per camera, dropped per (camera, reason))."""
    published = {k.decode(): int(v) for k, v in client.hgetall(published_key(stream)).items()}
    dropped: dict[tuple[str, str], int] = {}
    for k, v in client.hgetall(dropped_key(stream)).items():
        cam, _, reason = k.decode().partition("|")
        dropped[(cam, reason or "unknown")] = int(v)
    return published, dropped
