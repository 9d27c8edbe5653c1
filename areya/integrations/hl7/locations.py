"""PV1-3 (point of care ^ room ^ bed) -> an Areya bed ``WARD/BED``, only through the configured map: an unknown
location is an error, never a guess."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from areya.integrations.hl7.errors import TABLE_VALUE_NOT_FOUND, error


def location_key(point_of_care: str, room: str, bed: str) -> str:
    return "^".join(part.strip() for part in (point_of_care, room, bed))


@dataclass(frozen=True)
class LocationMap:
    """The ``adt_location_map`` setting: ``"POC^ROOM^BED"`` -> ``"WARD/BED"``."""

    entries: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> LocationMap:
        return cls(tuple(sorted(pairs)))

    def bed_for(self, key: str, where: str = "PV1^1^3") -> str:
        """The Areya bed of a PV1-3 location key (AE 103 if it is not in the map)."""
        for location, bed in self.entries:
            if location == key:
                return bed
        raise error(TABLE_VALUE_NOT_FOUND, f"unknown location {key!r}: not in adt_location_map", where)

    def location_for(self, bed: str) -> str | None:
        """The HL7 location of an Areya bed (for FHIR Location identifiers); None if it is not mapped."""
        return next((location for location, target in self.entries if target == bed), None)
