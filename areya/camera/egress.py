"""HTTP(S) camera streams go out through a small proxy inside the process that applies the camera URL policy
(:mod:`areya.camera.url_policy`) to every connection FFmpeg makes.

FFmpeg follows HTTP redirects on its own (a camera URL answering ``302 Location: http://127.0.0.1:6379/`` made it
connect there) and resolves the host again after Areya checked it. OpenCV's FFmpeg backend reads its options from
``OPENCV_FFMPEG_CAPTURE_OPTIONS`` at every open; with ``http_proxy`` set there, FFmpeg sends each HTTP request
(``GET http://host/path``) and each HTTPS tunnel (``CONNECT host:443``) of the stream, redirects included, to this
proxy, which resolves the host once, refuses it unless the policy allows every address, and connects to the
address it checked. The proxy listens on 127.0.0.1 only, on a port chosen at start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import socketserver
import threading
from typing import Any
from urllib.parse import urlsplit

from areya.camera.url_policy import CameraUrlPolicy, CameraUrlRefused

log = logging.getLogger(__name__)
OPTIONS_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
CONNECT_TIMEOUT_S = 5.0
MAX_HEADER_BYTES = 64 * 1024
_HOP_HEADERS = ("proxy-connection", "proxy-authorization", "proxy-authenticate", "connection", "keep-alive")


class _Handler(socketserver.BaseRequestHandler):
    server: _ProxyServer

    def handle(self) -> None:
        client: socket.socket = self.request
        client.settimeout(CONNECT_TIMEOUT_S * 2)
        head = b""
        try:
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
                if len(head) > MAX_HEADER_BYTES:
                    return self._answer(client, 431, "request headers too large")
        except OSError:
            return
        header_block, _, rest = head.partition(b"\r\n\r\n")
        lines = header_block.decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            return self._answer(client, 400, "bad request line")
        if method.upper() == "CONNECT":
            host, _, port_text = target.rpartition(":")
            host = host.strip("[]")
            port = int(port_text) if port_text.isdigit() else 443
            first = b""
        else:
            parts = urlsplit(target)
            if parts.scheme.lower() != "http" or not parts.hostname:
                return self._answer(client, 400, "only absolute http:// requests are proxied")
            host = parts.hostname
            try:
                port = parts.port or 80
            except ValueError:
                return self._answer(client, 400, "bad port")
            path = parts.path or "/"
            if parts.query:
                path += "?" + parts.query
            headers = [h for h in lines[1:] if h.split(":", 1)[0].strip().lower() not in _HOP_HEADERS]
            first = ("\r\n".join([f"{method} {path} {version}", *headers, "Connection: close"]) + "\r\n\r\n").encode(
                "latin-1"
            ) + rest
        try:
            addresses = self.server.policy.connect_addresses(host)
        except CameraUrlRefused as exc:
            log.warning("camera connection refused: %s", exc)
            return self._answer(client, 403, str(exc))
        upstream = None
        for address in addresses:
            try:
                upstream = socket.create_connection((str(address), port), timeout=CONNECT_TIMEOUT_S)
                break
            except OSError:
                continue
        if upstream is None:
            return self._answer(client, 502, f"cannot connect to camera host {host!r}")
        with upstream:
            if method.upper() == "CONNECT":
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                if rest:
                    upstream.sendall(rest)
            else:
                upstream.sendall(first)
            _pipe(client, upstream, self.server.stopping)

    @staticmethod
    def _answer(client: socket.socket, status: int, message: str) -> None:
        body = message.encode("utf-8", "replace")
        reason = {400: "Bad Request", 403: "Forbidden", 431: "Too Large", 502: "Bad Gateway"}.get(status, "Error")
        with contextlib.suppress(OSError):
            client.sendall(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode("latin-1")
                + body
            )


def _pipe(a: socket.socket, b: socket.socket, stopping: threading.Event) -> None:
    a.settimeout(None)
    b.settimeout(None)
    sockets = [a, b]
    while not stopping.is_set():
        try:
            readable, _, broken = select.select(sockets, [], sockets, 1.0)
        except (OSError, ValueError):
            return
        if broken:
            return
        for sock in readable:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            try:
                (b if sock is a else a).sendall(data)
            except OSError:
                return


class _ProxyServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, policy: CameraUrlPolicy) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.policy = policy
        self.stopping = threading.Event()


_lock = threading.Lock()
_server: _ProxyServer | None = None


def proxy_url(policy: CameraUrlPolicy) -> str:
    """The running proxy's URL (started on first use; later calls update its policy)."""
    global _server
    with _lock:
        if _server is None:
            _server = _ProxyServer(policy)
            threading.Thread(target=_server.serve_forever, name="camera-egress", daemon=True).start()
        else:
            _server.policy = policy
        host, port = _server.server_address[:2]
        return f"http://{host}:{port}"


def route_ffmpeg_http(policy: CameraUrlPolicy) -> None:
    """Make OpenCV's FFmpeg opens of HTTP(S) URLs go through the proxy (``http_proxy`` in its options).

    FFmpeg bypasses a proxy for the hosts in ``no_proxy`` (lower case only; ``no_proxy=127.0.0.1`` would let a
    redirect to loopback past the policy): its value moves to ``NO_PROXY``, which Python's HTTP clients (requests,
    urllib: webhooks, e-mail) read as well."""
    if "no_proxy" in os.environ:
        value = os.environ.pop("no_proxy")
        os.environ.setdefault("NO_PROXY", value)
    url = proxy_url(policy)
    current = os.environ.get(OPTIONS_ENV, "")
    kept = [item for item in current.split("|") if item and not item.startswith("http_proxy;")]
    wanted = "|".join([*kept, f"http_proxy;{url}"])
    if current != wanted:
        os.environ[OPTIONS_ENV] = wanted


def stop() -> None:
    """Stop the proxy (tests); the next :func:`proxy_url` starts a new one."""
    global _server
    with _lock:
        server, _server = _server, None
    if server is not None:
        server.stopping.set()
        server.shutdown()
        server.server_close()


def info() -> dict[str, Any]:
    return {"running": _server is not None, "options": os.environ.get(OPTIONS_ENV, "")}
