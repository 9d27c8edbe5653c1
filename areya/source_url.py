"""Camera source URLs: validation and masking (a source URL is a secret: it may hold credentials).

Accepted forms:
  rtsp://[user[:pass]@]host[:port]/path   (also rtsps, http, https — e.g. an MJPEG endpoint)
  file:///abs/path/video.mp4  or a plain file path (/abs/video.mp4, ./clip.mp4, clip.mp4)
  device:N                                 (local capture device index N >= 0)
  synthetic:[options]                      (Areya's synthetic ward camera, e.g. synthetic:beds=4,seed=7)
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit

NETWORK_SCHEMES = ("rtsp", "rtsps", "http", "https")
# the stored form of an encrypted URL (areya.db.secret_url); seen outside the database only when it cannot be
# decrypted (the secret key changed)
ENCRYPTED_PREFIX = "areya-enc-v1:"
UNREADABLE = "<encrypted with another secret key: set the camera URL again>"
ACCEPTED_FORMS = "rtsp://, rtsps://, http://, https://, file:///path, a file path, device:N or synthetic:[options]"
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_SYNTHETIC_RE = re.compile(r"^synthetic:[A-Za-z0-9_=,.:/+-]*$")


class SourceUrlError(ValueError):
    """A malformed camera source URL (the message never contains the URL's credentials)."""


def source_kind(url: str) -> str:
    """'network', 'file', 'device' or 'synthetic' for a validated URL."""
    url = validate_source_url(url)
    if url.startswith("device:"):
        return "device"
    if url.startswith("synthetic:"):
        return "synthetic"
    match = _SCHEME_RE.match(url)
    if match and match.group(1).lower() in NETWORK_SCHEMES:
        return "network"
    return "file"


def validate_source_url(url: str) -> str:
    """Return the stripped URL or raise :class:`SourceUrlError` saying what is wrong."""
    if not isinstance(url, str):
        raise SourceUrlError(f"camera URL must be a string, got {type(url).__name__}")
    url = url.strip()
    if not url:
        raise SourceUrlError(f"camera URL is empty; use {ACCEPTED_FORMS}")
    if url.startswith(ENCRYPTED_PREFIX):
        raise SourceUrlError(f"camera URL cannot be decrypted: {UNREADABLE}")
    if any(ord(ch) < 32 or ch.isspace() for ch in url):
        raise SourceUrlError("camera URL must not contain spaces or control characters")
    if len(url) > 2048:
        raise SourceUrlError("camera URL is longer than 2048 characters")
    if url.startswith("device:"):
        if not re.fullmatch(r"device:\d{1,3}", url):
            raise SourceUrlError("device source must be device:N with N a device index >= 0, e.g. device:0")
        return url
    if url.startswith("synthetic:"):
        if not _SYNTHETIC_RE.fullmatch(url):
            raise SourceUrlError("synthetic source must be synthetic: followed by options like beds=4,seed=7")
        return url
    match = _SCHEME_RE.match(url)
    if match is None:
        return url  # a plain (relative or absolute) file path
    scheme = match.group(1).lower()
    if scheme == "file":
        parts = _split(url, scheme)
        if parts.netloc not in ("", "localhost") or not parts.path:
            raise SourceUrlError("file source must be file:///absolute/path")
        return url
    if scheme not in NETWORK_SCHEMES:
        raise SourceUrlError(f"unsupported camera URL scheme {scheme!r}; use {ACCEPTED_FORMS}")
    if not url[len(scheme) + 1 :].startswith("//"):
        raise SourceUrlError(f"{scheme} camera URL must look like {scheme}://host/path")
    parts = _split(url, scheme)
    try:
        port = parts.port
    except ValueError:
        raise SourceUrlError(f"{scheme} camera URL has an invalid port") from None
    if not parts.hostname:
        raise SourceUrlError(f"{scheme} camera URL has no host")
    if not re.fullmatch(r"[A-Za-z0-9._:\[\]-]+", parts.hostname):
        raise SourceUrlError(f"{scheme} camera URL has an invalid host name")
    if port == 0:
        raise SourceUrlError(f"{scheme} camera URL has an invalid port")
    return url


def _split(url: str, scheme: str) -> SplitResult:
    try:
        return urlsplit(url)
    except ValueError:  # e.g. "Invalid IPv6 URL" for http://[::1/x
        raise SourceUrlError(f"{scheme} camera URL is malformed (an IPv6 host must be written [address])") from None


def mask_source_url(url: str) -> str:
    """A printable form: password, path and query hidden (``rtsp://user:***@host:554/...``)."""
    if not isinstance(url, str):
        return "<invalid>"
    url = url.strip()
    if url.startswith(ENCRYPTED_PREFIX):
        return UNREADABLE
    match = _SCHEME_RE.match(url)
    if url.startswith(("device:", "synthetic:")) or match is None or match.group(1).lower() == "file":
        return url
    scheme = match.group(1).lower()
    masked = mask_url_tail(url)
    return f"{scheme}://{masked}" if masked is not None else f"{scheme}://<invalid>"


def mask_url_tail(url: str) -> str | None:
    """What follows ``scheme://`` in a URL as shown to people: the password, path, query and fragment hidden
    (``user:***@host:554/...``); None for a URL that does not parse."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return None
    user = ""
    if parts.username is not None:
        user = f"{parts.username}:***@" if parts.password is not None else f"{parts.username}@"
    if ":" in host:
        host = f"[{host}]"
    rest = "/..." if (parts.path not in ("", "/") or parts.query or parts.fragment) else parts.path
    return f"{user}{host}{port}{rest}"


def file_source_path(url: str) -> str | None:
    """The local path a file source reads (``file:///p?loop=1`` or a plain path); None for other kinds."""
    url = url.strip()
    if url.startswith(("device:", "synthetic:", ENCRYPTED_PREFIX)):
        return None
    match = _SCHEME_RE.match(url)
    if match is None:
        return url
    if match.group(1).lower() != "file":
        return None
    from urllib.parse import unquote  # noqa: PLC0415

    return unquote(urlsplit(url).path)


def file_source_loops(url: str) -> bool:
    """Does this file source start again at its end (``file:///path?loop=1``)?"""
    from urllib.parse import parse_qs  # noqa: PLC0415

    url = url.strip()
    if not url.lower().startswith("file:"):
        return False
    return parse_qs(urlsplit(url).query).get("loop", ["0"])[0].lower() in ("1", "true", "yes")


def check_file_source(url: str, *, loop: bool | None = None) -> str:
    """A validated URL whose file exists and is readable, as ``file:///absolute/path`` (``?loop=1`` when looping).

    ``loop`` None keeps what the URL says; other kinds of source come back unchanged (``loop`` must then be None).
    Raises :class:`SourceUrlError` for a missing or unreadable file.
    """
    import os  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415
    from urllib.parse import quote  # noqa: PLC0415

    url = validate_source_url(url)
    path = file_source_path(url)
    if path is None:
        if loop:
            raise SourceUrlError("loop applies to video files only")
        return url
    resolved = Path(path).expanduser().resolve()
    if not resolved.is_file():
        raise SourceUrlError(f"video file not found: {resolved}")
    if not os.access(resolved, os.R_OK):
        raise SourceUrlError(f"video file not readable: {resolved}")
    looping = file_source_loops(url) if loop is None else loop
    return f"file://{quote(str(resolved))}" + ("?loop=1" if looping else "")
