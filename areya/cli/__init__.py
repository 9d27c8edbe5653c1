"""The ``areya`` command line: a click root group whose sub-commands are imported only when used.

To add a command: write it in its own module under ``areya/cli/`` (no heavy imports at module level) and add
one line to ``COMMANDS`` below: ``"name": "areya.cli.module:object"``.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from areya.cli.context import CliContext

# command name -> "module:attribute" (a click Command or Group); imported lazily.
COMMANDS: dict[str, str] = {
    "alerts": "areya.cli.scheduler:alerts",
    "bed": "areya.cli.admin:bed",
    "camera": "areya.cli.admin:camera",
    "config": "areya.cli.config_cmd:config",
    "db": "areya.cli.db:db",
    "deadletters": "areya.cli.pipeline:deadletters",
    "demo": "areya.cli.pipeline:demo",
    "evaluate": "areya.cli.models:evaluate_cmd",
    "health": "areya.cli.deploy:health",
    "ingest": "areya.cli.pipeline:ingest",
    "models": "areya.cli.models:models_group",
    "patient": "areya.cli.admin:patient",
    "pipeline-metrics": "areya.cli.pipeline:pipeline_metrics",
    "predict": "areya.cli.predict:predict",
    "scheduler": "areya.cli.scheduler:scheduler",
    "sync-cameras": "areya.cli.deploy:sync_cameras_cmd",
    "synthetic-video": "areya.cli.pipeline:synthetic_video",
    "train": "areya.cli.models:train_cmd",
    "user": "areya.cli.admin:user",
    "web": "areya.cli.web:web",
    "ward": "areya.cli.admin:ward",
    "worker": "areya.cli.pipeline:worker",
    "zone": "areya.cli.admin:zone",
}


class LazyGroup(click.Group):
    """A group that imports each sub-command's module only when that command is listed or run."""

    def __init__(self, *args: Any, lazy_commands: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy_commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands:
            module_name, _, attr = self.lazy_commands[cmd_name].partition(":")
            command = getattr(importlib.import_module(module_name), attr)
            if not isinstance(command, click.Command):
                raise TypeError(f"{self.lazy_commands[cmd_name]} is not a click command")
            return command
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        from areya.config import ConfigError

        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            click.echo(f"error: configuration: {exc}", err=True)
            ctx.exit(2)
        except _user_errors() as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that are the user's input problem: one line on stderr, exit 1 (no traceback)."""
    errors: list[type[BaseException]] = []
    for module_name, name in (
        ("areya.admin.errors", "AdminError"),
        ("areya.db.migrate", "MigrationError"),
        ("areya.source_url", "SourceUrlError"),
    ):
        module = sys.modules.get(module_name)
        if module is not None:
            errors.append(getattr(module, name))
    return tuple(errors) or (_NeverRaised,)


class _NeverRaised(Exception):
    pass


@click.group(cls=LazyGroup, lazy_commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    envvar="AREYA_CONFIG",
    help="TOML settings file (default: $AREYA_CONFIG). Env vars AREYA_<KEY> override it.",
)
@click.version_option(package_name="areya")
@click.pass_context
def cli(ctx: click.Context, config_file: str | None) -> None:
    """Areya: ward-camera patient-monitoring alerts (sustained negative emotion)."""
    from areya.private_files import restrict_umask

    restrict_umask()  # the DB, its WAL, the secret key, the Redis folder and socket: this user only
    obj = ctx.ensure_object(CliContext)
    obj.config_file = config_file
    ctx.call_on_close(obj.close)


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="areya")
