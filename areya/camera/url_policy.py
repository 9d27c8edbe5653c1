"""Which camera sources Areya may open: one policy, applied when a camera URL is saved (dashboard, ``areya camera
add``/``edit``, ``areya sync-cameras``), when the camera test opens it and every time ingest connects.

A camera URL makes Areya's own servers open a connection, so it must not become a way to reach what only they
can reach (server-side request forgery):

* a network camera's host must resolve only to addresses Areya may connect to: global (public) addresses, and
  private ones (10/8, 172.16/12, 192.168/16, fc00::/7, 100.64/10) only within ``camera_allow_networks``, the
  hospital's camera networks. Loopback, link-local (cloud metadata at 169.254.169.254 included), unspecified,
  multicast and reserved addresses and the server's own interface addresses are refused unless an entry names
  that very address (or the host name): a network entry that merely contains them is not enough;
* HTTP(S) streams are opened through :mod:`areya.camera.egress`, which applies the same rules to every connection
  FFmpeg makes, redirects included, at the address it checked (no second DNS answer);
* from the dashboard (not trusted with the server's file system), a video file must lie under ``camera_media_dir``
  and the synthetic camera may only use the packaged demo story and faces; the answer is the same whether a path
  outside exists or not. The command line, run by the host's operator, may name any file.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from areya.camera.facepack import BUILTIN_FACES
from areya.source_url import SourceUrlError, source_kind, validate_source_url

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str], list[str]]
# well-known metadata addresses that are not link-local (AWS IPv6 instance metadata)
METADATA_ADDRESSES = frozenset({ipaddress.ip_address("fd00:ec2::254")})
# the story the demo stores in its synthetic camera's URL (areya/demo/story.toml, shipped in the package)
PACKAGED_STORY = Path(__file__).resolve().parent.parent / "demo" / "story.toml"
OWN_ADDRESSES_TTL_S = 60.0


class CameraUrlRefused(ValueError):
    """Areya may not open this camera source (the message says why, never with the URL's credentials)."""


def resolve_host(host: str) -> list[str]:
    """Every address ``host`` resolves to (a numeric host such as 2130706433 resolves to itself, 127.0.0.1)."""
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return sorted({str(info[4][0]).split("%", 1)[0] for info in infos})


def _interface_addresses() -> set[str]:
    found: set[str] = set()
    try:
        import psutil  # noqa: PLC0415 - optional: present with most installs

        for addresses in psutil.net_if_addrs().values():
            found.update(a.address.split("%", 1)[0] for a in addresses if a.family in (socket.AF_INET, socket.AF_INET6))
    except Exception:  # noqa: BLE001 - no psutil: the addresses the host name resolves to
        pass
    for name in {socket.gethostname(), socket.getfqdn()}:
        try:
            found.update(resolve_host(name))
        except OSError:
            continue
    return found


_own_cache: tuple[float, frozenset[IPAddress]] = (0.0, frozenset())


def own_addresses() -> frozenset[IPAddress]:
    """This server's interface addresses (cached a minute)."""
    global _own_cache
    at, cached = _own_cache
    if cached and time.monotonic() - at < OWN_ADDRESSES_TTL_S:
        return cached
    out = set()
    for text in _interface_addresses():
        try:
            out.add(_plain(ipaddress.ip_address(text)))
        except ValueError:
            continue
    _own_cache = (time.monotonic(), frozenset(out))
    return _own_cache[1]


def _plain(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _networks(entries: Iterable[str]) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    names, networks = [], []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            names.append(entry.strip().lower().rstrip("."))
    return tuple(names), tuple(networks)


@dataclass(frozen=True)
class CameraUrlPolicy:
    """The rules above, from ``camera_allow_networks`` (and the older ``camera_probe_allow``) and
    ``camera_media_dir``; :meth:`check` a URL, :meth:`connect_addresses` a host before connecting."""

    allow: tuple[str, ...] = ()
    media_dir: str = ""
    resolve: Resolver = resolve_host
    local_addresses: Callable[[], frozenset[IPAddress]] = own_addresses
    _names: tuple[str, ...] = field(default=(), init=False, repr=False, compare=False)
    _networks: tuple[Any, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names, networks = _networks(self.allow)
        object.__setattr__(self, "_names", names)
        object.__setattr__(self, "_networks", networks)

    @classmethod
    def from_settings(cls, settings: Any, **kwargs: Any) -> CameraUrlPolicy:
        allow = tuple(getattr(settings, "camera_allow_networks", ())) + tuple(settings.camera_probe_allow)
        return cls(allow=allow, media_dir=settings.camera_media_dir, **kwargs)

    # -- network hosts -------------------------------------------------------------------------
    def address_refusal(self, host: str, address: IPAddress) -> str | None:
        """Why Areya may not connect to ``address`` (which ``host`` resolved to), or None."""
        address = _plain(address)
        host_named = host.lower().rstrip(".") in self._names
        exact = host_named or any(
            address in net and net.num_addresses == 1 for net in self._networks if net.version == address.version
        )
        special = (
            address.is_loopback
            or address.is_link_local
            or address.is_unspecified
            or address.is_multicast
            or address.is_reserved
            or address in METADATA_ADDRESSES
        )
        if special or address in self.local_addresses():
            if exact:
                return None
            what = "this server's own address" if not special else "a loopback, link-local or reserved address"
            return (
                f"camera host {host!r} is {what} ({address}): Areya does not open it (name that very address in "
                "camera_allow_networks if it really is a camera)"
            )
        if address.is_global:
            return None
        if host_named or any(address in net for net in self._networks if net.version == address.version):
            return None
        return (
            f"camera host {host!r} is on a private network ({address}) outside camera_allow_networks: add the "
            "cameras' network (e.g. 10.20.0.0/16) to that setting"
        )

    def connect_addresses(self, host: str) -> list[IPAddress]:
        """The addresses to connect to for ``host``: all it resolves to, each allowed; else CameraUrlRefused."""
        try:
            addresses = [_plain(ipaddress.ip_address(a)) for a in self.resolve(host)]
        except (OSError, UnicodeError, ValueError):
            raise CameraUrlRefused(f"camera host {host!r} does not resolve") from None
        if not addresses:
            raise CameraUrlRefused(f"camera host {host!r} does not resolve")
        for address in addresses:
            reason = self.address_refusal(host, address)
            if reason:
                raise CameraUrlRefused(reason)
        return addresses

    # -- whole URLs ----------------------------------------------------------------------------
    def check(self, url: str, *, trusted: bool = False, unresolved_ok: bool = False) -> str:
        """The validated URL, or CameraUrlRefused.  ``trusted``: the command line (any file or story path).
        ``unresolved_ok``: a host name that does not resolve here passes (saving: the web server may not see the
        cameras' DNS; the check is made again at every connection)."""
        try:
            url = validate_source_url(url)
            kind = source_kind(url)
        except SourceUrlError as exc:
            raise CameraUrlRefused(str(exc)) from None
        if kind == "network":
            host = urlsplit(url).hostname or ""
            try:
                self.connect_addresses(host)
            except CameraUrlRefused:
                if not (unresolved_ok and not _numeric(host) and not self._resolves(host)):
                    raise
        elif kind == "file" and not trusted:
            self._check_file(url)
        elif kind == "synthetic" and not trusted:
            _check_synthetic(url)
        return url

    def _resolves(self, host: str) -> bool:
        try:
            return bool(self.resolve(host))
        except (OSError, UnicodeError, ValueError):
            return False

    def _check_file(self, url: str) -> None:
        refused = CameraUrlRefused(
            f"from the dashboard, video files are opened only under camera_media_dir ({self.media_dir})"
            if self.media_dir
            else "from the dashboard, video files are opened only under camera_media_dir, which is not set: put "
            "the videos in one folder and set camera_media_dir to it (the demo sets <data_dir>/media)"
        )
        if not self.media_dir:
            raise refused
        root = Path(self.media_dir).resolve()
        raw = unquote(urlsplit(url).path) if url.lower().startswith("file:") else url
        path = Path(raw).resolve()  # symlinks and '..' followed before the check
        if not path.is_relative_to(root):
            raise refused


def _numeric(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host.isdigit()  # 2130706433 is 127.0.0.1
    return True


def _check_synthetic(url: str) -> None:
    """From the dashboard the synthetic camera uses only what ships with Areya (no paths: no file oracle)."""
    options = {}
    for part in url[len("synthetic:") :].lstrip("?").replace("&", ",").split(","):
        if part.strip():
            key, _, value = part.partition("=")
            options[key.strip()] = value.strip()
    faces = options.get("faces", "")
    story = options.get("story")
    if faces not in ("", BUILTIN_FACES) or (story is not None and Path(story) != PACKAGED_STORY):
        raise CameraUrlRefused(
            f"from the dashboard, the synthetic camera uses only the packaged demo story (story={PACKAGED_STORY}) "
            f"and faces (faces={BUILTIN_FACES} or none); other paths are set with areya camera add/edit"
        )
