"""FHIR R4 read API under ``/fhir``: the same bearer tokens (or session), roles, ward scoping and audit as the JSON
API; ``/fhir/metadata`` (the CapabilityStatement) is public. Patient, Encounter (one per hospital stay, its bed
stays as locations), Location (beds and wards), Observation (per-minute emotion summaries, or the stored
observations with ``code=emotion-face``) and Flag (alerts). JSON only (``_format`` / ``Accept`` asking for
anything else: 406). Searches are paged Bundles whose links start at the ``fhir_base_url`` setting; Observation
pages are keyset pages (``_cursor``) read under a statement time limit; unknown search parameters are reported
in an OperationOutcome entry or, with ``Prefer: handling=strict``, refused. An id outside the user's wards is
answered 404, like an id that does not exist (the refusal is audited). Every error is an OperationOutcome."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, abort, g, request
from sqlalchemy import ColumnElement, case, false, func, select
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.wrappers import Response

from areya.admin.encounters import encounter_stays
from areya.db.models import LABELS4, Alert, AlertEvent, Bed, Encounter, Observation, ObservationMinute, Patient
from areya.db.statement_timeout import StatementTimeout, statement_timeout
from areya.db.types import utcnow
from areya.integrations.fhir import resources as fhir
from areya.integrations.fhir.search import SearchValueError, clamp_count, date_conditions, name_condition
from areya.webapp.access import alert_scope_ward, alert_scope_ward_id, parse_id, patient_ward_id
from areya.webapp.security import CLINICAL, public, roles
from areya.webapp.services import actor, audit, db, security_audit, services, user_ward_ids

bp = Blueprint("fhir", __name__, url_prefix="/fhir")
FHIR_JSON = "application/fhir+json"
CONTENT_TYPE = f"{FHIR_JSON}; charset=utf-8"
DEFAULT_COUNT = 50
MAX_COUNT = 200  # a larger _count is clamped to this
STATEMENT_TIMEOUT_S = 5.0  # an Observation page's statements together (a page takes well under 1 s)
MINUTE = timedelta(minutes=1)
JSON_FORMATS = ("json", "application/json", "application/fhir+json", "application/json+fhir")
COMMON_PARAMS = ("_format",)


class SearchError(ValueError):
    """A bad search parameter: answered 400 with an OperationOutcome."""


def _json(body: dict[str, Any], status: int = 200, etag: str | None = None) -> Response:
    response = Response(json.dumps(body), status=status, content_type=CONTENT_TYPE)
    if etag is not None:
        response.headers["ETag"] = f'W/"{etag}"'
    return response


def _outcome_body(message: str, code: str = "invalid", severity: str = "error") -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [{"severity": severity, "code": code, "diagnostics": message}]}


def _outcome(message: str, status: int = 400, code: str = "invalid") -> Response:
    return _json(_outcome_body(message, code), status)


# HTTP status -> OperationOutcome issue type (http://hl7.org/fhir/issue-type)
ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    413: "too-long",
    429: "throttled",
    500: "exception",
    503: "too-costly",
}


def _is_fhir_path(path: str) -> bool:
    return path == bp.url_prefix or path.startswith(f"{bp.url_prefix}/")


@bp.after_app_request
def _errors_as_operation_outcomes(response: Response) -> Response:
    """Every error answer under /fhir becomes an OperationOutcome (application/fhir+json), whoever made it: the
    app's login check (401, before any FHIR view runs), its error handlers (403 and 404 from the scoping checks,
    404/405 from routing, 500) or a view. The response is changed in place so that the security headers added
    by the app's other hooks stay."""
    if not _is_fhir_path(request.path):
        return response
    if response.status_code < 400 or response.mimetype == FHIR_JSON:
        if response.mimetype == FHIR_JSON:
            response.content_type = CONTENT_TYPE
        return response
    message = ""
    if response.is_json:
        body = response.get_json(silent=True)
        if isinstance(body, dict):
            message = str(body.get("error") or "")
    message = message or response.status
    status = response.status_code
    response.set_data(json.dumps(_outcome_body(message, ISSUE_CODES.get(status, "processing"))))
    response.content_type = CONTENT_TYPE
    if status == 401:
        response.headers.setdefault("WWW-Authenticate", 'Bearer realm="areya"')
    routing = request.routing_exception
    if status == 405 and isinstance(routing, MethodNotAllowed) and routing.valid_methods:
        response.headers.setdefault("Allow", ", ".join(sorted(routing.valid_methods)))  # the app's handler drops it
    return response


