"""FHIR R4 read API: resources validate with fhir.resources (R4B models), ward scoping, paging, audit."""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy import select
from web_helpers import World

from areya.db.models import AuditEvent


def _auth(world: World, role: str) -> dict[str, str]:
    if role not in world.tokens:  # nurse2 (covers Surgery only) has no token in the shared world
        from areya.admin import get_user
        from areya.webapp.tokens import create_token

        with world.session() as s:
            world.tokens[role] = create_token(s, get_user(s, role), f"{role}-token")[1]
            s.commit()
    return {"Authorization": f"Bearer {world.tokens[role]}"}


def get(world: World, role: str, path: str, status: int = 200) -> dict[str, Any]:
    response = world.app.test_client().get(path, headers=_auth(world, role))
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    body = response.get_json(force=True)
    if status == 200:
        assert response.mimetype == "application/fhir+json"
        validate(body)
    return body  # type: ignore[no-any-return]


def validate(resource: dict[str, Any]) -> None:
    """Parse with the FHIR models (raises on any invalid element), entries of a Bundle included."""
    model = get_fhir_model_class(resource["resourceType"])
    model.model_validate(resource)
    for entry in resource.get("entry", []):
        validate(entry["resource"])


def test_metadata_is_a_capability_statement(world: World) -> None:
    body = get(world, "nurse", "/fhir/metadata")
    assert body["resourceType"] == "CapabilityStatement"
    assert {r["type"] for r in body["rest"][0]["resource"]} == {"Patient", "Encounter", "Location", "Observation",
                                                                 "Flag"}
    assert world.app.test_client().get("/fhir/metadata").status_code == 401


def test_patient_read_and_search_are_ward_scoped(world: World) -> None:
    pid, other = world.ids["patient_id"], world.ids["other_patient_id"]
    patient = get(world, "nurse", f"/fhir/Patient/{pid}")
    assert patient["identifier"][0]["value"] == "MRN001" and patient["name"][0]["text"] == "Alice Example"
    get(world, "nurse", f"/fhir/Patient/{other}", status=403)  # Surgery patient, ICU nurse
    found = get(world, "nurse", "/fhir/Patient")
    ids = {e["resource"]["id"] for e in found["entry"]}
    assert str(pid) in ids and str(other) not in ids
    assert {e["resource"]["id"] for e in get(world, "admin", "/fhir/Patient")["entry"]} >= {str(pid), str(other)}
    by_mrn = get(world, "nurse", "/fhir/Patient?identifier=urn:areya:mrn|MRN001")
    assert by_mrn["total"] == 1 and by_mrn["entry"][0]["resource"]["id"] == str(pid)
    assert get(world, "nurse", "/fhir/Patient?identifier=MRN003")["total"] == 0  # exists, but not in ICU


def test_encounter_and_location_of_the_current_bed(world: World) -> None:
    pid = world.ids["patient_id"]
    encounter = get(world, "doctor", f"/fhir/Encounter/{pid}")
    assert encounter["status"] == "in-progress"
    assert encounter["location"][-1]["location"]["reference"] == f"Location/bed-{world.ids['bed_id']}"
    assert encounter["location"][-1]["status"] == "active"
    bundle = get(world, "doctor", f"/fhir/Encounter?patient=Patient/{pid}")
    assert bundle["total"] == 1
    bed = get(world, "doctor", f"/fhir/Location/bed-{world.ids['bed_id']}")
    assert bed["name"] == "ICU/1" and bed["partOf"]["reference"] == f"Location/ward-{world.ids['ward_id']}"
    assert get(world, "doctor", f"/fhir/Location/ward-{world.ids['ward_id']}")["name"] == "ICU"
    get(world, "doctor", f"/fhir/Location/bed-{world.ids['other_bed_id']}", status=403)
    get(world, "doctor", f"/fhir/Encounter?patient={world.ids['other_patient_id']}", status=403)
    get(world, "doctor", "/fhir/Location/nonsense", status=404)


def test_observations_are_minute_summaries_paged(world: World) -> None:
    pid = world.ids["patient_id"]
    first = get(world, "nurse", f"/fhir/Observation?patient={pid}&_count=15")
    assert first["total"] == 40  # one observation a minute for 40 minutes
    assert len(first["entry"]) == 15
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert "previous" not in links and "_offset=15" in links["next"] and f"patient={pid}" in links["next"]
    seen = [e["resource"]["id"] for e in first["entry"]]
    url = links["next"]
    while url:
        page = get(world, "nurse", url.split("://", 1)[1].split("/", 1)[1].join(["/", ""]))
        seen += [e["resource"]["id"] for e in page["entry"]]
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    assert len(seen) == len(set(seen)) == 40
    obs = first["entry"][0]["resource"]
    assert obs["subject"]["reference"] == f"Patient/{pid}"
    assert obs["valueCodeableConcept"]["coding"][0]["code"] in ("sad", "angry")
    probabilities = {c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"] for c in obs["component"]
                     if "valueQuantity" in c}
    assert abs(sum(probabilities.values()) - 1.0) < 1e-3
    narrow = get(world, "nurse", f"/fhir/Observation?patient={pid}&date=ge{_iso_minutes_ago(10)}")
    assert 9 <= narrow["total"] <= 11
    get(world, "nurse2", f"/fhir/Observation?patient={pid}", status=403)  # Surgery nurse, ICU patient
    bad = get(world, "nurse", "/fhir/Observation", status=400)
    assert bad["resourceType"] == "OperationOutcome"
    assert get(world, "nurse", f"/fhir/Observation?patient={pid}&_count=0", status=400)["resourceType"] \
        == "OperationOutcome"


def _iso_minutes_ago(minutes: int) -> str:
    from datetime import timedelta

    from areya.db.types import utcnow

    return (utcnow() - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(("role", "sees_own", "sees_other"), [("nurse", True, False), ("nurse2", False, True),
                                                               ("admin", True, True)])
def test_flags_are_alerts_scoped_by_ward(world: World, role: str, sees_own: bool, sees_other: bool) -> None:
    ids = {e["resource"]["id"] for e in get(world, role, "/fhir/Flag").get("entry", [])}
    assert (str(world.ids["alert_id"]) in ids) is sees_own
    assert (str(world.ids["other_alert_id"]) in ids) is sees_other
    flag = get(world, "admin", f"/fhir/Flag/{world.ids['alert_id']}")
    assert flag["status"] == "active" and flag["subject"]["reference"] == f"Patient/{world.ids['patient_id']}"


def test_fhir_reads_are_audited_with_the_token(world: World) -> None:
    get(world, "doctor", f"/fhir/Patient/{world.ids['patient_id']}")
    with world.session() as s:
        row = s.scalars(select(AuditEvent).where(AuditEvent.action == "fhir.patient.view")).one()
    assert row.patient_id == world.ids["patient_id"] and row.detail["by"] == "api:doctor"
