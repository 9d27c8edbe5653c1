"""PV1-3 (point of care ^ room ^ bed) -> an Areya bed ``WARD/BED``, only through the configured map, never a
guess. A location that is not in the map is, by the ``adt_unknown_location`` policy, a place Areya does not monitor
(``unmonitored``, the default: the emergency department, a general ward, theatre: the patient is known but in no
Areya bed) or an error (``reject``: AE 103)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from areya.integrations.hl7.errors import TABLE_VALUE_NOT_FOUND, error

UNKNOWN_LOCATION_POLICIES = ("unmonitored", "reject")


def location_key(point_of_care: str, room: str, bed: str) -> str:
    return "^".join(part.strip() for part in (point_of_care, room, bed))


@dataclass(frozen=True)
class LocationMap:
    """The ``adt_location_map`` setting: ``"POC^ROOM^BED"`` -> ``"WARD/BED"``."""

    entries: tuple[tuple[str, str], ...] = ()
    unknown: str = "unmonitored"  # adt_unknown_location: "unmonitored" or "reject"

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]], unknown: str = "unmonitored") -> LocationMap:
        if unknown not in UNKNOWN_LOCATION_POLICIES:
            raise ValueError(f"unknown location policy {unknown!r}")
        return cls(tuple(sorted(pairs)), unknown)

    def resolve(self, key: str, where: str = "PV1^1^3") -> str | None:
        """The Areya bed of a PV1-3 location key; None for a location Areya does not monitor (not in the map,
        policy ``unmonitored``); AE 103 for one not in the map with policy ``reject``."""
        for location, bed in self.entries:
            if location == key:
                return bed
        if self.unknown == "unmonitored":
            return None
        raise error(TABLE_VALUE_NOT_FOUND, f"unknown location {key!r}: not in adt_location_map", where)

    def bed_for(self, key: str, where: str = "PV1^1^3") -> str:
        """The Areya bed of a PV1-3 location key (AE 103 if it is not in the map)."""
        for location, bed in self.entries:
            if location == key:
                return bed
        raise error(TABLE_VALUE_NOT_FOUND, f"unknown location {key!r}: not in adt_location_map", where)

    def location_for(self, bed: str) -> str | None:
        """The HL7 location of an Areya bed (for FHIR Location identifiers); None if it is not mapped."""
        return next((location for location, target in self.entries if target == bed), None)