def _wants_json_only() -> str | None:
    """Why the request cannot be answered in JSON (``_format`` or ``Accept`` asks for XML, Turtle...), or None."""
    requested = request.args.get("_format")
    if requested is not None:
        base = requested.split(";", 1)[0].strip().lower()
        if base not in JSON_FORMATS:
            return f"_format={requested[:60]!r}: this server answers JSON only (_format=json)"
    accept = request.headers.get("Accept", "").strip()
    if accept and request.accept_mimetypes.best_match([FHIR_JSON, "application/json"]) is None:
        return f"Accept: {accept[:80]!r}: this server answers application/fhir+json only"
    return None


@bp.before_request
def _negotiate() -> Response | None:
    reason = _wants_json_only()
    return _outcome(reason, 406, "not-supported") if reason else None


def base_url() -> str:
    """The FHIR API's base URL: the ``fhir_base_url`` setting, else built from the bind address and port (never
    from the request's Host header, which a client chooses)."""
    settings = services().settings
    if settings.fhir_base_url:
        return settings.fhir_base_url  # type: ignore[no-any-return]
    host = settings.web_host if settings.web_host not in ("", "0.0.0.0", "::") else "localhost"  # noqa: S104
    host = f"[{host}]" if ":" in host else host
    scheme = "https" if settings.session_cookie_secure else "http"
    return f"{scheme}://{host}:{settings.web_port}{bp.url_prefix}"


def _not_found(kind: str, item: str, reason: str) -> None:
    """404 for an id outside the user's wards, like one that does not exist; the refusal is audited."""
    security_audit(
        "access.denied",
        actor(),
        target=request.path[:200],
        detail={"method": request.method, "status": 404, "reason": reason},
    )
    g.audited = True
    abort(404, description=f"no {kind} {item}")


def _visible(patient_id: int) -> bool:
    return g.user.role == "admin" or patient_ward_id(db(), patient_id) in user_ward_ids()


def _scoped_patient(patient_id: int) -> Patient:
    patient = db().get(Patient, patient_id)
    if patient is None:
        abort(404, description=f"no Patient {patient_id}")
    if not _visible(patient.id):
        _not_found("Patient", str(patient_id), "this patient is not in a ward you cover")
    return patient


# --------------------------------------------------------------------------- search parameters


def _prefer_strict() -> bool:
    """``Prefer: handling=strict`` (unknown parameters refused); lenient (reported, ignored) otherwise."""
    prefer = request.headers.get("Prefer", "")
    return any(part.strip().lower() == "handling=strict" for part in prefer.split(","))


