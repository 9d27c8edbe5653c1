"""The camera URL policy at connect time (areya.camera.url_policy, areya.camera.egress): a saved URL is checked
again whenever ingest or the camera test connects, with the DNS answer of that moment, and HTTP(S) streams go
through a proxy that checks every connection FFmpeg makes, redirects included (the security review: FFmpeg followed
a 302 to 127.0.0.1)."""

from __future__ import annotations

import http.server
import os
import socketserver
import threading
import time
from collections.abc import Iterator

import cv2
import numpy as np
import pytest

from areya.camera import egress
from areya.camera.sources import SourceError, open_source
from areya.camera.url_policy import CameraUrlPolicy, CameraUrlRefused

ALLOWED_HOST = "127.0.0.2"  # a loopback address of its own (Linux routes 127/8): the "camera" the policy allows


class _Server:
    def __init__(self, host: str, handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        self.hits: list[str] = []
        outer = self

        class Handler(handler):  # type: ignore[misc, valid-type]
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                outer.hits.append(self.path)
                super().do_GET()

        self.httpd = socketserver.ThreadingTCPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Secret(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"internal")


def _jpeg() -> bytes:
    frame = np.full((48, 64, 3), 120, np.uint8)
    return bytes(cv2.imencode(".jpg", frame)[1])


class _Mjpeg(http.server.BaseHTTPRequestHandler):
    redirect_to = ""

    def do_GET(self) -> None:  # noqa: N802
        if self.redirect_to:
            self.send_response(302)
            self.send_header("Location", self.redirect_to)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        jpeg = _jpeg()
        try:
            for _ in range(20):
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg))
                self.wfile.write(jpeg + b"\r\n")
                time.sleep(0.05)
        except OSError:
            pass


@pytest.fixture
def policy() -> CameraUrlPolicy:
    return CameraUrlPolicy(allow=(f"{ALLOWED_HOST}/32",), local_addresses=frozenset)


@pytest.fixture(autouse=True)
def _fresh_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(egress.OPTIONS_ENV, raising=False)
    yield
    egress.stop()


@pytest.fixture
def secret() -> Iterator[_Server]:
    server = _Server("127.0.0.1", _Secret)
    yield server
    server.close()


def test_a_saved_loopback_url_is_refused_when_ingest_connects(policy: CameraUrlPolicy, secret: _Server) -> None:
    source = open_source(f"http://127.0.0.1:{secret.port}/cam.mjpg", policy=policy)
    with pytest.raises(SourceError, match="refused.*loopback"):
        source.open()
    assert secret.hits == []


def test_the_dns_answer_of_the_moment_is_checked(secret: _Server) -> None:
    rebinding = CameraUrlPolicy(resolve=lambda host: ["127.0.0.1"], local_addresses=frozenset)
    with pytest.raises(CameraUrlRefused, match="loopback"):
        rebinding.check("http://camera.example/x", unresolved_ok=True)
    source = open_source(f"http://camera.example:{secret.port}/x", policy=rebinding)
    with pytest.raises(SourceError, match="refused"):
        source.open()
    assert secret.hits == []


def test_a_redirect_to_a_refused_address_is_not_followed(policy: CameraUrlPolicy, secret: _Server) -> None:
    handler = type("Redirect", (_Mjpeg,), {"redirect_to": f"http://127.0.0.1:{secret.port}/secret"})
    camera = _Server(ALLOWED_HOST, handler)
    try:
        source = open_source(f"http://{ALLOWED_HOST}:{camera.port}/cam.mjpg", policy=policy)
        with pytest.raises(SourceError):
            source.open()
        assert camera.hits == ["/cam.mjpg"]  # the camera was asked (through the proxy) ...
        assert secret.hits == []  # ... the address it redirected to never was
    finally:
        camera.close()


def test_an_allowed_mjpeg_camera_is_read_through_the_proxy(policy: CameraUrlPolicy) -> None:
    camera = _Server(ALLOWED_HOST, _Mjpeg)
    try:
        source = open_source(f"http://{ALLOWED_HOST}:{camera.port}/cam.mjpg", policy=policy)
        source.open()
        source.grab()
        frame, _ = source.retrieve()
        source.close()
        assert frame.shape[:2] == (48, 64)
        assert "http_proxy;http://127.0.0.1:" in os.environ[egress.OPTIONS_ENV]
    finally:
        camera.close()


def test_no_proxy_cannot_route_ffmpeg_around_the_proxy(
    policy: CameraUrlPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.delenv("NO_PROXY", raising=False)
    egress.route_ffmpeg_http(policy)
    assert "no_proxy" not in os.environ and os.environ["NO_PROXY"] == "127.0.0.1,localhost"


def test_own_addresses_and_private_networks() -> None:
    policy = CameraUrlPolicy(
        allow=("10.20.0.0/16",), local_addresses=lambda: frozenset({__import__("ipaddress").ip_address("10.20.0.2")})
    )
    policy.check("rtsp://10.20.0.11/s")  # the camera network
    policy.check("rtsp://8.8.8.8/s")  # a public address needs no entry
    with pytest.raises(CameraUrlRefused, match="own address"):
        policy.check("http://10.20.0.2:5000/")  # the server itself, although inside the camera network
    with pytest.raises(CameraUrlRefused, match="private network"):
        policy.check("http://192.168.1.1/")
    with pytest.raises(CameraUrlRefused, match="private network"):
        policy.check("http://[fd00::1]/")
