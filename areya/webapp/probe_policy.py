"""What the dashboard's camera test may open (no server-side request forgery through it).

The test makes the web server itself fetch a URL and show the picture, so it is limited to:
  * the source kinds in ``camera_probe_schemes``;
  * network cameras whose host resolves only to addresses that are not loopback, link-local (cloud metadata at
    169.254.169.254 included), unspecified, multicast or reserved - unless ``camera_probe_allow`` names the host
    or its network (private LAN addresses such as 10.x are allowed: that is where cameras live);
  * files under ``camera_media_dir`` (none when it is empty); the answer for any other path is the same whether
    the file exists or not.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from areya.config import Settings
from areya.source_url import SourceUrlError, source_kind, validate_source_url

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str], list[str]]
# well-known metadata addresses that are not link-local (AWS IPv6 instance metadata)
METADATA_ADDRESSES = frozenset({ipaddress.ip_address("fd00:ec2::254")})


class ProbeRefused(ValueError):
    """The camera test may not open this source (the message says why, without the URL's credentials)."""


def resolve_host(host: str) -> list[str]:
    """Every address ``host`` resolves to (a numeric host such as 2130706433 resolves to itself, 127.0.0.1)."""
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return sorted({str(info[4][0]).split("%", 1)[0] for info in infos})


def _forbidden(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_loopback
        or address.is_link_local
        or address.is_unspecified
        or address.is_multicast
        or address.is_reserved
        or address in METADATA_ADDRESSES
    )


def _allowed(host: str, address: IPAddress, allow: tuple[str, ...]) -> bool:
    for entry in allow:
        if entry.lower() == host.lower():
            return True
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def _check_network(url: str, allow: tuple[str, ...], resolve: Resolver) -> None:
    host = urlsplit(url).hostname or ""
    try:
        addresses = [ipaddress.ip_address(a) for a in resolve(host)]
    except (OSError, UnicodeError, ValueError):
        raise ProbeRefused(f"camera host {host!r} does not resolve") from None
    if not addresses:
        raise ProbeRefused(f"camera host {host!r} does not resolve")
    for address in addresses:
        if _forbidden(address) and not _allowed(host, address, allow):
            raise ProbeRefused(
                f"camera host {host!r} is a loopback, link-local or reserved address ({address}): the camera test "
                "does not open it (add it to camera_probe_allow if it really is a camera)"
            )


def _file_path(url: str) -> Path:
    if url.lower().startswith("file:"):
        return Path(unquote(urlsplit(url).path))
    return Path(url)


def _check_file(url: str, media_dir: str) -> None:
    refused = ProbeRefused(
        "the camera test opens video files only under camera_media_dir" + ("" if media_dir else " (not set)")
    )
    if not media_dir:
        raise refused
    root = Path(media_dir).resolve()
    path = _file_path(url).resolve()  # symlinks and '..' followed before the check
    if not path.is_relative_to(root):
        raise refused


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
    if kind == "network":
        _check_network(url, settings.camera_probe_allow, resolve)
    elif kind == "file":
        _check_file(url, settings.camera_media_dir)
