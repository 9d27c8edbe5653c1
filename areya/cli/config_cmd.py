"""``areya config``: show, check and document the settings."""

from __future__ import annotations

import json

import click

from areya.cli.context import get_context


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
    settings = get_context().settings
    click.echo(f"configuration OK (data_dir {settings.data_dir})")


@config.command("table")
def table_cmd() -> None:
    """Print the Markdown table of every setting (used for the README)."""
    from areya.config import settings_table_markdown

    click.echo(settings_table_markdown(), nl=False)
