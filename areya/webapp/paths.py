"""Where the dashboard's templates and static files are: the repo's ``web/`` or the installed copy."""

from __future__ import annotations

import sys
from pathlib import Path

SHARE_SUBDIR = Path("share") / "areya" / "web"


def web_dir_candidates() -> list[Path]:
    return [
        Path(__file__).resolve().parents[2] / "web",  # source checkout / editable install
        Path(sys.prefix) / SHARE_SUBDIR,  # pip install (data-files)
        Path(sys.base_prefix) / SHARE_SUBDIR,
    ]


def web_dir() -> Path:
    """The first folder holding ``templates/`` and ``static/``."""
    for candidate in web_dir_candidates():
        if (candidate / "templates").is_dir() and (candidate / "static").is_dir():
            return candidate
    tried = ", ".join(str(c) for c in web_dir_candidates())
    raise RuntimeError(f"dashboard templates not found (tried {tried}); reinstall areya")
