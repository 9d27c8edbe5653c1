"""FHIR R4 read API under ``/fhir``: the same bearer tokens (or session), roles, ward scoping and audit as the JSON
API. Patient, Encounter (current admission and its beds), Location (beds and wards), Observation (per-minute
emotion summaries, or the stored observations with ``code=emotion-face``) and Flag (alerts); search results are
paged Bundles (``_count``, ``_offset``); every error under ``/fhir`` is an OperationOutcome."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, abort, g, request
from sqlalchemy import func, select
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.wrappers import Response

from areya.db.models import Alert, Bed, BedAssignment, Observation, ObservationMinute, Patient
from areya.db.types import utcnow
from areya.integrations.fhir import resources as fhir
from areya.webapp.access import alert_scope_ward, parse_id, patient_ward_id, require_patient, require_ward
from areya.webapp.security import CLINICAL, roles
from areya.webapp.services import audit, db, services, user_ward_ids

bp = Blueprint("fhir", __name__, url_prefix="/fhir")
FHIR_JSON = "application/fhir+json"
DEFAULT_COUNT = 50
MAX_COUNT = 500
DEFAULT_WINDOW = timedelta(hours=24)
MAX_WINDOW = timedelta(days=7)


class SearchError(ValueError):
    """A bad search parameter: answered 400 with an OperationOutcome."""


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype=FHIR_JSON)


def _outcome_body(message: str, code: str = "invalid") -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code, "diagnostics": message}]}


def _outcome(message: str, status: int = 400, code: str = "invalid") -> Response:
    return _json(_outcome_body(message, code), status)


# HTTP status -> OperationOutcome issue type (http://hl7.org/fhir/issue-type)
ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    413: "too-long",
    429: "throttled",
    500: "exception",
}


def _is_fhir_path(path: str) -> bool:
    return path == bp.url_prefix or path.startswith(f"{bp.url_prefix}/")


@bp.after_app_request
def _errors_as_operation_outcomes(response: Response) -> Response:
    """Every error answer under /fhir becomes an OperationOutcome (application/fhir+json), whoever made it: the
    app's login check (401, before any FHIR view runs), its error handlers (403 and 404 from the scoping checks,
    404/405 from routing, 500) or a view. The response is changed in place so that the security headers added
    by the app's other hooks stay."""
    if response.status_code < 400 or response.mimetype == FHIR_JSON or not _is_fhir_path(request.path):
        return response
    message = ""
    if response.is_json:
        body = response.get_json(silent=True)
        if isinstance(body, dict):
            message = str(body.get("error") or "")
    message = message or response.status
    status = response.status_code
    response.set_data(json.dumps(_outcome_body(message, ISSUE_CODES.get(status, "processing"))))
    response.mimetype = FHIR_JSON
    if status == 401:
        response.headers.setdefault("WWW-Authenticate", 'Bearer realm="areya"')
    routing = request.routing_exception
    if status == 405 and isinstance(routing, MethodNotAllowed) and routing.valid_methods:
        response.headers.setdefault("Allow", ", ".join(sorted(routing.valid_methods)))  # the app's handler drops it
    return response


def _base() -> str:
    return request.host_url.rstrip("/") + bp.url_prefix  # type: ignore[operator]


def _count_offset() -> tuple[int, int]:
    count_arg, offset_arg = request.args.get("_count", str(DEFAULT_COUNT)), request.args.get("_offset", "0")
    if not (count_arg.isascii() and count_arg.isdigit()) or not 1 <= int(count_arg) <= MAX_COUNT:  # int("²") fails
        raise SearchError(f"_count must be an integer in [1, {MAX_COUNT}]")
    if not (offset_arg.isascii() and offset_arg.isdigit()) or len(offset_arg) > 9:
        raise SearchError("_offset must be a non-negative integer")
    return int(count_arg), int(offset_arg)


def _bundle(kind: str, matches: list[dict[str, Any]], count: int, offset: int) -> dict[str, Any]:
    """A searchset Bundle of one page of ``matches`` (every match, in order)."""
    return _page_bundle(kind, matches[offset : offset + count], len(matches), count, offset)


def _page_bundle(kind: str, page: list[dict[str, Any]], total: int, count: int, offset: int) -> dict[str, Any]:
    """A searchset Bundle of one page (already cut, ``total`` matches in all), with self / first / previous / next
    links that keep the other parameters."""
    params = {k: v for k, v in request.args.items() if k not in ("_count", "_offset")}

    def link(relation: str, at: int) -> dict[str, str]:
        query = urlencode({**params, "_count": count, "_offset": at})
        return {"relation": relation, "url": f"{_base()}/{kind}?{query}"}

    links = [link("self", offset), link("first", 0)]
    if offset > 0:
        links.append(link("previous", max(0, offset - count)))
    if offset + count < total:
        links.append(link("next", offset + count))
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": [
            {"fullUrl": f"{_base()}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in page
        ],
    }