class Search:
    """The parameters of one search: the known ones kept (for the links), unknown ones refused (strict) or
    reported in an OperationOutcome entry (lenient)."""

    def __init__(self, kind: str, known: tuple[str, ...]) -> None:
        self.kind = kind
        allowed = (*known, *COMMON_PARAMS)
        self.unknown = sorted({name[:60] for name in request.args if name not in allowed})[:20]
        if self.unknown and _prefer_strict():
            raise SearchError(
                f"unknown or unsupported search parameter(s) for {kind}: {', '.join(self.unknown)} "
                f"(supported: {', '.join(known)})"
            )
        self.params = [(k, v) for k, v in request.args.items(multi=True) if k in known and k != "_count"]
        self.params = [(k, v) for k, v in self.params if k not in ("_offset", "_cursor")]
        try:
            self.count = clamp_count(request.args.get("_count"), DEFAULT_COUNT, MAX_COUNT)
        except SearchValueError as exc:
            raise SearchError(str(exc)) from None

    def url(self, **extra: Any) -> str:
        query = urlencode([*self.params, ("_count", self.count), *extra.items()])
        return f"{base_url()}/{self.kind}?{query}"

    def bundle(self, page: list[dict[str, Any]], total: int | None, links: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """A searchset Bundle: ``links`` relation -> the paging parameters of that link."""
        entries: list[dict[str, Any]] = [
            {"fullUrl": f"{base_url()}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in page
        ]
        if self.unknown:
            issues = [
                {"severity": "warning", "code": "not-supported", "diagnostics": f"search parameter {name!r} ignored"}
                for name in self.unknown
            ]
            entries.append(
                {"resource": {"resourceType": "OperationOutcome", "issue": issues}, "search": {"mode": "outcome"}}
            )
        body: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
        if total is not None:
            body["total"] = total
        body["link"] = [{"relation": relation, "url": self.url(**extra)} for relation, extra in links.items()]
        body["entry"] = entries
        return body

    def offset_bundle(self, matches: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """One ``_offset`` page of ``matches`` (every match, in order); the Bundle and the page."""
        text = request.args.get("_offset", "0")
        if not (text.isascii() and text.isdigit()) or len(text) > 9:
            raise SearchError("_offset must be a non-negative integer")
        offset, count = int(text), self.count
        page = matches[offset : offset + count]
        links: dict[str, dict[str, Any]] = {"self": {"_offset": offset}, "first": {"_offset": 0}}
        if offset > 0 and count:
            links["previous"] = {"_offset": max(0, offset - count)}
        if count and offset + count < len(matches):
            links["next"] = {"_offset": offset + count}
        return self.bundle(page, len(matches), links), page


def _search(handler: Any) -> Response:
    try:
        return handler()  # type: ignore[no-any-return]
    except (SearchError, SearchValueError) as exc:
        return _outcome(str(exc))
    except StatementTimeout as exc:
        return _outcome(f"{exc}: narrow the search (date) or use a smaller _count", 503, "too-costly")


def _patient_param(required: bool) -> Patient | None | bool:
    """``patient=123`` or ``patient=Patient/123``: the patient; False when it names no patient the user may see
    (the search then matches nothing; a patient outside the user's wards is audited as a refusal)."""
    values = request.args.getlist("patient") or request.args.getlist("subject")
    if not values:
        if required:
            raise SearchError("the 'patient' search parameter is required")
        return None
    if len(values) > 1 or "," in values[0]:
        raise SearchError("one patient per search")
    patient_id = parse_id(values[0].removeprefix("Patient/"))
    if patient_id is None:
        raise SearchError("patient must be a Patient id (123 or Patient/123)")
    patient = db().get(Patient, patient_id)
    if patient is None:
        return False
    if not _visible(patient.id):
        security_audit(
            "access.denied",
            actor(),
            target=request.path[:200],
            detail={"method": request.method, "status": 200, "reason": "patient outside the wards covered"},
        )
        return False
    return patient


def _meta(version: int, updated: datetime | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"versionId": str(version)}
    if updated is not None:
        meta["lastUpdated"] = updated.isoformat()
    return meta


# --------------------------------------------------------------------------- capability


@bp.route("/metadata")
@public
def metadata() -> Response:
    return _json(fhir.capability_statement(base_url(), utcnow()))


# --------------------------------------------------------------------------- Patient


def _patient(row: Patient) -> dict[str, Any]:
    resource = fhir.patient_resource(row, services().settings.mrn_system)
    resource["meta"] = _meta(row.version or 1, row.updated_at or row.admitted_at)
    return resource


@bp.route("/Patient/<int:patient_id>")
@roles(*CLINICAL)
def patient_read(patient_id: int) -> Response:
    row = _scoped_patient(patient_id)
    audit("fhir.patient.view", patient_id=row.id, target=f"patient:{row.id}")
    return _json(_patient(row), etag=str(row.version or 1))


@bp.route("/Patient")
@roles(*CLINICAL)
def patient_search() -> Response:
    def run() -> Response:
        search = Search("Patient", ("identifier", "name", "_count", "_offset"))
        query = select(Patient).order_by(Patient.id)
        mrn_system = services().settings.mrn_system
        for identifier in request.args.getlist("identifier"):
            system, bar, value = identifier.rpartition("|")
            if bar and system not in ("", mrn_system):
                query = query.where(false())  # another system's identifier: no patient has it
            query = query.where(Patient.mrn == value)
        for name in request.args.getlist("name"):
            query = query.where(name_condition(Patient.display_name, name))
        rows = [p for p in db().scalars(query) if _visible(p.id)]
        body, page = search.offset_bundle([_patient(p) for p in rows])
        shown = [int(r["id"]) for r in page]
        audit("fhir.patient.search", patient_ids=shown, detail={"patients": shown})
        return _json(body)

    return _search(run)


# --------------------------------------------------------------------------- Encounter, Location


def _encounter(row: Encounter) -> dict[str, Any]:
    patient = db().get(Patient, row.patient_id)
    assert patient is not None
    stays = encounter_stays(db(), row)
    resource = fhir.encounter_resource(row, patient, stays)
    resource["meta"] = _meta(row.version, row.updated_at)
    return resource


@bp.route("/Encounter/<int:encounter_id>")
@roles(*CLINICAL)
def encounter_read(encounter_id: int) -> Response:
    row = db().get(Encounter, encounter_id)
    if row is None:
        abort(404, description=f"no Encounter {encounter_id}")
    if not _visible(row.patient_id):
        _not_found("Encounter", str(encounter_id), "this patient is not in a ward you cover")
    audit("fhir.encounter.view", patient_id=row.patient_id, target=f"encounter:{row.id}")
    return _json(_encounter(row), etag=str(row.version))


@bp.route("/Encounter")
@roles(*CLINICAL)
def encounter_search() -> Response:
    def run() -> Response:
        search = Search("Encounter", ("patient", "subject", "_count", "_offset"))
        patient = _patient_param(required=True)
        rows: list[Encounter] = []
        if isinstance(patient, Patient):
            rows = list(
                db().scalars(
                    select(Encounter)
                    .where(Encounter.patient_id == patient.id)
                    .order_by(Encounter.start_at.desc(), Encounter.id.desc())
                )
            )
        body, page = search.offset_bundle([_encounter(r) for r in rows])
        if isinstance(patient, Patient):
            audit(
                "fhir.encounter.search",
                patient_id=patient.id,
                target=f"patient:{patient.id}",
                detail={"encounters": [int(r["id"]) for r in page]},
            )
        return _json(body)

    return _search(run)


@bp.route("/Location/<string:location_id>")
@roles(*CLINICAL)
def location_read(location_id: str) -> Response:
    from areya.db.models import Ward

    kind, _, number = location_id.partition("-")
    item_id = parse_id(number)
    covered = g.user.role == "admin" or set(user_ward_ids())
    if kind == "ward" and item_id is not None:
        ward = db().get(Ward, item_id)
        if ward is None:
            abort(404, description=f"no Location {location_id}")
        if covered is not True and ward.id not in covered:
            _not_found("Location", location_id, "you do not cover this ward")
        return _json(fhir.ward_location(ward))
    if kind == "bed" and item_id is not None:
        bed = db().get(Bed, item_id)
        if bed is None:
            abort(404, description=f"no Location {location_id}")
        if covered is not True and bed.ward_id not in covered:
            _not_found("Location", location_id, "you do not cover this ward")
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


def _cursor() -> tuple[datetime, int] | None:
    """``_cursor``: where the next page starts (from a Bundle's next link): ``<microseconds since 1970>.<id>``."""
    text = request.args.get("_cursor")
    if text is None:
        return None
    micros, _, row_id = text.partition(".")
    try:
        if not (micros.lstrip("-").isascii() and micros.lstrip("-").isdigit() and len(micros) <= 18):
            raise ValueError
        when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(micros))
        number = int(row_id) if row_id else 0
        if not (row_id == "" or (row_id.isascii() and row_id.isdigit() and len(row_id) <= 19)):
            raise ValueError
    except (ValueError, OverflowError):
        raise SearchError("_cursor must be the value a Bundle's next link carries") from None
    return when, number


def cursor_text(when: datetime, row_id: int = 0) -> str:
    micros = (when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    return f"{micros}.{row_id}"


def _minute_key(column: Any) -> ColumnElement[Any]:
    """SQL: the minute of a stored time (for counting distinct minutes)."""
    if db().get_bind().dialect.name == "postgresql":
        return func.date_trunc("minute", column)
    return func.substr(column, 1, 16)  # SQLite keeps 'YYYY-MM-DD HH:MM:SS.ffffff'


def _floor_minute(when: datetime) -> datetime:
    return when.replace(second=0, microsecond=0)


def _raw_page(search: Search, patient: Patient) -> tuple[dict[str, Any], dict[str, Any]]:
    """One keyset page of stored observations, oldest first: rows after the cursor's (captured_at, id)."""
    where = [
        Observation.patient_id == patient.id,
        *date_conditions(request.args.getlist("date"), Observation.captured_at),
    ]
    total = db().scalar(select(func.count()).select_from(Observation).where(*where)) or 0
    cursor = _cursor()
    query = select(Observation).where(*where)
    if cursor is not None:
        when, row_id = cursor
        query = query.where(  # the first condition bounds the index range, the second breaks ties
            Observation.captured_at >= when,
            (Observation.captured_at > when) | (Observation.id > row_id),
        )
    rows = list(db().scalars(query.order_by(Observation.captured_at, Observation.id).limit(search.count + 1)))
    page, more = rows[: search.count], len(rows) > search.count
    links: dict[str, dict[str, Any]] = {"self": {"_cursor": request.args["_cursor"]} if cursor else {}, "first": {}}
    if more and page:
        links["next"] = {"_cursor": cursor_text(page[-1].captured_at, page[-1].id)}
    body = search.bundle([fhir.raw_observation(o) for o in page], total, links)
    return body, {"observations": total, "shown": len(page)}


def _summary_page(search: Search, patient: Patient) -> tuple[dict[str, Any], dict[str, Any]]:
    """One page of per-minute summaries, oldest first: at most ``_count`` minutes read from the first minute with
    readings at or after the cursor (so a page reads a bounded slice however long the searched range is)."""
    dates = request.args.getlist("date")
    raw_where = [Observation.patient_id == patient.id, *date_conditions(dates, Observation.captured_at)]
    roll_where = [ObservationMinute.patient_id == patient.id, *date_conditions(dates, ObservationMinute.minute)]
    minute_key = _minute_key(Observation.captured_at)
    minutes = select(minute_key).where(*raw_where).group_by(minute_key).subquery()
    raw_minutes = select(func.count()).select_from(minutes)  # a hash aggregate on PostgreSQL, not a sort
    total = (db().scalar(raw_minutes) or 0) + (
        db().scalar(select(func.count()).select_from(ObservationMinute).where(*roll_where)) or 0
    )
    cursor = _cursor()
    after = cursor[0] if cursor else None

    def first_at_or_after(when: datetime | None) -> datetime | None:
        raw = select(func.min(Observation.captured_at)).where(*raw_where)
        roll = select(func.min(ObservationMinute.minute)).where(*roll_where)
        if when is not None:
            raw, roll = raw.where(Observation.captured_at >= when), roll.where(ObservationMinute.minute >= when)
        found = [t for t in (db().scalar(raw), db().scalar(roll)) if t is not None]
        return min(found) if found else None

    first = first_at_or_after(after) if search.count else None
    page: list[fhir.MinuteSummary] = []
    links: dict[str, dict[str, Any]] = {"self": {"_cursor": request.args["_cursor"]} if cursor else {}, "first": {}}
    if first is not None:
        start = max(_floor_minute(first), after) if after else _floor_minute(first)
        end = start + MINUTE * search.count
        key = _minute_key(Observation.captured_at)
        sums = db().execute(
            select(
                key,
                *(func.sum(case((Observation.label4 == label, 1), else_=0)) for label in LABELS4),
                func.sum(Observation.p_angry),
                func.sum(Observation.p_happy),
                func.sum(Observation.p_relaxed),
                func.sum(Observation.p_sad),
            )
            .where(*raw_where, Observation.captured_at >= start, Observation.captured_at < end)
            .group_by(key)
        )
        rollups = db().scalars(
            select(ObservationMinute).where(
                *roll_where, ObservationMinute.minute >= start, ObservationMinute.minute < end
            )
        )
        page = fhir.aggregated_summaries(patient.id, sums, rollups)
        if first_at_or_after(end) is not None:
            links["next"] = {"_cursor": cursor_text(end)}
    body = search.bundle([fhir.minute_observation(s) for s in page], total, links)
    return body, {"minutes": total, "shown": len(page)}


@bp.route("/Observation")
@roles(*CLINICAL)
def observation_search() -> Response:
    def run() -> Response:
        search = Search("Observation", ("patient", "subject", "date", "code", "_count", "_cursor"))
        patient = _patient_param(required=True)
        code = _observation_code()
        date_conditions(request.args.getlist("date"), Observation.captured_at)  # a bad value: 400 first
        if not isinstance(patient, Patient):
            return _json(search.bundle([], 0, {"self": {}, "first": {}}))
        with statement_timeout(db(), STATEMENT_TIMEOUT_S):
            if code == fhir.RAW_CODE:
                body, detail = _raw_page(search, patient)
            else:
                body, detail = _summary_page(search, patient)
        audit(
            "fhir.observation.search",
            patient_id=patient.id,
            target=f"patient:{patient.id}",
            detail={"date": request.args.getlist("date"), "code": code, **detail},
        )
        return _json(body)

    return _search(run)


# --------------------------------------------------------------------------- Flag (alerts)


def _flag(alert: Alert) -> dict[str, Any]:
    resource = fhir.flag_resource(alert)
    count, last = (
        db()
        .execute(select(func.count(AlertEvent.id), func.max(AlertEvent.at)).where(AlertEvent.alert_id == alert.id))
        .one()
    )
    resource["meta"] = _meta(max(1, count), last or alert.opened_at)
    return resource


@bp.route("/Flag/<int:alert_id>")
@roles(*CLINICAL)
def flag_read(alert_id: int) -> Response:
    alert = db().get(Alert, alert_id)
    if alert is None:
        abort(404, description=f"no Flag {alert_id}")
    if g.user.role != "admin" and alert_scope_ward_id(db(), alert) not in user_ward_ids():
        _not_found("Flag", str(alert_id), "this alert is not in a ward you cover")
    audit("fhir.flag.view", patient_id=alert.patient_id, target=f"alert:{alert.id}")
    resource = _flag(alert)
    return _json(resource, etag=resource["meta"]["versionId"])


@bp.route("/Flag")
@roles(*CLINICAL)
def flag_search() -> Response:
    def run() -> Response:
        search = Search("Flag", ("patient", "subject", "_count", "_offset"))
        patient = _patient_param(required=False)
        query = select(Alert).order_by(Alert.opened_at.desc(), Alert.id.desc())
        if patient is False:
            query = query.where(false())
        elif isinstance(patient, Patient):
            query = query.where(Alert.patient_id == patient.id)
        if g.user.role != "admin":  # a patient's alert follows the patient (see access.alert_scope_ward_id)
            query = query.where(alert_scope_ward().in_(user_ward_ids()))
        alerts = list(db().scalars(query))
        body, page = search.offset_bundle([fhir.flag_resource(a) for a in alerts])
        by_id = {a.id: a for a in alerts}
        shown = [by_id[int(r["id"])] for r in page]
        audit(
            "fhir.flag.search",
            patient_ids=[a.patient_id for a in shown if a.patient_id is not None],
            detail={"alerts": [a.id for a in shown]},
        )
        return _json(body)

    return _search(run)
