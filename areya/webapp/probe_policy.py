"""What the dashboard's camera test may open (no server-side request forgery through it).

The test makes the web server itself fetch a URL and show the picture, so it is limited to the source kinds in
``camera_probe_schemes`` and, beyond that, to what the camera URL policy allows any camera source opened from the
dashboard (:mod:`areya.camera.url_policy`: network hosts outside loopback, link-local, metadata, this server's own
addresses and private networks not in ``camera_allow_networks``; files only under ``camera_media_dir``, with the
same answer whether a path outside exists or not; the synthetic camera only with its packaged story and faces).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from areya.camera.url_policy import CameraUrlPolicy, CameraUrlRefused, Resolver, resolve_host
from areya.config import Settings
from areya.source_url import SourceUrlError, source_kind, validate_source_url


class ProbeRefused(ValueError):
    """The camera test may not open this source (the message says why, without the URL's credentials)."""


def check_probe_target(url: str, settings: Settings, *, resolve: Resolver = resolve_host) -> None:
    """Raise :class:`ProbeRefused` if the dashboard's camera test must not open ``url``."""
    try:
        url = validate_source_url(url)
        kind = source_kind(url)
    except SourceUrlError as exc:
        raise ProbeRefused(str(exc)) from None
    scheme = urlsplit(url).scheme.lower() if kind == "network" else kind
    if scheme not in settings.camera_probe_schemes:
        raise ProbeRefused(f"the camera test does not open {scheme} sources here (camera_probe_schemes)")
    try:
        CameraUrlPolicy.from_settings(settings, resolve=resolve).check(url, trusted=False)
    except CameraUrlRefused as exc:
        raise ProbeRefused(str(exc)) from None
