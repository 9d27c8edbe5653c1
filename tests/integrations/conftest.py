"""ADT test fixtures: ``processor``, an ADT processor over ward ICU (beds 1 and 2) in the per-test database."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from adt_helpers import LOCATIONS
from sqlalchemy.orm import Session

from areya import admin
from areya.integrations.hl7.locations import LocationMap
from areya.integrations.hl7.service import AdtProcessor


@pytest.fixture
def processor(session: Session, session_factory: Callable[[], Session]) -> AdtProcessor:
    admin.add_ward(session, "ICU")
    admin.add_bed(session, "ICU", "1")
    admin.add_bed(session, "ICU", "2")
    session.commit()
    return AdtProcessor(session_factory, LocationMap.from_pairs(LOCATIONS))  # type: ignore[arg-type]
