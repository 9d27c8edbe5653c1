"""Small output helpers for CLI commands: aligned tables or JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import click


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%SZ")
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def emit(headers: Sequence[str], rows: Sequence[Sequence[Any]], as_json: bool = False) -> None:
    """Print rows as an aligned text table, or as a JSON list of objects."""
    if as_json:
        records = [
            {h: (v.isoformat() if isinstance(v, datetime) else v) for h, v in zip(headers, row, strict=True)}
            for row in rows
        ]
        click.echo(json.dumps(records, indent=2))
        return
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    click.echo("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
