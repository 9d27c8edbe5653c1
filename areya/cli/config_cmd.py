"""``areya config``: show, check and document the settings."""

from __future__ import annotations

import json
from pathlib import Path

import click

from areya.cli.context import get_context
from areya.config import ConfigError, env_name

TABLE_START = "<!-- config-table:start -->"
TABLE_END = "<!-- config-table:end -->"
CONFIG_DOC = "docs/configuration.md"  # the page whose table is generated (a test checks it)


@click.group()
def config() -> None:
    """Settings: defaults < TOML file (--config) < AREYA_<KEY> env vars."""


@config.command("show")
def show_cmd() -> None:
    """Print the effective settings as JSON (secrets and passwords masked)."""
    click.echo(json.dumps(get_context().settings.public_dict(), indent=2, sort_keys=False))


@config.command("check")
def check_cmd() -> None:
    """Validate the settings and the model files they name (exit 2 with the problem if invalid)."""
    from areya.emotion.inference import resolve_model_path

    settings = get_context().settings
    try:
        model = resolve_model_path(settings.emotion_model)
    except FileNotFoundError as exc:
        raise ConfigError(f"{env_name('emotion_model')}: {exc}") from None
    problem = keras_file_problem(model)
    if problem:
        raise ConfigError(f"{env_name('emotion_model')}: {model}: {problem}")
    for option, path in detector_files(settings):
        if not path.is_file():
            name = env_name("detector_options") if option else env_name("detector")
            what = f"{option}: file not found" if option else f"{settings.detector}: model file not found"
            raise ConfigError(f"{name}: {what}: {path}")
    click.echo(f"configuration OK (data_dir {settings.data_dir}, detector {settings.detector}, model {model})")


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def keras_file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a Keras model (a ``.keras`` archive or a legacy HDF5 ``.h5``), or None."""
    import zipfile

    if path.suffix == ".h5":
        with path.open("rb") as fh:
            return None if fh.read(8) == HDF5_SIGNATURE else "not an HDF5 file"
    if path.suffix != ".keras":
        return "not a Keras model file (.keras or .h5)"
    try:
        with zipfile.ZipFile(path) as archive:
            return None if "config.json" in archive.namelist() else "a .keras archive without config.json"
    except (zipfile.BadZipFile, OSError):
        return "not a .keras archive (zip)"


def detector_files(settings: object) -> list[tuple[str | None, Path]]:
    """(option name or None for a default file, path) of every model file the configured detector loads: its
    backend's and that of the backend it runs on bed-zone crops (no TensorFlow imported, nothing loaded)."""
    from areya.detectors import settings_options, zone_backend

    key, options = settings_options(settings)
    files: list[tuple[str | None, Path]] = []
    for backend in dict.fromkeys((key, zone_backend(key, options.get("zone_detector")))):
        if backend == "haar":
            if options.get("cascade_file"):
                files.append(("cascade_file", Path(options["cascade_file"]).expanduser()))
                continue
            from areya.detectors.haar import cascade_path

            try:
                files.append((None, cascade_path()))
            except RuntimeError as exc:
                raise ConfigError(f"{env_name('detector')}: {exc}") from None
        else:
            if options.get("model_path"):  # given to the zone-crop backend too
                files.append(("model_path", Path(options["model_path"]).expanduser()))
                continue
            from areya.detectors.blazeface import MODELS, REGISTRY_NAMES, model_dir

            model = next(m for m, name in REGISTRY_NAMES.items() if name == backend)
            try:
                files.append((None, model_dir() / MODELS[model].filename))
            except RuntimeError as exc:
                raise ConfigError(f"{env_name('detector')}: {exc}") from None
    return files


@config.command("table")
@click.option(
    "--update",
    "update_file",
    type=click.Path(exists=True, dir_okay=False, writable=True),
    help=f"Rewrite the table between the {TABLE_START} / {TABLE_END} markers of this file (e.g. {CONFIG_DOC}).",
)
def table_cmd(update_file: str | None) -> None:
    """Print the Markdown table of every setting (docs/configuration.md's is generated with --update)."""
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
