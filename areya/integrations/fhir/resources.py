"""Areya rows -> FHIR R4 resources (plain JSON dicts; the tests validate them with ``fhir.resources``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from areya.db.models import (
    LABELS4,
    Alert,
    Bed,
    BedAssignment,
    Encounter,
    Observation,
    ObservationMinute,
    Patient,
    Ward,
)

FHIR_VERSION = "4.0.1"
MRN_SYSTEM = "urn:areya:mrn"  # the default of the mrn_system setting
EMOTION_SYSTEM = "urn:areya:emotion4"
ALERT_SYSTEM = "urn:areya:alert-kind"
EMOTION7_SYSTEM = "urn:areya:emotion7"
CODE_SYSTEM = "urn:areya:observation"
MINUTE_CODE = "emotion-minute"  # Observation.code of a per-minute summary (the default of a search)
RAW_CODE = "emotion-face"  # Observation.code of one stored observation (one face in one frame)
MINUTE = timedelta(minutes=1)
_SURVEY = [
    {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": "survey",
                "display": "Survey",
            }
        ]
    }
]


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def patient_resource(patient: Patient, mrn_system: str = MRN_SYSTEM) -> dict[str, Any]:
    """The FHIR Patient; its MRN identifier in ``mrn_system`` (the ``mrn_system`` setting)."""
    return {
        "resourceType": "Patient",
        "id": str(patient.id),
        "identifier": [{"use": "usual", "system": mrn_system, "value": patient.mrn}],
        "active": patient.status == "admitted",
        "name": [{"text": patient.display_name}],
    }


def ward_location(ward: Ward) -> dict[str, Any]:
    return {
        "resourceType": "Location",
        "id": f"ward-{ward.id}",
        "status": "active",
        "name": ward.name,
        "mode": "instance",
        "physicalType": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/location-physical-type",
                    "code": "wa",
                    "display": "Ward",
                }
            ]
        },
    }


def bed_location(bed: Bed, hl7_location: str | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Location",
        "id": f"bed-{bed.id}",
        "status": "active",
        "name": f"{bed.ward.name}/{bed.label}",
        "mode": "instance",
        "physicalType": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/location-physical-type",
                    "code": "bd",
                    "display": "Bed",
                }
            ]
        },
        "partOf": {"reference": f"Location/ward-{bed.ward_id}", "display": bed.ward.name},
    }
    if hl7_location:  # the PV1-3 point of care^room^bed of the ADT feed
        resource["identifier"] = [{"system": "urn:areya:hl7-pv1-3", "value": hl7_location}]
    return resource


ENCOUNTER_CLASS_DISPLAY = {"IMP": "inpatient encounter", "AMB": "ambulatory", "EMER": "emergency"}
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def _coding_class(code: str) -> dict[str, str]:
    return {"system": ACT_CODE_SYSTEM, "code": code, "display": ENCOUNTER_CLASS_DISPLAY.get(code, code)}


def _period(start: str | None, end: str | None) -> dict[str, str]:
    return {key: value for key, value in (("start", start), ("end", end)) if value}


def encounter_resource(encounter: Encounter, patient: Patient, stays: Iterable[BedAssignment]) -> dict[str, Any]:
    """One hospital stay: its own id, status and class with their histories, period, and the bed stays in it as
    locations."""
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": str(encounter.id),
        "status": encounter.status,
        "statusHistory": [
            {"status": item["status"], "period": _period(item.get("start"), item.get("end"))}
            for item in encounter.status_history or []
        ],
        "class": _coding_class(encounter.class_code),
        "subject": {"reference": f"Patient/{patient.id}", "display": patient.display_name},
        "period": _period(iso(encounter.start_at), iso(encounter.end_at)),
    }
    classes = encounter.class_history or []
    if len(classes) > 1:
        resource["classHistory"] = [
            {"class": _coding_class(item["class"]), "period": _period(item.get("start"), item.get("end"))}
            for item in classes
        ]
    if not resource["statusHistory"]:
        del resource["statusHistory"]
    locations = []
    for stay in stays:
        period = {"start": iso(stay.start_at)}
        if stay.end_at is not None:
            period["end"] = iso(stay.end_at)
        locations.append(
            {
                "location": {
                    "reference": f"Location/bed-{stay.bed_id}",
                    "display": f"{stay.bed.ward.name}/{stay.bed.label}",
                },
                "status": "active" if stay.end_at is None else "completed",
                "period": period,
            }
        )
    if locations:
        resource["location"] = locations
    return resource


@dataclass
class MinuteSummary:
    """One patient-minute of emotion observations (from raw rows or the retention rollup)."""

    patient_id: int
    minute: datetime
    counts: Counter[str] = field(default_factory=Counter)
    prob_sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(LABELS4, 0.0))

    @property
    def n(self) -> int:
        return sum(self.counts.values())

    @classmethod
    def from_rollup(cls, row: ObservationMinute) -> MinuteSummary:
        counts = Counter({"angry": row.n_angry, "happy": row.n_happy, "relaxed": row.n_relaxed, "sad": row.n_sad})
        means = {
            "angry": row.mean_p_angry,
            "happy": row.mean_p_happy,
            "relaxed": row.mean_p_relaxed,
            "sad": row.mean_p_sad,
        }
        return cls(row.patient_id, row.minute, counts, {k: v * row.n_obs for k, v in means.items()})


def minute_summaries(raw: Iterable[Observation], rollups: Iterable[ObservationMinute]) -> list[MinuteSummary]:
    """Raw observations bucketed by minute, plus rolled-up minutes that have no raw rows left; oldest first."""
    buckets: dict[datetime, MinuteSummary] = {}
    for obs in raw:
        minute = obs.captured_at.replace(second=0, microsecond=0)
        summary = buckets.setdefault(minute, MinuteSummary(obs.patient_id, minute))
        summary.counts[obs.label4] += 1
        for label, p in zip(LABELS4, (obs.p_angry, obs.p_happy, obs.p_relaxed, obs.p_sad), strict=True):
            summary.prob_sums[label] += p
    for row in rollups:
        buckets.setdefault(row.minute, MinuteSummary.from_rollup(row))
    return [buckets[minute] for minute in sorted(buckets)]


def aggregated_summaries(
    patient_id: int, rows: Iterable[Any], rollups: Iterable[ObservationMinute]
) -> list[MinuteSummary]:
    """Minutes the database already summed (``rows`` of minute, count per label in LABELS4 order, probability sum
    per label in LABELS4 order), plus rolled-up minutes with no raw rows left; oldest first."""
    buckets: dict[datetime, MinuteSummary] = {}
    for row in rows:
        minute, counts, sums = row[0], row[1:5], row[5:9]
        if isinstance(minute, str):  # SQLite: 'YYYY-MM-DD HH:MM' of the stored UTC text
            minute = datetime.fromisoformat(minute).replace(tzinfo=UTC)
        summary = MinuteSummary(
            patient_id, minute, Counter(dict(zip(LABELS4, (int(c or 0) for c in counts), strict=True)))
        )
        summary.prob_sums = {label: float(v or 0.0) for label, v in zip(LABELS4, sums, strict=True)}
        buckets[minute] = summary
    for rollup in rollups:
        buckets.setdefault(rollup.minute, MinuteSummary.from_rollup(rollup))
    return [buckets[minute] for minute in sorted(buckets)]


def _probability_components(probabilities: Iterable[float], text: str) -> list[dict[str, Any]]:
    return [
        {
            "code": {"coding": [{"system": EMOTION_SYSTEM, "code": label}], "text": f"{text}({label})"},
            "valueQuantity": {"value": round(p, 4), "unit": "probability"},
        }
        for label, p in zip(LABELS4, probabilities, strict=True)
    ]


def minute_observation(summary: MinuteSummary) -> dict[str, Any]:
    n = summary.n
    top = max(LABELS4, key=lambda label: (summary.counts[label], summary.prob_sums[label]))
    means = [summary.prob_sums[label] / n if n else 0.0 for label in LABELS4]
    components = _probability_components(means, "mean P") + [
        {
            "code": {"coding": [{"system": CODE_SYSTEM, "code": "face-count"}], "text": "faces classified"},
            "valueInteger": n,
        }
    ]
    return {
        "resourceType": "Observation",
        "id": f"m{summary.patient_id}-{int(summary.minute.timestamp()) // 60}",
        "status": "final",
        "category": _SURVEY,
        "code": {
            "coding": [
                {
                    "system": CODE_SYSTEM,
                    "code": MINUTE_CODE,
                    "display": "Facial expression (4-class), one-minute summary",
                }
            ]
        },
        "subject": {"reference": f"Patient/{summary.patient_id}"},
        "effectivePeriod": {"start": iso(summary.minute), "end": iso(summary.minute + MINUTE)},
        "valueCodeableConcept": {"coding": [{"system": EMOTION_SYSTEM, "code": top}], "text": top},
        "component": components,
    }


def raw_observation(obs: Observation) -> dict[str, Any]:
    """One stored observation (one classified face of one frame), as the worker wrote it."""
    components = _probability_components((obs.p_angry, obs.p_happy, obs.p_relaxed, obs.p_sad), "P") + [
        {
            "code": {"coding": [{"system": CODE_SYSTEM, "code": "confidence4"}], "text": "confidence of the label"},
            "valueQuantity": {"value": round(obs.confidence4, 4), "unit": "probability"},
        },
        {
            "code": {"coding": [{"system": CODE_SYSTEM, "code": "label7"}], "text": "7-class label"},
            "valueCodeableConcept": {"coding": [{"system": EMOTION7_SYSTEM, "code": obs.label7}], "text": obs.label7},
        },
    ]
    return {
        "resourceType": "Observation",
        "id": f"face-{obs.id}",
        "status": "final",
        "category": _SURVEY,
        "code": {
            "coding": [
                {
                    "system": CODE_SYSTEM,
                    "code": RAW_CODE,
                    "display": "Facial expression (4-class) of one face in one frame",
                }
            ]
        },
        "subject": {"reference": f"Patient/{obs.patient_id}"},
        "effectiveDateTime": iso(obs.captured_at),
        "issued": iso(obs.created_at),
        "valueCodeableConcept": {"coding": [{"system": EMOTION_SYSTEM, "code": obs.label4}], "text": obs.label4},
        "method": {"text": f"Areya face classifier, model {obs.model_version}"},
        "component": components,
    }


def flag_resource(alert: Alert) -> dict[str, Any]:
    period = {"start": iso(alert.opened_at)}
    if alert.resolved_at is not None:
        period["end"] = iso(alert.resolved_at)
    subject = f"Patient/{alert.patient_id}" if alert.patient_id is not None else f"Location/ward-{alert.ward_id}"
    return {
        "resourceType": "Flag",
        "id": str(alert.id),
        "status": "inactive" if alert.state == "resolved" else "active",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/flag-category",
                        "code": "clinical" if alert.patient_id is not None else "admin",
                    }
                ]
            }
        ],
        "code": {
            "coding": [{"system": ALERT_SYSTEM, "code": alert.kind}],
            "text": f"{alert.kind.replace('_', ' ')} ({alert.state})",
        },
        "subject": {"reference": subject},
        "period": period,
    }


SEARCH_DOCS = {
    ("Patient", "identifier"): "[system|]value: the MRN in the mrn_system setting's system; another system matches "
    "nothing.",
    ("Patient", "name"): "String search: the name or one of its words starts with the value, case-insensitive.",
    ("Encounter", "patient"): "Required: Patient/{id} (or {id}); one encounter per hospital stay, newest first.",
    ("Observation", "patient"): "Required: Patient/{id} (or {id}); a patient outside your wards matches nothing.",
    ("Observation", "date"): "[eq|ne|lt|le|gt|ge|sa|eb]YYYY[-MM[-DD[Thh:mm[:ss][Z|+hh:mm]]]], repeatable (all "
    "must hold); a value is the range of its precision (UTC unless an offset is given), eq the default; no date: "
    "every observation.",
    ("Observation", "code"): (
        f"{CODE_SYSTEM}|{MINUTE_CODE} (the default when code is absent): one Observation "
        f"per patient-minute (label counts and mean probabilities); {CODE_SYSTEM}|{RAW_CODE}: "
        "one Observation per stored observation (one face in one frame), oldest first. "
        "The system may be left out; one code per search."
    ),
    ("Observation", "_cursor"): "Paging: opaque, from the Bundle's next link.",
}
COUNT_DOC = "Page size, default 50; a larger value is clamped to 200; 0: the total only."
OFFSET_DOC = "Paging: the index of the first match to return (the Bundle's links carry it)."
UNKNOWN_PARAMS_DOC = (
    "Unknown search parameters are ignored and reported in an OperationOutcome entry (search.mode = outcome); "
    "with the header 'Prefer: handling=strict' they are refused (400)."
)


def _param_doc(kind: str, name: str) -> str | None:
    return {"_count": COUNT_DOC, "_offset": OFFSET_DOC}.get(name) or SEARCH_DOCS.get((kind, name))


def capability_statement(base_url: str, now: datetime) -> dict[str, Any]:
    def resource(kind: str, params: list[tuple[str, str]], read: bool = True) -> dict[str, Any]:
        interactions = ([{"code": "read"}] if read else []) + ([{"code": "search-type"}] if params else [])
        out: dict[str, Any] = {"type": kind, "interaction": interactions}
        if params:
            out["searchParam"] = [
                {"name": name, "type": kind_} | ({"documentation": doc} if (doc := _param_doc(kind, name)) else {})
                for name, kind_ in params
            ]
        if read and kind in ("Patient", "Encounter", "Flag"):
            out["versioning"] = "versioned"
        return out

    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": now.isoformat(),
        "kind": "instance",
        "software": {"name": "Areya"},
        "implementation": {"description": "Areya patient monitoring (read-only)", "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": ["json", "application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "documentation": UNKNOWN_PARAMS_DOC,
                "security": {
                    "description": "Authorization: Bearer <Areya API token>; ward scoping as in the API (an id "
                    "outside your wards is answered 404). /metadata is public."
                },
                "resource": [
                    resource(
                        "Patient",
                        [("identifier", "token"), ("name", "string"), ("_count", "number"), ("_offset", "number")],
                    ),
                    resource("Encounter", [("patient", "reference"), ("_count", "number"), ("_offset", "number")]),
                    resource("Location", [], read=True),
                    resource(
                        "Observation",
                        [
                            ("patient", "reference"),
                            ("date", "date"),
                            ("code", "token"),
                            ("_count", "number"),
                            ("_cursor", "string"),
                        ],
                        read=False,
                    ),
                    resource("Flag", [("patient", "reference"), ("_count", "number"), ("_offset", "number")]),
                ],
            }
        ],
    }