def _patient_param(required: bool) -> Patient | None:
    """``patient=123`` or ``patient=Patient/123``, scoped to the user's wards (403 otherwise)."""
    text = request.args.get("patient") or request.args.get("subject")
    if not text:
        if required:
            raise SearchError("the 'patient' search parameter is required")
        return None
    patient_id = parse_id(text.removeprefix("Patient/"))
    if patient_id is None:
        raise SearchError("patient must be a Patient id (123 or Patient/123)")
    return require_patient(patient_id)


def _visible(patient_id: int) -> bool:
    return g.user.role == "admin" or patient_ward_id(db(), patient_id) in user_ward_ids()


def _date_range() -> tuple[datetime, datetime]:
    """``date=geT1&date=ltT2`` (ge, gt, le, lt; a plain value is ge); default: the last 24 h; at most 7 days."""
    now = utcnow()
    start: datetime | None = None
    end = now
    for text in request.args.getlist("date"):
        prefix, value = (text[:2], text[2:]) if text[:2] in ("ge", "gt", "le", "lt") else ("ge", text)
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise SearchError(f"date must be [ge|gt|le|lt]YYYY-MM-DD[THH:MM[:SS][+HH:MM]], got {text!r}") from None
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        if prefix in ("ge", "gt"):
            start = when
        else:
            end = when
    start = start if start is not None else end - DEFAULT_WINDOW
    if end <= start or end - start > MAX_WINDOW:
        raise SearchError("the date range must be positive and at most 7 days")
    return start, end


def _search(handler: Any) -> Response:
    try:
        return handler()  # type: ignore[no-any-return]
    except SearchError as exc:
        return _outcome(str(exc))


# --------------------------------------------------------------------------- capability


@bp.route("/metadata")
@roles(*CLINICAL)
def metadata() -> Response:
    return _json(fhir.capability_statement(_base(), utcnow()))


# --------------------------------------------------------------------------- Patient


@bp.route("/Patient/<int:patient_id>")
@roles(*CLINICAL)
def patient_read(patient_id: int) -> Response:
    row = require_patient(patient_id)
    audit("fhir.patient.view", patient_id=row.id, target=f"patient:{row.id}")
    return _json(fhir.patient_resource(row, services().settings.mrn_system))


@bp.route("/Patient")
@roles(*CLINICAL)
def patient_search() -> Response:
    def run() -> Response:
        count, offset = _count_offset()
        query = select(Patient).order_by(Patient.id)
        identifier = request.args.get("identifier")
        mrn_system = services().settings.mrn_system
        if identifier:
            system, _, value = identifier.rpartition("|")
            if system and system != mrn_system:
                raise SearchError(f"identifier system must be {mrn_system}")
            query = query.where(Patient.mrn == value)
        rows = [p for p in db().scalars(query) if _visible(p.id)]
        body = _bundle("Patient", [fhir.patient_resource(p, mrn_system) for p in rows], count, offset)
        shown = [p.id for p in rows[offset : offset + count]]
        audit("fhir.patient.search", patient_ids=shown, detail={"patients": shown})
        return _json(body)

    return _search(run)


# --------------------------------------------------------------------------- Encounter, Location


def _stays(patient: Patient) -> list[BedAssignment]:
    return list(
        db().scalars(
            select(BedAssignment)
            .where(BedAssignment.patient_id == patient.id)
            .order_by(BedAssignment.start_at, BedAssignment.id)
        )
    )


@bp.route("/Encounter/<int:patient_id>")
@roles(*CLINICAL)
def encounter_read(patient_id: int) -> Response:
    row = require_patient(patient_id)
    audit("fhir.encounter.view", patient_id=row.id, target=f"patient:{row.id}")
    return _json(fhir.encounter_resource(row, _stays(row)))


@bp.route("/Encounter")
@roles(*CLINICAL)
def encounter_search() -> Response:
    def run() -> Response:
        count, offset = _count_offset()
        row = _patient_param(required=True)
        assert row is not None
        audit("fhir.encounter.view", patient_id=row.id, target=f"patient:{row.id}")
        return _json(_bundle("Encounter", [fhir.encounter_resource(row, _stays(row))], count, offset))

    return _search(run)


