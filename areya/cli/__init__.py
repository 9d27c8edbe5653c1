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

ERROR_PREFIX = "error: "  # every command's one-line errors start with it (exit 2: usage/config, 1: runtime)
# sub-commands that load TensorFlow (the emotion model or a BlazeFace detector): imported early and quietly
TENSORFLOW_COMMANDS = frozenset(
    {"demo", "evaluate", "ingest", "models", "predict", "synthetic-video", "train", "worker"}
)
# command name -> "module:attribute" (a click Command or Group); imported lazily.
COMMANDS: dict[str, str] = {
    "adt": "areya.cli.adt:adt",
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
            click.echo(f"{ERROR_PREFIX}configuration: {exc}", err=True)
            ctx.exit(2)
        except click.UsageError as exc:  # bad options or arguments: click's usage text, our prefix, exit 2
            _echo_usage_error(exc)
            ctx.exit(2)
        except click.ClickException as exc:  # a command's own runtime error (raise click.ClickException(...))
            click.echo(f"{ERROR_PREFIX}{exc.format_message()}", err=True)
            ctx.exit(exc.exit_code)
        except _user_errors() as exc:
            click.echo(f"{ERROR_PREFIX}{exc}", err=True)
            ctx.exit(1)
        except (click.Abort, KeyboardInterrupt, EOFError):  # a prompt left with Ctrl-C / Ctrl-D (click: "Aborted!")
            click.echo(f"\n{ERROR_PREFIX}aborted", err=True)
            ctx.exit(1)

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:  # the root's own options
            _echo_usage_error(exc)
            raise click.exceptions.Exit(2) from None


def _echo_usage_error(exc: click.UsageError) -> None:
    if exc.ctx is not None:
        click.echo(exc.ctx.get_usage(), err=True)
        click.echo(f"Try '{exc.ctx.command_path} --help' for help.", err=True)
    click.echo(f"{ERROR_PREFIX}{exc.format_message()}", err=True)


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that are the user's input problem: one line on stderr, exit 1 (no traceback)."""
    errors: list[type[BaseException]] = []
    for module_name, name in (
        ("areya.errors", "AdminError"),
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
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], case_sensitive=False),
    help="Override the log_level setting; DEBUG also shows TensorFlow's, Alembic's and APScheduler's own lines.",
)
@click.version_option(package_name="areya")
@click.pass_context
def cli(ctx: click.Context, config_file: str | None, log_level: str | None) -> None:
    """Areya: ward-camera patient-monitoring alerts (sustained negative emotion)."""
    from areya.logsetup import import_tensorflow_quietly, quiet_native_libraries
    from areya.private_files import restrict_umask

    restrict_umask()  # the DB, its WAL, the secret key, the Redis folder and socket: this user only
    obj = ctx.ensure_object(CliContext)
    obj.config_file = config_file
    obj.log_level = log_level.upper() if log_level else None
    ctx.call_on_close(obj.close)
    level = early_log_level(obj.log_level, config_file)
    quiet_native_libraries(level)  # before anything imports TensorFlow
    if ctx.invoked_subcommand in TENSORFLOW_COMMANDS and not _asks_for_help(ctx):
        import_tensorflow_quietly(level)


def early_log_level(option: str | None, config_file: str | None) -> str:
    """The log level before Settings are loaded: --log-level, else AREYA_LOG_LEVEL, else the TOML file's, else INFO."""
    import os
    import tomllib

    if option:
        return option
    if os.environ.get("AREYA_LOG_LEVEL"):
        return os.environ["AREYA_LOG_LEVEL"].strip().upper()
    path = config_file or os.environ.get("AREYA_CONFIG")
    if path:
        try:
            with open(os.path.expanduser(path), "rb") as fh:
                data = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError):
            return "INFO"  # the settings loader reports the file's problem
        value = data.get(
            "log_level", data.get("core", {}).get("log_level") if isinstance(data.get("core"), dict) else None
        )
        if isinstance(value, str):
            return value.strip().upper()
    return "INFO"


def _asks_for_help(ctx: click.Context) -> bool:
    return any(arg in ("-h", "--help") for arg in ctx.args)  # the arguments after the sub-command name


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="areya")
