"""``areya config``: show, check and document the settings."""

from __future__ import annotations

import json
from pathlib import Path

import click

from areya.cli.context import get_context

TABLE_START = "<!-- config-table:start -->"
TABLE_END = "<!-- config-table:end -->"


@click.group()
def config() -> None:
    """Settings: defaults < TOML file (--config) < AREYA_<KEY> env vars."""


@config.command("show")
def show_cmd() -> None:
    """Print the effective settings as JSON (secrets and passwords masked)."""
    click.echo(json.dumps(get_context().settings.public_dict(), indent=2, sort_keys=False))


@config.command("check")
def check_cmd() -> None:
    """Validate the settings (exit 2 with the problem if invalid)."""
    from areya.config import ConfigError, env_name
    from areya.emotion.inference import resolve_model_path

    settings = get_context().settings
    try:
        model = resolve_model_path(settings.emotion_model)
    except FileNotFoundError as exc:
        raise ConfigError(f"{env_name('emotion_model')}: {exc}") from None
    click.echo(f"configuration OK (data_dir {settings.data_dir}, detector {settings.detector}, model {model})")


@config.command("table")
@click.option(
    "--update",
    "update_file",
    type=click.Path(exists=True, dir_okay=False, writable=True),
    help=f"Rewrite the table between the {TABLE_START} / {TABLE_END} markers of this file (e.g. README.md).",
)
def table_cmd(update_file: str | None) -> None:
    """Print the Markdown table of every setting (the README's table is generated with --update README.md)."""
    from areya.config import settings_table_markdown

    table = settings_table_markdown()
    if update_file is None:
        click.echo(table, nl=False)
        return
    path = Path(update_file)
    content = path.read_text(encoding="utf-8")
    updated = replace_between_markers(content, table)
    if updated != content:
        path.write_text(updated, encoding="utf-8")
    click.echo(f"{path}: configuration table {'updated' if updated != content else 'already up to date'}")


def replace_between_markers(content: str, table: str) -> str:
    start, end = content.find(TABLE_START), content.find(TABLE_END)
    if start < 0 or end < start:
        raise click.ClickException(f"markers {TABLE_START} ... {TABLE_END} not found")
    return content[: start + len(TABLE_START)] + "\n" + table + content[end:]
