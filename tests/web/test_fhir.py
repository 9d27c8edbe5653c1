"""FHIR R4 read API: resources validate with fhir.resources (R4B models), ward scoping, paging, audit."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy import func, select
from web_helpers import World, add_observation, login

from areya.db.models import AuditEvent, Observation
from areya.db.types import utcnow

RAW = "urn:areya:observation|emotion-face"


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
    assert {r["type"] for r in body["rest"][0]["resource"]} == {
        "Patient",
        "Encounter",
        "Location",
        "Observation",
        "Flag",
    }
    anonymous = world.app.test_client().get("/fhir/metadata")  # clients read it before they authenticate
    assert anonymous.status_code == 200 and anonymous.get_json(force=True)["resourceType"] == "CapabilityStatement"
    assert anonymous.headers["Content-Type"] == "application/fhir+json; charset=utf-8"
    assert world.app.test_client().get("/fhir/Patient").status_code == 401  # everything else needs a login


def test_patient_read_and_search_are_ward_scoped(world: World) -> None:
    pid, other = world.ids["patient_id"], world.ids["other_patient_id"]
    patient = get(world, "nurse", f"/fhir/Patient/{pid}")
    assert patient["identifier"][0]["value"] == "MRN001" and patient["name"][0]["text"] == "Alice Example"
    get(world, "nurse", f"/fhir/Patient/{other}", status=404)  # Surgery patient, ICU nurse: as if it did not exist
    found = get(world, "nurse", "/fhir/Patient")
    ids = {e["resource"]["id"] for e in found["entry"]}
    assert str(pid) in ids and str(other) not in ids
    assert {e["resource"]["id"] for e in get(world, "admin", "/fhir/Patient")["entry"]} >= {str(pid), str(other)}
    by_mrn = get(world, "nurse", "/fhir/Patient?identifier=urn:areya:mrn|MRN001")
    assert by_mrn["total"] == 1 and by_mrn["entry"][0]["resource"]["id"] == str(pid)
    assert get(world, "nurse", "/fhir/Patient?identifier=MRN003")["total"] == 0  # exists, but not in ICU


def test_the_hospitals_mrn_system_names_the_identifier_and_is_the_one_searched(world: World) -> None:
    from areya.webapp.services import EXTENSION

    web = world.app.extensions[EXTENSION]
    configured = web.settings
    web.settings = configured.replace(mrn_system="urn:oid:2.16.840.1.113883.3.999.1")
    try:
        patient = get(world, "nurse", f"/fhir/Patient/{world.ids['patient_id']}")
        assert patient["identifier"][0]["system"] == "urn:oid:2.16.840.1.113883.3.999.1"
        found = get(world, "nurse", "/fhir/Patient?identifier=urn:oid:2.16.840.1.113883.3.999.1|MRN001")
        assert found["total"] == 1
        # another system's identifier is not an error: no patient has it (R4 token search)
        assert get(world, "nurse", "/fhir/Patient?identifier=urn:areya:mrn|MRN001")["total"] == 0
    finally:
        web.settings = configured


def test_encounter_and_location_of_the_current_bed(world: World) -> None:
    pid = world.ids["patient_id"]
    bundle = get(world, "doctor", f"/fhir/Encounter?patient=Patient/{pid}")
    assert bundle["total"] == 1
    encounter = get(world, "doctor", f"/fhir/Encounter/{bundle['entry'][0]['resource']['id']}")
    assert encounter["status"] == "in-progress" and encounter["class"]["code"] == "IMP"
    assert encounter["location"][-1]["location"]["reference"] == f"Location/bed-{world.ids['bed_id']}"
    assert encounter["location"][-1]["status"] == "active"
    bed = get(world, "doctor", f"/fhir/Location/bed-{world.ids['bed_id']}")
    assert bed["name"] == "ICU/1" and bed["partOf"]["reference"] == f"Location/ward-{world.ids['ward_id']}"
    assert get(world, "doctor", f"/fhir/Location/ward-{world.ids['ward_id']}")["name"] == "ICU"
    get(world, "doctor", f"/fhir/Location/bed-{world.ids['other_bed_id']}", status=404)
    assert get(world, "doctor", f"/fhir/Encounter?patient={world.ids['other_patient_id']}")["total"] == 0
    get(world, "doctor", "/fhir/Location/nonsense", status=404)


def test_observations_are_minute_summaries_paged(world: World) -> None:
    pid = world.ids["patient_id"]
    first = get(world, "nurse", f"/fhir/Observation?patient={pid}&_count=15")
    assert first["total"] == 40  # one observation a minute for 40 minutes
    assert len(first["entry"]) == 15
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert "previous" not in links and "_cursor=" in links["next"] and f"patient={pid}" in links["next"]
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
    probabilities = {
        c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"] for c in obs["component"] if "valueQuantity" in c
    }
    assert abs(sum(probabilities.values()) - 1.0) < 1e-3
    with world.session() as s:  # 10 minutes back from the newest row (the hospital may be older than 10 min)
        newest = s.scalars(
            select(Observation.captured_at)
            .where(Observation.patient_id == pid)
            .order_by(Observation.captured_at.desc())
            .limit(1)
        ).one()
    since = (newest.replace(tzinfo=newest.tzinfo or UTC) - timedelta(minutes=9, seconds=30)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    narrow = get(world, "nurse", f"/fhir/Observation?patient={pid}&date=ge{since}")
    assert 9 <= narrow["total"] <= 11
    hidden = get(world, "nurse2", f"/fhir/Observation?patient={pid}")  # Surgery nurse, ICU patient: no match
    assert hidden["total"] == 0 and hidden["entry"] == []
    bad = get(world, "nurse", "/fhir/Observation", status=400)
    assert bad["resourceType"] == "OperationOutcome"
    summary = get(world, "nurse", f"/fhir/Observation?patient={pid}&_count=0")  # R4: the total only
    assert summary["total"] == 40 and summary["entry"] == []


def _iso_minutes_ago(minutes: int) -> str:
    return (utcnow() - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _walk(world: World, role: str, url: str) -> list[dict[str, Any]]:
    """Every page of a search, following the Bundles' next links (each page validated); the Bundles in order."""
    pages = []
    while url:
        pages.append(get(world, role, url))
        link = next((x["url"] for x in pages[-1]["link"] if x["relation"] == "next"), None)
        url = link.split("://", 1)[1].split("/", 1)[1].join(["/", ""]) if link else ""
    return pages


