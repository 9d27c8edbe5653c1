"""Admin: patients — admit (optionally into a bed), move to another bed, discharge."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from areya.admin import admit_patient, bed_ref, discharge_patient, list_beds, list_patients, move_patient
from areya.db.engine import begin_write
from areya.db.models import Bed, Patient
from areya.webapp.forms import Form
from areya.webapp.security import ADMIN, roles
from areya.webapp.services import actor, db
from areya.webapp.views.admin.blueprint import bp
from areya.webapp.views.admin.common import run_operation

HINTS = (("mrn", "mrn"), ("patient name", "display_name"), ("bed", "bed_id"), ("discharg", "mrn"))


def _page(
    admit: Form | None = None, row_errors: dict[int, str] | None = None, status: int = 200, error: str | None = None
) -> tuple[str, int]:
    session = begin_write(db())  # the list is audited: it reads, then writes (see areya.db.engine)
    include_discharged = request.args.get("all") == "1"
    rows = list_patients(session, include_discharged=include_discharged, actor=actor())
    session.commit()  # the list view is audited (patient.list)
    beds = list_beds(session)
    free_beds = [bed for bed, assignment in beds if assignment is None]
    return render_template(
        "admin/patients.html",
        rows=rows,
        free_beds=free_beds,
        bed_ref=bed_ref,
        admit=admit or Form(),
        row_errors=row_errors or {},
        include_discharged=include_discharged,
        error=error,
    ), status


def _bed_ref(form: Form, field: str, required: bool) -> str | None:
    bed_id = form.integer(field, "bed", required=required)
    if bed_id is None:
        return None
    bed = db().get(Bed, bed_id)
    if bed is None:
        form.error(field, "choose a bed from the list")
        return None
    return bed_ref(bed)


@bp.route("/patients", methods=["GET", "POST"])
@roles(*ADMIN)
def patients() -> Response | tuple[str, int]:
    if request.method == "GET":
        return _page()
    form = Form(request.form)
    mrn = form.text("mrn", "MRN", max_len=64)
    name = form.text("display_name", "patient name", max_len=200)
    bed = _bed_ref(form, "bed_id", required=False)
    patient = run_operation(form, lambda: admit_patient(db(), mrn, name, bed, actor=actor()), HINTS, "mrn")
    if patient is None:
        return _page(form, status=400)
    flash(f"{patient.display_name} ({patient.mrn}) admitted" + (f" to bed {bed}." if bed else "."), "success")
    return redirect(url_for("admin.patients"))


def _patient(patient_id: int) -> Patient | None:
    return db().get(Patient, patient_id)


@bp.route("/patients/<int:patient_id>/move", methods=["POST"])
@roles(*ADMIN)
def move(patient_id: int) -> Response | tuple[str, int]:
    patient = _patient(patient_id)
    if patient is None:
        return _page(status=404, error=f"no patient {patient_id}")
    form = Form(request.form)
    bed = _bed_ref(form, "bed_id", required=True)
    run_operation(form, lambda: move_patient(db(), patient.mrn, bed or "", actor=actor()), HINTS, "bed_id")
    if not form.ok:
        return _page(row_errors={patient.id: next(iter(form.errors.values()))}, status=400)
    flash(f"{patient.display_name} moved to bed {bed}.", "success")
    return redirect(url_for("admin.patients"))


@bp.route("/patients/<int:patient_id>/discharge", methods=["POST"])
@roles(*ADMIN)
def discharge(patient_id: int) -> Response | tuple[str, int]:
    patient = _patient(patient_id)
    if patient is None:
        return _page(status=404, error=f"no patient {patient_id}")
    form = Form(request.form)
    run_operation(form, lambda: discharge_patient(db(), patient.mrn, actor=actor()), HINTS, "mrn")
    if not form.ok:
        return _page(row_errors={patient.id: next(iter(form.errors.values()))}, status=409)
    flash(f"{patient.display_name} discharged.", "success")
    return redirect(url_for("admin.patients"))
