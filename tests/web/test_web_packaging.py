"""The dashboard's web/ files ship with the package (data files) and are found from the source tree."""

from __future__ import annotations

import tomllib
from pathlib import Path

from areya.webapp.paths import SHARE_SUBDIR, web_dir

REPO = Path(__file__).resolve().parents[2]


def test_every_template_and_static_file_is_a_data_file() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    data_files = config["tool"]["setuptools"]["data-files"]
    shipped: set[Path] = set()
    for target, patterns in data_files.items():
        assert target.startswith(str(SHARE_SUBDIR))
        for pattern in patterns:
            shipped |= {p.relative_to(REPO) for p in REPO.glob(pattern)}
    needed = {
        p.relative_to(REPO)
        for folder in ("web/templates", "web/static")
        for p in (REPO / folder).rglob("*")
        if p.is_file()
    }
    assert needed and needed <= shipped, f"not shipped: {sorted(needed - shipped)}"


def test_source_tree_web_dir() -> None:
    assert web_dir() == REPO / "web"