def test_raw_observations_on_request_one_per_stored_row(world: World) -> None:
    pid, other = world.ids["patient_id"], world.ids["other_patient_id"]
    with world.session() as s:  # three more faces in the last minute, and some for the Surgery patient
        now = utcnow()
        for k in range(3):
            add_observation(s, pid, world.ids["bed_id"], "happy", now - timedelta(seconds=20 + k), label7="surprise")
            add_observation(s, other, world.ids["other_bed_id"], "sad", now - timedelta(seconds=20 + k))
        s.commit()
        stored = list(
            s.scalars(
                select(Observation)
                .where(Observation.patient_id == pid)
                .order_by(Observation.captured_at, Observation.id)
            )
        )
    assert len(stored) == 43
    pages = _walk(world, "nurse", f"/fhir/Observation?patient={pid}&code={RAW}&_count=10")
    assert [p["total"] for p in pages] == [43] * 5 and [len(p["entry"]) for p in pages] == [10, 10, 10, 10, 3]
    assert {x["relation"] for x in pages[0]["link"]} == {"self", "first", "next"}
    assert {x["relation"] for x in pages[-1]["link"]} == {"self", "first"}
    resources = [e["resource"] for p in pages for e in p["entry"]]
    assert [r["id"] for r in resources] == [f"face-{o.id}" for o in stored]  # each row once, oldest first
    for resource, row in zip(resources, stored, strict=True):
        assert resource["code"]["coding"][0]["code"] == "emotion-face"
        assert resource["subject"]["reference"] == f"Patient/{pid}"
        assert resource["valueCodeableConcept"]["coding"][0]["code"] == row.label4
        assert resource["effectiveDateTime"] == row.captured_at.isoformat()
        probabilities = {
            c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"]
            for c in resource["component"]
            if c["code"]["coding"][0]["system"] == "urn:areya:emotion4"
        }
        assert probabilities == pytest.approx(
            {"angry": row.p_angry, "happy": row.p_happy, "relaxed": row.p_relaxed, "sad": row.p_sad}, abs=1e-4
        )
    assert resources[-1]["component"][-1]["valueCodeableConcept"]["coding"][0]["code"] == "surprise"
    # the system may be left out; without code (or with the minute code) the summaries are answered
    assert get(world, "nurse", f"/fhir/Observation?patient={pid}&code=emotion-face&_count=1")["total"] == 43
    minutes = get(world, "nurse", f"/fhir/Observation?patient={pid}")["total"]
    assert (
        get(world, "nurse", f"/fhir/Observation?patient={pid}&code=urn:areya:observation|emotion-minute")["total"]
        == minutes
        < 43
    )
    # date narrows the rows like it narrows the minutes
    since = _iso_minutes_ago(10)
    with world.session() as s:
        expected = s.scalar(
            select(func.count())
            .select_from(Observation)
            .where(Observation.patient_id == pid, Observation.captured_at >= _parse(since))
        )
    assert get(world, "nurse", f"/fhir/Observation?patient={pid}&code={RAW}&date=ge{since}")["total"] == expected
    # ward scoping: the ICU nurse gets no Surgery rows, the Surgery nurse no ICU rows; the admin sees both
    assert get(world, "nurse", f"/fhir/Observation?patient={other}&code={RAW}")["total"] == 0
    assert get(world, "nurse2", f"/fhir/Observation?patient={pid}&code={RAW}")["total"] == 0
    assert get(world, "nurse2", f"/fhir/Observation?patient={other}&code={RAW}")["total"] == 3
    assert get(world, "admin", f"/fhir/Observation?patient={other}&code={RAW}")["total"] == 3
    # an unknown code, two codes: 400
    for query in ("code=http://loinc.org|8867-4", "code=emotion-face&code=emotion-minute", "code=urn:x|emotion-face"):
        bad = get(world, "nurse", f"/fhir/Observation?patient={pid}&{query}", status=400)
        assert bad["resourceType"] == "OperationOutcome" and "emotion-face" in bad["issue"][0]["diagnostics"]
    with world.session() as s:
        row = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "fhir.observation.search").order_by(AuditEvent.id)
        ).first()
    assert row is not None and row.patient_id == pid and row.detail["code"] == "emotion-face"