@bp.route("/Location/<string:location_id>")
@roles(*CLINICAL)
def location_read(location_id: str) -> Response:
    kind, _, number = location_id.partition("-")
    item_id = parse_id(number)
    if kind == "ward" and item_id is not None:
        return _json(fhir.ward_location(require_ward(item_id)))
    if kind == "bed" and item_id is not None:
        bed = db().get(Bed, item_id)
        if bed is None:
            abort(404, description=f"no Location {location_id}")
        require_ward(bed.ward_id)
        from areya.integrations.hl7.locations import LocationMap

        mapped = LocationMap.from_pairs(services().settings.adt_location_map)
        return _json(fhir.bed_location(bed, mapped.location_for(f"{bed.ward.name}/{bed.label}")))
    abort(404, description=f"no Location {location_id} (ids are ward-N and bed-N)")


# --------------------------------------------------------------------------- Observation


def _observation_code() -> str:
    """``code``: the kind of Observation searched; the per-minute summary when absent (one code per search)."""
    text = request.args.get("code")
    if text is None:
        return fhir.MINUTE_CODE
    system, bar, code = text.rpartition("|")
    if (
        (bar and system not in ("", fhir.CODE_SYSTEM))
        or code not in (fhir.MINUTE_CODE, fhir.RAW_CODE)
        or len(request.args.getlist("code")) > 1
    ):
        raise SearchError(
            f"code must be one of {fhir.CODE_SYSTEM}|{fhir.MINUTE_CODE} (per-minute summaries, "
            f"the default) or {fhir.CODE_SYSTEM}|{fhir.RAW_CODE} (every stored observation); "
            f"got {text!r}"
        )
    return code


@bp.route("/Observation")
@roles(*CLINICAL)
def observation_search() -> Response:
    def run() -> Response:
        count, offset = _count_offset()
        row = _patient_param(required=True)
        assert row is not None
        start, end = _date_range()
        code = _observation_code()
        in_range = (Observation.patient_id == row.id, Observation.captured_at >= start, Observation.captured_at < end)
        if code == fhir.RAW_CODE:  # one Observation per stored row, paged in the database
            total = db().scalar(select(func.count()).select_from(Observation).where(*in_range)) or 0
            page = list(
                db().scalars(
                    select(Observation)
                    .where(*in_range)
                    .order_by(Observation.captured_at, Observation.id)
                    .offset(offset)
                    .limit(count)
                )
            )
            body = _page_bundle("Observation", [fhir.raw_observation(o) for o in page], total, count, offset)
            detail: dict[str, Any] = {"observations": total, "shown": len(page)}
        else:
            raw = db().scalars(select(Observation).where(*in_range))
            rollups = db().scalars(
                select(ObservationMinute).where(
                    ObservationMinute.patient_id == row.id,
                    ObservationMinute.minute >= start,
                    ObservationMinute.minute < end,
                )
            )
            summaries = fhir.minute_summaries(raw, rollups)
            body = _bundle("Observation", [fhir.minute_observation(s) for s in summaries], count, offset)
            detail = {"minutes": len(summaries)}
        audit(
            "fhir.observation.search",
            patient_id=row.id,
            target=f"patient:{row.id}",
            detail={"from": start.isoformat(), "to": end.isoformat(), "code": code, **detail},
        )
        return _json(body)

    return _search(run)


# --------------------------------------------------------------------------- Flag (alerts)


@bp.route("/Flag/<int:alert_id>")
@roles(*CLINICAL)
def flag_read(alert_id: int) -> Response:
    from areya.webapp.access import require_alert

    alert = require_alert(alert_id)
    audit("fhir.flag.view", patient_id=alert.patient_id, target=f"alert:{alert.id}")
    return _json(fhir.flag_resource(alert))


@bp.route("/Flag")
@roles(*CLINICAL)
def flag_search() -> Response:
    def run() -> Response:
        count, offset = _count_offset()
        row = _patient_param(required=False)
        query = select(Alert).order_by(Alert.opened_at.desc(), Alert.id.desc())
        if row is not None:
            query = query.where(Alert.patient_id == row.id)
        if g.user.role != "admin":  # a patient's alert follows the patient (see access.alert_scope_ward_id)
            query = query.where(alert_scope_ward().in_(user_ward_ids()))
        alerts = list(db().scalars(query))
        body = _bundle("Flag", [fhir.flag_resource(a) for a in alerts], count, offset)
        page = alerts[offset : offset + count]
        audit(
            "fhir.flag.search",
            patient_ids=[a.patient_id for a in page if a.patient_id is not None],
            detail={"alerts": [a.id for a in page]},
        )
        return _json(body)

    return _search(run)
