"""``areya web``: refuses an unmigrated database; serves the dashboard and stops cleanly (embedded Redis too)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from areya.config import load_settings
from areya.db.migrate import upgrade


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AREYA_")}
    env["AREYA_DATA_DIR"] = str(tmp_path / "var")
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_web_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "areya", "web", "--port", "0"],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "run `areya db upgrade`" in result.stderr


def test_web_serves_and_stops(tmp_path: Path) -> None:
    env = _env(tmp_path)
    upgrade(load_settings(env=env))
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "areya", "web", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        body = ""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as response:
                    body = response.read().decode()
                    headers = response.headers
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"areya web exited: {proc.stderr.read() if proc.stderr else ''}")
                time.sleep(0.3)
        assert "Log in to Areya" in body
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["Server"] == "areya"  # the command's own server names no Werkzeug / Python versions
        redis_pid = int((tmp_path / "var" / "redis" / "redis.pid").read_text())  # the embedded Redis it started
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "dashboard: stopped" in stderr
    with pytest.raises(ProcessLookupError):
        for _ in range(100):
            os.kill(redis_pid, 0)
            time.sleep(0.1)


WSGI_CHILD = """
import os, stat, sys
from pathlib import Path
import areya.webapp.wsgi  # what gunicorn imports: umask first, then the app (secret key, DB engine, Redis)
data_dir = Path(sys.argv[1])
print(oct(os.umask(0o077)), flush=True)
for path in [data_dir, *sorted(data_dir.rglob("*"))]:
    if not path.is_socket():
        print(path.relative_to(data_dir.parent), oct(stat.S_IMODE(path.stat().st_mode)), flush=True)
"""


def test_the_wsgi_entry_point_keeps_the_data_dir_private(tmp_path: Path) -> None:
    """gunicorn starts from ``areya.webapp.wsgi``, not the ``areya`` command: it sets umask 077 too (issue 11,
    item 2), so what the app creates in the data dir (secret key, embedded Redis folder) is its user's only."""
    env = _env(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", WSGI_CHILD, env["AREYA_DATA_DIR"]],
        env=env,  # noqa: S603
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.umask(0o022),
    )  # noqa: PLW1509 - a login shell's umask
    assert result.returncode == 0, result.stderr[-2000:]
    umask, *entries = result.stdout.split("\n")[:-1]
    assert umask == "0o77"
    modes = dict(line.rsplit(" ", 1) for line in entries)
    assert {"var", "var/secret_key", "var/redis"} <= set(modes), modes
    for name, mode in modes.items():
        assert mode in ("0o700", "0o600"), f"{name}: {mode}"
