"""JSON API: bearer tokens (hashed, revocable), role and ward checks, audit, and a schemathesis fuzz run in-process
(no 5xx on generated input; bounded examples)."""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from sqlalchemy import select
from web_helpers import World

from areya.db.models import Alert, ApiToken, AuditEvent
from areya.webapp.openapi import openapi_document


def _auth(world: World, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens[role]}"}


def test_token_auth(world: World) -> None:
    client = world.app.test_client()
    assert client.get("/api/me").status_code == 401
    assert client.get("/api/me", headers={"Authorization": "Bearer areya_not-a-token"}).status_code == 401
    assert client.get("/api/me", headers={"Authorization": "Basic Zm9vOmJhcg=="}).status_code == 401
    me = client.get("/api/me", headers=_auth(world, "nurse"))
    assert me.status_code == 200 and me.get_json() == {
        "id": world.ids["user_nurse"],
        "username": "nurse",
        "role": "nurse",
        "ward_ids": [world.ids["ward_id"]],
    }
    from areya.webapp.tokens import revoke_token

    with world.session() as s:
        token_id = s.scalars(select(ApiToken.id).where(ApiToken.name == "nurse-token")).one()
        revoke_token(s, token_id)
        s.commit()
    assert client.get("/api/me", headers=_auth(world, "nurse")).status_code == 401


def test_unknown_api_urls_answer_a_valid_token_with_the_routing_error(world: World) -> None:
    client = world.app.test_client()
    missing = client.get("/api/no-such-thing", headers=_auth(world, "doctor"))
    assert missing.status_code == 404 and missing.get_json()["status"] == 404
    wrong_method = client.delete("/api/me", headers=_auth(world, "doctor"))
    assert wrong_method.status_code == 405
    # without a token, or with a bad one, an unknown URL reveals nothing: 401 as for any API URL
    assert client.get("/api/no-such-thing").status_code == 401
    bad = client.get("/api/no-such-thing", headers={"Authorization": "Bearer areya_not-a-token"})
    assert bad.status_code == 401 and bad.headers["WWW-Authenticate"].startswith("Bearer")


def test_api_reads_are_scoped_and_audited(world: World) -> None:
    client = world.app.test_client()
    tiles = client.get(f"/api/wards/{world.ids['ward_id']}/tiles", headers=_auth(world, "nurse")).get_json()
    by_bed = {t["bed_id"]: t for t in tiles["tiles"]}
    assert by_bed[world.ids["bed_id"]]["patient_name"] == "Alice Example"
    assert by_bed[world.ids["bed_id"]]["emotion"] == "sad" and by_bed[world.ids["bed_id"]]["open_alerts"] == 1
    assert (
        client.get(f"/api/wards/{world.ids['other_ward_id']}/tiles", headers=_auth(world, "nurse")).status_code == 403
    )
    alerts = client.get("/api/alerts", headers=_auth(world, "doctor")).get_json()["alerts"]
    assert {a["id"] for a in alerts} == {world.ids["alert_id"], world.ids["camera_alert_id"]}
    assert client.get("/api/alerts?limit=0", headers=_auth(world, "doctor")).status_code == 400
    timeline = client.get(
        f"/api/patients/{world.ids['patient_id']}/timeline?range=1h", headers=_auth(world, "doctor")
    ).get_json()
    assert sum(b["n"] for b in timeline["buckets"]) == 40
    with world.session() as s:
        actions = set(s.scalars(select(AuditEvent.action)))
    assert {"api.ward.view", "api.alerts.view", "api.patient.timeline"} <= actions


def test_api_acknowledge_resolve_snooze(world: World) -> None:
    client = world.app.test_client()
    aid = world.ids["alert_id"]
    # nurses may acknowledge (default policy), not resolve
    assert (
        client.post(f"/api/alerts/{aid}/resolve", json={"note": "calm"}, headers=_auth(world, "nurse")).status_code
        == 403
    )
    assert (
        client.post(f"/api/alerts/{aid}/acknowledge", data="not json", headers=_auth(world, "doctor")).status_code
        == 400
    )
    ack = client.post(f"/api/alerts/{aid}/acknowledge", json={"note": "on my way"}, headers=_auth(world, "doctor"))
    assert ack.status_code == 200 and ack.get_json()["state"] == "acknowledged"
    assert client.post(f"/api/alerts/{aid}/acknowledge", json={}, headers=_auth(world, "doctor")).status_code == 409
    assert client.post(f"/api/alerts/{aid}/resolve", json={}, headers=_auth(world, "doctor")).status_code == 400
    bad = client.post(
        f"/api/alerts/{aid}/resolve", json={"note": "calm", "finding": "fine"}, headers=_auth(world, "doctor")
    )
    assert bad.status_code == 400 and "finding" in bad.get_json()["error"]
    done = client.post(
        f"/api/alerts/{aid}/resolve",
        json={"note": "calm now", "finding": "no_distress_seen"},
        headers=_auth(world, "doctor"),
    )
    assert done.status_code == 200 and done.get_json()["resolution"] == "manual"
    assert done.get_json()["finding"] == "no_distress_seen"
    snooze = client.post(
        f"/api/patients/{world.ids['patient_id']}/snooze",
        json={"minutes": 30, "reason": "visit"},
        headers=_auth(world, "nurse"),
    )
    assert snooze.status_code == 200 and snooze.get_json()["reason"] == "visit"
    assert (
        client.post(
            f"/api/patients/{world.ids['patient_id']}/snooze",
            json={"minutes": True, "reason": "x"},
            headers=_auth(world, "nurse"),
        ).status_code
        == 400
    )
    with world.session() as s:
        assert s.get(Alert, aid).note == "calm now"


def test_openapi_document_lists_every_api_route(world: World) -> None:
    doc = openapi_document()
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    routes = set()
    for rule in world.app.url_map.iter_rules():
        if rule.endpoint.startswith("api.") and rule.endpoint != "api.openapi":
            path = rule.rule.replace("<int:", "{").replace(">", "}")
            routes |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == routes


# --------------------------------------------------------------------------- fuzzing

MAX_EXAMPLES = 8


@pytest.mark.parametrize("role", ["doctor", "nurse"])
def test_api_fuzz_no_server_errors(world: World, role: str) -> None:
    """Every operation of the OpenAPI document, generated input (valid and invalid), in-process: never a 5xx."""
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", world.app)
    headers = _auth(world, role)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len(ops) for ops in openapi_document()["paths"].values())
    statuses: Counter[int] = Counter()
    real_ids = {
        "alert_id": world.ids["alert_id"],
        "patient_id": world.ids["patient_id"],
        "ward_id": world.ids["ward_id"],
    }
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: schemathesis.Case) -> None:
            response = case.call(headers=headers)
            statuses[response.status_code] += 1
            case.validate_response(response, checks=[not_a_server_error])
            if case.path_parameters:  # the same generated query/body against rows that exist
                case.path_parameters = {k: real_ids[k] for k in case.path_parameters}
                response = case.call(headers=headers)
                statuses[response.status_code] += 1
                case.validate_response(response, checks=[not_a_server_error])

        run()
    assert sum(statuses.values()) >= len(operations) * MAX_EXAMPLES // 2
    assert statuses[200] > 0 and not any(code >= 500 for code in statuses), statuses
