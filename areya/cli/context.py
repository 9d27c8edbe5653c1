"""What every CLI command shares: the --config file, lazily loaded Settings, DB engine and sessions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from areya.config import Settings


@dataclass
class CliContext:
    config_file: str | None = None
    log_level: str | None = None  # --log-level: overrides the log_level setting
    _settings: Settings | None = field(default=None, repr=False)
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        """Loaded on first use (a ConfigError is turned into exit code 2 by the root group)."""
        if self._settings is None:
            from areya.config import load_settings

            settings = load_settings(self.config_file)
            if self.log_level and self.log_level != settings.log_level:
                settings = settings.replace(log_level=self.log_level)
            self._settings = settings
        return self._settings

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from areya.db.engine import create_db_engine

            self._engine = create_db_engine(self.settings)
        return self._engine

    def session_factory(self) -> sessionmaker[Session]:
        from areya.db.engine import create_session_factory

        return create_session_factory(self.engine)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def get_context() -> CliContext:
    """The CliContext of the running command (works in any nested command)."""
    ctx = click.get_current_context()
    obj = ctx.find_object(CliContext)
    if obj is None:
        obj = ctx.ensure_object(CliContext)
    return obj


pass_cli_context = click.make_pass_decorator(CliContext, ensure=True)
