"""``areya db``: schema migrations (Alembic)."""

from __future__ import annotations

import click

from areya.cli.context import get_context


@click.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@click.argument("revision", default="head")
def upgrade_cmd(revision: str) -> None:
    """Migrate the database to REVISION (default: head). Safe to run repeatedly."""
    from areya.config import mask_url_password
    from areya.db.migrate import current_revision, upgrade

    app = get_context()
    upgrade(app.settings, revision, engine=app.engine)
    revision_now = current_revision(app.settings, app.engine)
    click.echo(f"database {mask_url_password(app.settings.database_url)} at revision {revision_now}")


@db.command("current")
def current_cmd() -> None:
    """Print the database's revision and whether it is at head (exit 1 if not)."""
    from areya.db.migrate import current_revision, head_revision

    app = get_context()
    current = current_revision(app.settings, app.engine)
    head = head_revision(app.settings)
    state = "head" if current == head else f"behind head {head}"
    click.echo(f"{current or '(empty: run areya db upgrade)'} ({state})")
    if current != head:
        raise SystemExit(1)