def test_metadata_documents_the_observation_code_parameter(world: World) -> None:
    body = get(world, "nurse", "/fhir/metadata")
    observation = next(r for r in body["rest"][0]["resource"] if r["type"] == "Observation")
    params = {p["name"]: p for p in observation["searchParam"]}
    assert params["code"]["type"] == "token" and "emotion-face" in params["code"]["documentation"]
    assert {"patient", "date", "_count", "_cursor"} <= set(params)


def _parse(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def outcome(response: Any, status: int, code: str) -> str:
    """Check an error answer is a valid OperationOutcome of ``code``; its diagnostics."""
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/fhir+json"
    body = response.get_json(force=True)
    validate(body)
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["code"] == code
    assert response.headers["X-Content-Type-Options"] == "nosniff"  # the app's security headers stay
    return str(body["issue"][0]["diagnostics"])


def test_every_error_under_fhir_is_an_operation_outcome(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    ids, client = world.ids, world.app.test_client()
    nurse = _auth(world, "nurse")
    # 401: no token, an unknown token, another scheme (before any FHIR view runs)
    anonymous = client.get("/fhir/Patient")
    assert "login required" in outcome(anonymous, 401, "login")
    assert anonymous.headers["WWW-Authenticate"] == 'Bearer realm="areya"'
    assert "invalid" in outcome(client.get("/fhir/Patient", headers={"Authorization": "Bearer nope"}), 401, "login")
    outcome(client.get(f"/fhir/Patient/{ids['patient_id']}", headers={"Authorization": "Basic eDp5"}), 401, "login")
    outcome(client.get("/fhir/Basic/1", headers={"Authorization": "Bearer nope"}), 401, "login")
    # 404, as for an id that does not exist: an ICU nurse asking for Surgery's patient, alert, bed, ward
    assert f"no Patient {ids['other_patient_id']}" == outcome(
        client.get(f"/fhir/Patient/{ids['other_patient_id']}", headers=nurse), 404, "not-found"
    )
    outcome(client.get(f"/fhir/Flag/{ids['other_alert_id']}", headers=nurse), 404, "not-found")
    outcome(client.get(f"/fhir/Location/bed-{ids['other_bed_id']}", headers=nurse), 404, "not-found")
    # 404: no such patient or location, an id that is not a number, a resource type we do not serve
    assert "no Patient 999999" in outcome(client.get("/fhir/Patient/999999", headers=nurse), 404, "not-found")
    outcome(client.get("/fhir/Location/bed-999999", headers=nurse), 404, "not-found")
    outcome(client.get("/fhir/Patient/abc", headers=nurse), 404, "not-found")
    outcome(client.get("/fhir/Basic/1", headers=nurse), 404, "not-found")
    # 405: the API is read-only (with a token, and with a session and its CSRF token)
    written = client.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=nurse)
    outcome(written, 405, "not-supported")
    assert "GET" in written.headers["Allow"]
    outcome(client.delete(f"/fhir/Patient/{ids['patient_id']}", headers=nurse), 405, "not-supported")
    browser, csrf = login(world.app, "nurse")
    outcome(
        browser.put(f"/fhir/Patient/{ids['patient_id']}", json={}, headers={"X-CSRF-Token": csrf}), 405, "not-supported"
    )
    outcome(browser.post("/fhir/Patient", json={}), 400, "invalid")  # no CSRF token
    # 400 from a search stays what the view said
    assert "_count" in outcome(client.get("/fhir/Patient?_count=abc", headers=nurse), 400, "invalid")
    # 500: an unexpected failure
    from areya.integrations.fhir import resources

    def broken(*args: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(resources, "capability_statement", broken)
    assert "boom" not in outcome(client.get("/fhir/metadata", headers=nurse), 500, "exception")
    assert "boom" not in outcome(client.get("/fhir/metadata"), 500, "exception")
    # the rest of the app keeps its own error bodies
    assert client.get("/api/patients/999999", headers=nurse).mimetype == "application/json"


@pytest.mark.parametrize(
    ("role", "sees_own", "sees_other"), [("nurse", True, False), ("nurse2", False, True), ("admin", True, True)]
)
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
