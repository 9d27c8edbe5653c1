"""Demo users' passwords: generated once per data dir, kept in ``<data_dir>/demo-passwords.json`` (mode 0600).

Every ``areya demo`` start prints them again (the same ones: browser sessions and notes stay valid);
``areya demo --reset-passwords`` makes new ones.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

PASSWORDS_FILE = "demo-passwords.json"


def passwords_path(data_dir: Path) -> Path:
    return Path(data_dir) / PASSWORDS_FILE


def new_password() -> str:
    return secrets.token_urlsafe(12)  # 16 characters, ~96 bits: passes the password rules


def demo_passwords(data_dir: Path, usernames: tuple[str, ...], *, reset: bool = False) -> dict[str, str]:
    """username -> password: the stored ones (new ones for missing users, or all with ``reset``), saved 0600."""
    path = passwords_path(data_dir)
    stored: dict[str, str] = {}
    if path.is_file() and not reset:
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
            stored = {k: v for k, v in loaded.items() if isinstance(k, str) and isinstance(v, str) and v}
        except (OSError, ValueError):
            stored = {}
    passwords = {name: stored.get(name) or new_password() for name in usernames}
    if passwords != stored:
        _write_private(path, json.dumps(passwords, indent=2) + "\n")
    else:
        os.chmod(path, 0o600)  # tighten a file an older version or a user left looser
    return passwords


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
