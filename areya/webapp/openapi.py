"""The OpenAPI 3.0 document of the JSON API (kept next to the routes in views/api.py; a test checks they match)."""

from __future__ import annotations

from typing import Any

from areya.db.models import ALERT_KINDS, ALERT_STATES, FINDINGS

_ID = {"type": "integer", "minimum": 1}
_TS = {"type": "string", "format": "date-time"}
_TS_NULL = {"type": "string", "format": "date-time", "nullable": True}


def _path_id(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
    }


def _json(schema_ref: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}}}


def _responses(ok_ref: str, *codes: int) -> dict[str, Any]:
    descriptions = {
        400: "Bad input",
        401: "Missing or invalid token",
        403: "Role or ward not allowed",
        404: "Not found",
        409: "Conflict with the current state",
    }
    out: dict[str, Any] = {"200": {"description": "OK", **_json(ok_ref)}}
    for code in (401, 403, *codes):
        out[str(code)] = {"description": descriptions[code], **_json("Error")}
    return out


def openapi_document() -> dict[str, Any]:
    alert_props: dict[str, Any] = {
        "id": _ID,
        "kind": {"type": "string", "enum": list(ALERT_KINDS)},
        "priority": {
            "type": "string",
            "enum": ["high", "medium", "low"],
            "description": "IEC 60601-1-8 alarm priority (does not change on escalation)",
        },
        "condition": {
            "type": "string",
            "enum": ["patient", "technical"],
            "description": "a patient condition or a technical one (a camera that cannot see its beds)",
        },
        "severity": {"type": "integer", "description": "derived from the priority: high 3, medium 2, low 1"},
        "state": {"type": "string", "enum": list(ALERT_STATES)},
        "ward_id": {"type": "integer", "nullable": True},
        "patient_id": {"type": "integer", "nullable": True},
        "camera_id": {"type": "integer", "nullable": True},
        "opened_at": _TS,
        "acknowledged_at": _TS_NULL,
        "acknowledged_by": {"type": "integer", "nullable": True},
        "resolved_at": _TS_NULL,
        "resolved_by": {"type": "integer", "nullable": True},
        "resolution": {"type": "string", "nullable": True},
        "finding": {"type": "string", "enum": list(FINDINGS), "nullable": True},
        "note": {"type": "string", "nullable": True},
        "escalation_level": {"type": "integer"},
        "evidence": {"type": "object"},
        "events": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "at": _TS,
                    "from_state": {"type": "string", "nullable": True},
                    "to_state": {"type": "string"},
                    "user_id": {"type": "integer", "nullable": True},
                    "note": {"type": "string", "nullable": True},
                },
            },
        },
    }
    schemas: dict[str, Any] = {
        "Error": {
            "type": "object",
            "required": ["error", "status"],
            "properties": {"error": {"type": "string"}, "status": {"type": "integer"}},
        },
        "Me": {
            "type": "object",
            "required": ["id", "username", "role", "ward_ids"],
            "properties": {
                "id": _ID,
                "username": {"type": "string"},
                "role": {"type": "string", "enum": ["nurse", "doctor", "admin"]},
                "ward_ids": {"type": "array", "items": {"type": "integer"}},
            },
        },
        "Wards": {
            "type": "object",
            "required": ["wards"],
            "properties": {
                "wards": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "id": _ID,
                            "name": {"type": "string"},
                            "beds": {
                                "type": "array",
                                "items": {"type": "object", "properties": {"id": _ID, "label": {"type": "string"}}},
                            },
                        },
                    },
                }
            },
        },
        "Tiles": {
            "type": "object",
            "required": ["ward", "tiles"],
            "properties": {
                "ward": {"type": "object", "properties": {"id": _ID, "name": {"type": "string"}}},
                "tiles": {"type": "array", "items": {"$ref": "#/components/schemas/Tile"}},
            },
        },
        "Tile": {
            "type": "object",
            "properties": {
                "bed_id": _ID,
                "bed": {"type": "string"},
                "patient_id": {"type": "integer", "nullable": True},
                "patient_name": {"type": "string", "nullable": True},
                "mrn": {"type": "string", "nullable": True},
                "emotion": {"type": "string", "nullable": True},
                "confidence": {"type": "number", "nullable": True},
                "last_observation_at": _TS_NULL,
                "open_alerts": {"type": "integer"},
                "camera_status": {"type": "string"},
            },
        },
        "Alert": {"type": "object", "required": ["id", "kind", "state", "severity"], "properties": alert_props},
        "Alerts": {
            "type": "object",
            "required": ["alerts"],
            "properties": {"alerts": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}}},
        },
        "Patient": {
            "type": "object",
            "required": ["id", "mrn", "name", "status"],
            "properties": {
                "id": _ID,
                "mrn": {"type": "string"},
                "name": {"type": "string"},
                "status": {"type": "string"},
                "admitted_at": _TS,
                "discharged_at": _TS_NULL,
                "bed": {"type": "object", "nullable": True},
                "latest_observation": {"type": "object", "nullable": True},
            },
        },
        "Timeline": {
            "type": "object",
            "required": ["patient_id", "buckets"],
            "properties": {
                "patient_id": _ID,
                "range": {"type": "string"},
                "scheme": {"type": "integer"},
                "bucket_minutes": {"type": "integer"},
                "buckets": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"start": _TS, "n": {"type": "integer"}, "counts": {"type": "object"}},
                    },
                },
            },
        },
        "Snooze": {"type": "object", "properties": {"patient_id": _ID, "until": _TS, "reason": {"type": "string"}}},
        "NoteBody": {"type": "object", "properties": {"note": {"type": "string", "maxLength": 2000}}},
        "ResolveBody": {
            "type": "object",
            "required": ["note"],
            "properties": {
                "note": {"type": "string", "minLength": 1, "maxLength": 2000},
                "finding": {
                    "type": "string",
                    "enum": list(FINDINGS),
                    "nullable": True,
                    "description": "what was found at the bedside (patient alerts only; omitted or null: not said); "
                    "after no_distress_seen the rule waits longer before alerting on the patient again",
                },
            },
        },
        "SnoozeBody": {
            "type": "object",
            "required": ["minutes", "reason"],
            "properties": {
                "minutes": {"type": "integer", "minimum": 1, "maximum": 10080},
                "reason": {"type": "string", "minLength": 1, "maxLength": 2000},
            },
        },
    }
    alert_id = _path_id("alert_id", "Alert id")
    patient_id = _path_id("patient_id", "Patient id")
    paths: dict[str, Any] = {
        "/api/me": {"get": {"summary": "The token's user", "operationId": "me", "responses": _responses("Me")}},
        "/api/wards": {
            "get": {"summary": "Wards the user covers", "operationId": "listWards", "responses": _responses("Wards")}
        },
        "/api/wards/{ward_id}/tiles": {
            "get": {
                "summary": "Ward view tiles (one per bed)",
                "operationId": "wardTiles",
                "parameters": [_path_id("ward_id", "Ward id")],
                "responses": _responses("Tiles", 404),
            }
        },
        "/api/alerts": {
            "get": {
                "summary": "Alerts in the user's wards, newest first",
                "operationId": "listAlerts",
                "parameters": [
                    {"name": "state", "in": "query", "schema": {"type": "string", "enum": ["open", "all"]}},
                    {
                        "name": "ward_id",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                    },
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
                ],
                "responses": _responses("Alerts", 400, 404),
            }
        },
        "/api/alerts/{alert_id}": {
            "get": {
                "summary": "One alert with its history",
                "operationId": "getAlert",
                "parameters": [alert_id],
                "responses": _responses("Alert", 404),
            }
        },
        "/api/alerts/{alert_id}/acknowledge": {
            "post": {
                "summary": "Acknowledge a firing alert (doctors)",
                "operationId": "acknowledgeAlert",
                "parameters": [alert_id],
                "requestBody": {"required": True, **_json("NoteBody")},
                "responses": _responses("Alert", 400, 404, 409),
            }
        },
        "/api/alerts/{alert_id}/resolve": {
            "post": {
                "summary": "Resolve an open alert with a note (doctors)",
                "operationId": "resolveAlert",
                "parameters": [alert_id],
                "requestBody": {"required": True, **_json("ResolveBody")},
                "responses": _responses("Alert", 400, 404, 409),
            }
        },
        "/api/patients/{patient_id}": {
            "get": {
                "summary": "A patient: bed and latest observation",
                "operationId": "getPatient",
                "parameters": [patient_id],
                "responses": _responses("Patient", 404),
            }
        },
        "/api/patients/{patient_id}/timeline": {
            "get": {
                "summary": "Emotion counts per time bucket",
                "operationId": "patientTimeline",
                "parameters": [
                    patient_id,
                    {"name": "range", "in": "query", "schema": {"type": "string", "enum": ["1h", "6h", "24h", "7d"]}},
                    {"name": "scheme", "in": "query", "schema": {"type": "string", "enum": ["4", "7"]}},
                ],
                "responses": _responses("Timeline", 400, 404),
            }
        },
        "/api/patients/{patient_id}/snooze": {
            "post": {
                "summary": "Snooze new alerts for a patient (nurses, doctors)",
                "operationId": "snoozePatient",
                "parameters": [patient_id],
                "requestBody": {"required": True, **_json("SnoozeBody")},
                "responses": _responses("Snooze", 400, 404, 409),
            }
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Areya API",
            "version": "1",
            "description": "Ward tiles, alerts and patients for integrations. Authenticate with "
            "`Authorization: Bearer <token>` (each user creates their own on their account "
            "page; a token acts only for that user). Every call is role-checked, ward-scoped and audited.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}, "schemas": schemas},
        "paths": paths,
    }
