"""Writing observations: one transaction per batch, a re-delivered frame inserts nothing twice."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine


def _insert_ignoring_duplicates(dialect: str) -> Any:
    from areya.db.models import Observation  # noqa: PLC0415

    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # noqa: PLC0415
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert  # noqa: PLC0415
    else:
        raise RuntimeError(f"observations need SQLite or PostgreSQL (insert ... on conflict), not {dialect}")
    return dialect_insert(Observation).on_conflict_do_nothing(index_elements=["frame_id", "face_index"])


def write_observations(engine: Engine, rows: list[dict[str, Any]]) -> int:
    """Insert observation rows in one committed transaction; returns how many were new."""
    if not rows:
        return 0
    from areya.db.models import Observation  # noqa: PLC0415

    stmt = _insert_ignoring_duplicates(engine.dialect.name).returning(Observation.id)
    with engine.begin() as conn:
        inserted = conn.execute(stmt, rows).all()
    return len(inserted)
