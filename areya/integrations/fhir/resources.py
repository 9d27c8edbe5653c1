"""Areya rows -> FHIR R4 resources (plain JSON dicts; the tests validate them with ``fhir.resources``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from areya.db.models import LABELS4, Alert, Bed, BedAssignment, Observation, ObservationMinute, Patient, Ward

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


def encounter_resource(patient: Patient, stays: Iterable[BedAssignment]) -> dict[str, Any]:
    """The patient's current (or last) admission, its bed stays as locations."""
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": str(patient.id),
        "status": "in-progress" if patient.status == "admitted" else "finished",
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "IMP",
            "display": "inpatient encounter",
        },
        "subject": {"reference": f"Patient/{patient.id}", "display": patient.display_name},
        "period": {
            key: value
            for key, value in (("start", iso(patient.admitted_at)), ("end", iso(patient.discharged_at)))
            if value
        },
    }
    locations = []
    for stay in stays:
        if stay.start_at < patient.admitted_at:
            continue  # an earlier admission's bed
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
    ("Observation", "patient"): "Required: Patient/{id} (or {id}) of a patient in a ward you cover.",
    ("Observation", "date"): "[ge|gt|le|lt]instant, repeatable; default the last 24 h; at most 7 days.",
    ("Observation", "code"): (
        f"{CODE_SYSTEM}|{MINUTE_CODE} (the default when code is absent): one Observation "
        f"per patient-minute (label counts and mean probabilities); {CODE_SYSTEM}|{RAW_CODE}: "
        "one Observation per stored observation (one face in one frame), oldest first. "
        "The system may be left out; one code per search."
    ),
    ("Observation", "_offset"): "Paging: the index of the first match to return (the Bundle's links carry it).",
}


def capability_statement(base_url: str, now: datetime) -> dict[str, Any]:
    def resource(kind: str, params: list[tuple[str, str]], read: bool = True) -> dict[str, Any]:
        interactions = ([{"code": "read"}] if read else []) + ([{"code": "search-type"}] if params else [])
        out: dict[str, Any] = {"type": kind, "interaction": interactions}
        if params:
            out["searchParam"] = [
                {"name": name, "type": kind_}
                | ({"documentation": SEARCH_DOCS[(kind, name)]} if (kind, name) in SEARCH_DOCS else {})
                for name, kind_ in params
            ]
        return out

    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": now.isoformat(),
        "kind": "instance",
        "software": {"name": "Areya"},
        "implementation": {"description": "Areya patient monitoring (read-only)", "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "security": {"description": "Authorization: Bearer <Areya API token>; ward scoping as in the API"},
                "resource": [
                    resource("Patient", [("identifier", "token"), ("_count", "number")]),
                    resource("Encounter", [("patient", "reference")]),
                    resource("Location", [], read=True),
                    resource(
                        "Observation",
                        [
                            ("patient", "reference"),
                            ("date", "date"),
                            ("code", "token"),
                            ("_count", "number"),
                            ("_offset", "number"),
                        ],
                        read=False,
                    ),
                    resource("Flag", [("patient", "reference"), ("_count", "number")]),
                ],
            }
        ],
    }
