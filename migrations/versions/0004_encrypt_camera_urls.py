"""camera source URLs encrypted at rest (network URLs: they may carry credentials)

Data only: the column stays TEXT. Upgrade seals the plain-text network URLs earlier versions stored
(``areya-enc-v1:<Fernet token>``, key derived from the secret key: areya.db.secret_url); downgrade opens them again.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import context, op

from areya.db.secret_url import UrlCipher, carries_credentials, is_encrypted

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

cameras = sa.table("cameras", sa.column("id", sa.Integer), sa.column("source_url", sa.Text))


def _cipher() -> UrlCipher:
    settings = context.config.attributes.get("areya_settings")
    if settings is None:
        from areya.config import load_settings

        settings = load_settings()
    return UrlCipher(settings.secret_key)


def _rewrite(change: Callable[[str], str | None]) -> None:
    conn = op.get_bind()
    for camera_id, url in conn.execute(sa.select(cameras.c.id, cameras.c.source_url)).all():
        new = change(url) if url is not None else None
        if new is not None and new != url:
            conn.execute(cameras.update().where(cameras.c.id == camera_id).values(source_url=new))


def upgrade() -> None:
    cipher = _cipher()
    _rewrite(lambda url: cipher.seal(url) if carries_credentials(url) else None)


def downgrade() -> None:
    cipher = _cipher()
    _rewrite(lambda url: cipher.open(url) if is_encrypted(url) else None)
