"""Database layer: typed models, engine/session helpers, UTC time type, migrations."""

from areya.db.base import Base
from areya.db.engine import create_db_engine, create_session_factory, session_scope
from areya.db.types import UTCDateTime, utcnow

__all__ = ["Base", "UTCDateTime", "create_db_engine", "create_session_factory", "session_scope", "utcnow"]
