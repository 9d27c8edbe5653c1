"""Private files: what Areya creates in its data dir (the SQLite DB and its WAL/SHM, the secret key, the embedded
Redis folder and socket) is readable by its own user only.

Every entry point (the ``areya`` command, the WSGI module) calls :func:`restrict_umask` first, so new files are
0600 and new folders 0700; :func:`secure_data_dir` also tightens a data dir and the known files in it that an older
version (or a looser umask) left group- or world-readable.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077
DIR_MODE = 0o700
FILE_MODE = 0o600
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def restrict_umask() -> int:
    """Set the process umask to 077 (files 0600, folders 0700); returns the previous one."""
    return os.umask(PRIVATE_UMASK)


def tighten(path: Path, mode: int) -> bool:
    """Drop group/other permission bits of ``path`` (ours, not a link) beyond ``mode``; True if it changed."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(info.st_mode) or info.st_uid != os.geteuid():
        return False
    current = stat.S_IMODE(info.st_mode)
    wanted = current & mode
    if current == wanted:
        return False
    try:
        path.chmod(wanted)
    except OSError as exc:
        log.warning("cannot restrict the permissions of %s: %s", path, exc)
        return False
    log.info("restricted %s from %o to %o", path, current, wanted)
    return True


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) as 0700, or tighten it to 0700 if it is ours."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    tighten(path, DIR_MODE)
    return path


def sqlite_files(database: Path) -> list[Path]:
    """The database file and its WAL, shared-memory and rollback-journal companions."""
    return [database.with_name(database.name + suffix) for suffix in SQLITE_SUFFIXES]


def tighten_files(paths: Iterable[Path]) -> None:
    for path in paths:
        tighten(path, DIR_MODE if path.is_dir() else FILE_MODE)


def secure_data_dir(data_dir: Path, database: Path | None = None) -> None:
    """The data dir 0700, and the files Areya keeps there (secret key, SQLite DB, embedded Redis folder) private."""
    with contextlib.suppress(OSError):
        private_dir(data_dir)
    known = [data_dir / "secret_key", data_dir / "redis", *sqlite_files(data_dir / "areya.db")]
    redis_dir = data_dir / "redis"
    if redis_dir.is_dir():
        known.extend(entry for entry in redis_dir.iterdir() if not entry.is_symlink())
    if database is not None:
        known.extend(sqlite_files(database))
    tighten_files(known)
