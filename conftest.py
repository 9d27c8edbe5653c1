"""Which tests a run includes (see docs/development.md).

``pytest`` (and ``.ci/run``) runs the fast suite: every test except those marked ``slow``, and the PostgreSQL
variant only of tests marked ``postgres`` (where PostgreSQL behaves differently: locking, migrations, window
queries, the outbox, concurrent writers). ``pytest --full`` (``.ci/run --full``) runs everything.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full",
        action="store_true",
        help="also run the tests marked slow and the PostgreSQL variant of every database test",
    )


def _postgres_variant(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return callspec is not None and callspec.params.get("db_backend") == "postgresql"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--full"):
        return
    keep: list[pytest.Item] = []
    left_out: list[pytest.Item] = []
    for item in items:
        slow = item.get_closest_marker("slow") is not None
        other_postgres = _postgres_variant(item) and item.get_closest_marker("postgres") is None
        (left_out if slow or other_postgres else keep).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = keep
