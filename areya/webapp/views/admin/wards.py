"""Admin: wards and beds."""

from __future__ import annotations

import re

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from areya.admin import add_bed, add_ward, bed_ref, delete_bed, delete_ward, list_beds, list_wards
from areya.db.models import Bed, Ward
from areya.errors import AdminError
from areya.webapp.forms import Form
from areya.webapp.security import ADMIN, roles
from areya.webapp.services import actor, db
from areya.webapp.views.admin.blueprint import bp
from areya.webapp.views.admin.common import forms_for, only, run_operation

HINTS = (("bed", "labels"), ("ward", "name"))


def _page(forms: dict[str, Form] | None = None, status: int = 200, error: str | None = None) -> tuple[str, int]:
    session = db()
    beds = list_beds(session)
    by_ward: dict[int, list] = {}
    for bed, assignment in beds:
        by_ward.setdefault(bed.ward_id, []).append((bed, assignment))
    page_forms = forms or forms_for("ward", "beds")
    return render_template(
        "admin/wards.html", wards=list_wards(session), beds=by_ward, forms=page_forms, error=error
    ), status


@bp.route("/wards", methods=["GET", "POST"])
@roles(*ADMIN)
def wards() -> Response | tuple[str, int]:
    if request.method == "GET":
        return _page()
    form = Form(request.form)
    name = form.text("name", "ward name", max_len=100)
    ward = run_operation(form, lambda: add_ward(db(), name, actor=actor()), HINTS, "name")
    if ward is None:
        return _page(only(form, "ward", forms_for("ward", "beds")), 400)
    flash(f"Ward {ward.name} added.", "success")
    return redirect(url_for("admin.wards"))


@bp.route("/wards/beds", methods=["POST"])
@roles(*ADMIN)
def add_beds() -> Response | tuple[str, int]:
    form = Form(request.form)
    ward_id = form.integer("ward_id", "ward")
    labels_text = form.text("labels", "bed labels", max_len=1000)
    labels = [lab for lab in re.split(r"[\s,;]+", labels_text) if lab]
    if form.ok and not labels:
        form.error("labels", "give one or more bed labels, e.g. 1 2 3")
    ward = db().get(Ward, ward_id) if ward_id is not None else None
    if form.ok and ward is None:
        form.error("ward_id", "choose a ward")

    def op() -> list[Bed]:
        assert ward is not None
        return [add_bed(db(), ward.name, label, actor=actor()) for label in labels]

    added = run_operation(form, op, HINTS, "labels")
    if added is None:
        return _page(only(form, "beds", forms_for("ward", "beds")), 400)
    flash(f"Added {len(added)} bed(s) to {ward.name if ward else ''}.", "success")
    return redirect(url_for("admin.wards"))


@bp.route("/wards/<int:ward_id>/delete", methods=["POST"])
@roles(*ADMIN)
def remove_ward(ward_id: int) -> Response | tuple[str, int]:
    ward = db().get(Ward, ward_id)
    if ward is None:
        return _page(status=404, error=f"no ward {ward_id}")
    try:
        delete_ward(db(), ward.name, actor=actor())
        db().commit()
    except AdminError as exc:
        db().rollback()
        return _page(status=409, error=str(exc))
    flash(f"Ward {ward.name} deleted.", "success")
    return redirect(url_for("admin.wards"))


@bp.route("/beds/<int:bed_id>/delete", methods=["POST"])
@roles(*ADMIN)
def remove_bed(bed_id: int) -> Response | tuple[str, int]:
    bed = db().get(Bed, bed_id)
    if bed is None:
        return _page(status=404, error=f"no bed {bed_id}")
    ref = bed_ref(bed)
    try:
        delete_bed(db(), ref, actor=actor())
        db().commit()
    except AdminError as exc:
        db().rollback()
        return _page(status=409, error=str(exc))
    flash(f"Bed {ref} deleted.", "success")
    return redirect(url_for("admin.wards"))
