"""FHIR search and HTTP semantics as R4 says: string and token search, unknown parameters (Prefer: handling),
_count clamped, date prefixes and precision ranges, _format negotiation, charset, ETag / meta.versionId, links from
the configured base URL (never the Host header), keyset pages and a statement time limit."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, text
from test_fhir import _auth, _walk, get, outcome, validate
from web_helpers import World, add_observation

from areya.config import load_settings
from areya.db.models import AuditEvent
from areya.db.statement_timeout import StatementTimeout, statement_timeout

pytestmark = pytest.mark.postgres  # date ranges, LIKE, the statement time limit: each backend its own way
RAW = "urn:areya:observation|emotion-face"
# readings of the ICU patient at known times (the world's own are within the last hour)
TIMES = [
    datetime(2024, 1, 9, 10, 0, 0, tzinfo=UTC),
    datetime(2024, 1, 9, 10, 0, 30, tzinfo=UTC),
    datetime(2024, 1, 9, 10, 1, 0, tzinfo=UTC),
    datetime(2024, 1, 9, 23, 59, 59, tzinfo=UTC),
    datetime(2024, 1, 10, 0, 0, 0, tzinfo=UTC),
    datetime(2024, 2, 1, 12, 0, 0, tzinfo=UTC),
]


def client_get(world: World, path: str, role: str = "nurse", **headers: str) -> Any:
    return world.app.test_client().get(path, headers={**_auth(world, role), **headers})


@pytest.fixture
def dated(world: World) -> World:
    with world.session() as s:
        for at in TIMES:
            add_observation(s, world.ids["patient_id"], world.ids["bed_id"], "sad", at)
        s.commit()
    return world


def times(world: World, query: str) -> list[str]:
    """The effective times of the raw Observations a date search finds (every page), up to 2024-12-31."""
    pid = world.ids["patient_id"]
    pages = _walk(world, "nurse", f"/fhir/Observation?patient={pid}&code={RAW}&date=lt2025-01-01&{query}")
    return [e["resource"]["effectiveDateTime"] for p in pages for e in p["entry"] if e["search"]["mode"] == "match"]


def test_date_prefixes_and_precision_ranges(dated: World) -> None:
    iso = [t.isoformat() for t in TIMES]
    assert times(dated, "date=2024-01-09") == iso[:4]  # a bare day: eq over the whole day
    assert times(dated, "date=eq2024-01-09T10:00") == iso[:2]  # a minute's range
    assert times(dated, "date=eq2024-01-09T10:00:30Z") == [iso[1]]
    assert times(dated, "date=2024-01") == iso[:5]  # a month
    assert times(dated, "date=ne2024-01") == [iso[5]]
    assert times(dated, "date=lt2024-01-09T10:01:00Z") == iso[:2]
    assert times(dated, "date=le2024-01-09T10:01:00Z") == iso[:3]  # the second 10:01:00 is in the range
    assert times(dated, "date=gt2024-01-09") == iso[4:]
    assert times(dated, "date=ge2024-01-10") == iso[4:]
    assert times(dated, "date=sa2024-01-09") == iso[4:] and times(dated, "date=eb2024-01-10") == iso[:4]
    assert times(dated, "date=ge2024-01-09T12:00:00%2B01:00&date=lt2024-01-10") == [iso[3]]  # 11:00 UTC on
    assert times(dated, "date=2024-01-10T01:00%2B01:00") == [iso[4]]  # the offset is applied


@pytest.mark.parametrize(
    "value", ["lt0001-01-01", "le9999-12-31T23:59:59-14:00", "ge9999-12-31T23:59:59-14:00", "lt0001-01-01T00:00+14:00"]
)
def test_extreme_dates_are_answered_not_500(world: World, value: str) -> None:
    pid = world.ids["patient_id"]
    for code in ("", f"&code={RAW}"):
        found = get(world, "nurse", f"/fhir/Observation?patient={pid}{code}&date={value.replace('+', '%2B')}")
        assert found["resourceType"] == "Bundle"
        if value.startswith("lt0001") or value.startswith("ge9999"):
            assert found["total"] == 0


@pytest.mark.parametrize("value", ["2024-13-01", "2024-02-30", "yesterday", "2024-01-09T25:00", "xx2024"])
def test_a_malformed_date_is_a_400_outcome(world: World, value: str) -> None:
    bad = get(world, "nurse", f"/fhir/Observation?patient={world.ids['patient_id']}&date={value}", status=400)
    assert "date must be" in bad["issue"][0]["diagnostics"]


def test_count_is_clamped_and_zero_gives_the_total(world: World) -> None:
    pid = world.ids["patient_id"]
    big = get(world, "nurse", f"/fhir/Observation?patient={pid}&code={RAW}&_count=100000")
    assert "_count=200" in big["link"][0]["url"] and len(big["entry"]) == big["total"] == 40
    zero = get(world, "nurse", f"/fhir/Observation?patient={pid}&code={RAW}&_count=0")
    assert zero["total"] == 40 and zero["entry"] == [] and "next" not in {x["relation"] for x in zero["link"]}
    assert get(world, "nurse", "/fhir/Patient?_count=0")["entry"] == []
    assert len(get(world, "nurse", "/fhir/Patient?_count=99999999999999999")["entry"]) >= 1


def test_name_is_searched_and_identifier_of_another_system_matches_nothing(world: World) -> None:
    pid = str(world.ids["patient_id"])
    for query in ("name=ali", "name=ALICE", "name=Alice%20Ex"):
        found = get(world, "admin", f"/fhir/Patient?{query}")
        assert [e["resource"]["id"] for e in found["entry"]] == [pid], query
        assert query.split("=")[0] + "=" in found["link"][0]["url"]  # the self link shows what was searched
    assert get(world, "admin", "/fhir/Patient?name=exam")["total"] >= 2  # a later word of the name
    assert get(world, "admin", "/fhir/Patient?name=lice")["total"] == 0  # starts-with, not contains
    assert get(world, "admin", "/fhir/Patient?name=%25")["total"] == 0  # LIKE wildcards are literal
    assert get(world, "nurse", "/fhir/Patient?identifier=http://other.example/ids|MRN001")["total"] == 0
    assert get(world, "nurse", "/fhir/Patient?identifier=|MRN001")["total"] == 1


def test_unknown_parameters_reported_when_lenient_refused_when_strict(world: World) -> None:
    lenient = get(world, "nurse", "/fhir/Patient?birthdate=1950&_sort=name")
    outcomes = [e for e in lenient["entry"] if e["search"]["mode"] == "outcome"]
    assert len(outcomes) == 1
    issues = outcomes[0]["resource"]["issue"]
    assert {i["diagnostics"] for i in issues} == {
        "search parameter 'birthdate' ignored",
        "search parameter '_sort' ignored",
    }
    assert all(i["severity"] == "warning" for i in issues)
    assert "birthdate" not in lenient["link"][0]["url"]  # the self link shows what was searched
    assert lenient["total"] == sum(1 for e in lenient["entry"] if e["search"]["mode"] == "match")
    strict = client_get(world, "/fhir/Patient?birthdate=1950", Prefer="handling=strict")
    assert "birthdate" in outcome(strict, 400, "invalid")
    ok = client_get(world, "/fhir/Patient?name=alice", Prefer="handling=strict")
    assert ok.status_code == 200


def test_format_negotiation_and_charset(world: World) -> None:
    path = f"/fhir/Patient/{world.ids['patient_id']}"
    for query, accept in (("?_format=xml", ""), ("?_format=application/fhir%2Bxml", ""), ("", "application/fhir+xml")):
        refused = client_get(world, path + query, **({"Accept": accept} if accept else {}))
        assert "json" in outcome(refused, 406, "not-supported").lower()
    assert world.app.test_client().get("/fhir/metadata?_format=xml").status_code == 406
    for query, accept in (
        ("?_format=json", ""),
        ("?_format=application/fhir%2Bjson", ""),
        ("", "application/fhir+json"),
        ("", "application/json"),
        ("", "*/*"),
        ("", "text/html,application/xhtml+xml,*/*;q=0.8"),
    ):
        ok = client_get(world, path + query, **({"Accept": accept} if accept else {}))
        assert ok.status_code == 200, (query, accept)
        assert ok.headers["Content-Type"] == "application/fhir+json; charset=utf-8"


def test_reads_carry_etag_and_version(world: World) -> None:
    from areya.admin.patients import rename_patient

    pid = world.ids["patient_id"]
    first = client_get(world, f"/fhir/Patient/{pid}")
    body = first.get_json(force=True)
    validate(body)
    assert first.headers["ETag"] == f'W/"{body["meta"]["versionId"]}"' and "lastUpdated" in body["meta"]
    with world.session() as s:
        rename_patient(s, "MRN001", "Alice Renamed")
        s.commit()
    second = client_get(world, f"/fhir/Patient/{pid}").get_json(force=True)
    assert int(second["meta"]["versionId"]) == int(body["meta"]["versionId"]) + 1
    encounter_id = get(world, "nurse", f"/fhir/Encounter?patient={pid}")["entry"][0]["resource"]["id"]
    read = client_get(world, f"/fhir/Encounter/{encounter_id}")
    assert read.headers["ETag"] == 'W/"1"' and read.get_json(force=True)["meta"]["versionId"] == "1"
    flag = client_get(world, f"/fhir/Flag/{world.ids['alert_id']}", role="admin")
    assert flag.headers["ETag"].startswith('W/"') and "versionId" in flag.get_json(force=True)["meta"]


def test_out_of_scope_ids_are_404_and_audited(world: World) -> None:
    other = world.ids["other_patient_id"]
    hidden = client_get(world, f"/fhir/Patient/{other}")
    missing = client_get(world, "/fhir/Patient/999999")
    assert hidden.status_code == missing.status_code == 404
    with world.session() as s:
        rows = list(s.scalars(select(AuditEvent).where(AuditEvent.action == "access.denied")))
    assert [r.target for r in rows] == [f"/fhir/Patient/{other}"] and rows[0].detail["status"] == 404


def test_links_come_from_the_configured_base_url_never_the_host_header(world: World) -> None:
    from areya.webapp.services import EXTENSION

    evil = client_get(world, "/fhir/Patient", Host="evil.example")
    body = evil.get_json(force=True)
    urls = [x["url"] for x in body["link"]] + [e["fullUrl"] for e in body["entry"] if "fullUrl" in e]
    assert urls and not any("evil.example" in u for u in urls)
    assert all(u.startswith("http://127.0.0.1:") for u in urls)  # derived from web_host / web_port
    web = world.app.extensions[EXTENSION]
    configured = web.settings
    web.settings = configured.replace(fhir_base_url="https://areya.hospital.example/fhir")
    try:
        body = client_get(world, "/fhir/Patient", Host="evil.example").get_json(force=True)
        assert body["link"][0]["url"].startswith("https://areya.hospital.example/fhir/Patient?")
        assert body["entry"][0]["fullUrl"].startswith("https://areya.hospital.example/fhir/Patient/")
        meta = world.app.test_client().get("/fhir/metadata").get_json(force=True)
        assert meta["implementation"]["url"] == "https://areya.hospital.example/fhir"
    finally:
        web.settings = configured


@pytest.mark.parametrize(
    "value", ["areya.example/fhir", "ftp://areya.example/fhir", "https://u:p@areya.example/fhir", "https://a/?x=1"]
)
def test_fhir_base_url_is_validated(value: str) -> None:
    with pytest.raises(ValueError, match="AREYA_FHIR_BASE_URL"):
        load_settings(env={"AREYA_FHIR_BASE_URL": value})
    assert (
        load_settings(env={"AREYA_FHIR_BASE_URL": "https://a.example/fhir/"}).fhir_base_url == "https://a.example/fhir"
    )


def test_a_bad_cursor_is_a_400_and_pages_are_keyset(world: World) -> None:
    pid = world.ids["patient_id"]
    for cursor in ("abc", "1.2.3", "99999999999999999999999"):
        get(world, "nurse", f"/fhir/Observation?patient={pid}&code={RAW}&_cursor={cursor}", status=400)
    pages = _walk(world, "nurse", f"/fhir/Observation?patient={pid}&_count=7")
    minutes = [e["resource"]["id"] for p in pages for e in p["entry"]]
    assert len(minutes) == len(set(minutes)) == 40 and all("_cursor" in p["link"][0]["url"] for p in pages[1:])


def test_statement_timeout_cancels_a_long_statement(world: World) -> None:
    """A statement running past the limit is cancelled on either backend (a recursive count to 10^9)."""
    endless = text(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000) SELECT count(*) FROM n"
    )
    with world.session() as s:
        with pytest.raises(StatementTimeout), statement_timeout(s, 0.2):
            s.execute(endless)
        assert s.execute(text("SELECT 1")).scalar() == 1  # the session goes on; the limit is gone


def test_a_search_past_the_statement_limit_is_a_503_outcome(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A page whose statements run past the limit is cancelled and answered 503 too-costly (here a limit of 0 s,
    looked at on every step on SQLite; PostgreSQL's least limit is 1 ms, which these small pages may beat)."""
    if world.engine.dialect.name != "sqlite":
        pytest.skip("a 1 ms PostgreSQL limit does not reliably cancel a small page")
    from areya.db import statement_timeout as limit
    from areya.webapp.views import fhir as view

    monkeypatch.setattr(view, "STATEMENT_TIMEOUT_S", 0.0)
    monkeypatch.setattr(limit, "SQLITE_CHECK_EVERY", 1)
    response = client_get(world, f"/fhir/Observation?patient={world.ids['patient_id']}&code={RAW}")
    assert "ran past" in outcome(response, 503, "too-costly")
    monkeypatch.setattr(view, "STATEMENT_TIMEOUT_S", 5.0)
    assert get(world, "nurse", f"/fhir/Observation?patient={world.ids['patient_id']}&code={RAW}")["total"] == 40


def test_a_readmission_is_a_second_encounter_over_the_api(world: World) -> None:
    from areya.admin.patients import admit_patient, discharge_patient

    pid = world.ids["patient_id"]
    before = get(world, "nurse", f"/fhir/Encounter?patient={pid}")["entry"][0]["resource"]
    with world.session() as s:
        discharge_patient(s, "MRN001")
        admit_patient(s, "MRN001", "Alice Example", "ICU/1")
        s.commit()
    found = get(world, "nurse", f"/fhir/Encounter?patient={pid}")
    assert found["total"] == 2
    newest, earlier = (e["resource"] for e in found["entry"])
    assert earlier["id"] == before["id"] != newest["id"]
    assert earlier["status"] == "finished" and earlier["period"]["start"] == before["period"]["start"]
    assert newest["status"] == "in-progress"
    read = get(world, "nurse", f"/fhir/Encounter/{before['id']}")
    assert read["status"] == "finished" and int(read["meta"]["versionId"]) == int(before["meta"]["versionId"]) + 1
