"""Admin commands: ward, bed, patient, camera, zone, user.  One transaction per command: refused -> nothing changed."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from areya.cli.context import get_context
from areya.cli.output import emit, json_option

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from areya.audit import Actor


@contextmanager
def transaction() -> Iterator[tuple[Session, Actor]]:
    """A session in one write transaction (commit on success, roll back on any error) and the CLI actor.

    A write transaction from the start (SQLite: BEGIN IMMEDIATE) waits its turn while the pipeline writes."""
    from areya.audit import Actor
    from areya.db.engine import session_scope

    with session_scope(get_context().session_factory(), write=True) as session:
        yield session, Actor.cli()


# --------------------------------------------------------------------------- ward


@click.group()
def ward() -> None:
    """Wards."""


@ward.command("add")
@click.argument("name")
def ward_add(name: str) -> None:
    """Add a ward NAME."""
    from areya.admin import add_ward

    with transaction() as (session, actor):
        created = add_ward(session, name, actor=actor)
        click.echo(f"ward {created.name} added (id {created.id})")


@ward.command("list")
@json_option
def ward_list(as_json: bool) -> None:
    """List wards."""
    from areya.admin import list_wards

    with transaction() as (session, _actor):
        rows = [(w.id, w.name, len(w.beds), len(w.cameras)) for w in list_wards(session)]
    emit(["id", "name", "beds", "cameras"], rows, as_json)


@ward.command("delete")
@click.argument("name")
def ward_delete(name: str) -> None:
    """Delete an empty ward (no beds, no cameras)."""
    from areya.admin import delete_ward

    with transaction() as (session, actor):
        delete_ward(session, name, actor=actor)
    click.echo(f"ward {name} deleted")


# --------------------------------------------------------------------------- bed


@click.group()
def bed() -> None:
    """Beds of a ward."""


@bed.command("add")
@click.argument("ward_name", metavar="WARD")
@click.argument("labels", metavar="LABEL...", nargs=-1, required=True)
def bed_add(ward_name: str, labels: tuple[str, ...]) -> None:
    """Add beds LABEL... to WARD."""
    from areya.admin import add_bed

    with transaction() as (session, actor):
        beds = [add_bed(session, ward_name, label, actor=actor) for label in labels]
    for b in beds:
        click.echo(f"bed {ward_name}/{b.label} added (id {b.id})")


@bed.command("list")
@click.option("--ward", "ward_name", help="Only this ward.")
@json_option
def bed_list(ward_name: str | None, as_json: bool) -> None:
    """List beds and who is in them."""
    from areya.admin import list_beds

    with transaction() as (session, _actor):
        rows = [
            (b.id, b.ward.name, b.label, a.patient.mrn if a else None, a.start_at if a else None)
            for b, a in list_beds(session, ward_name)
        ]
    emit(["id", "ward", "bed", "patient", "since"], rows, as_json)


# --------------------------------------------------------------------------- patient


@click.group()
def patient() -> None:
    """Patients: admit, move, discharge, list."""


@patient.command("admit")
@click.argument("mrn")
@click.option("--name", "display_name", required=True, help="Display name shown to staff.")
@click.option("--bed", "bed_ref", metavar="WARD/BED", help="Bed to put the patient in.")
def patient_admit(mrn: str, display_name: str, bed_ref: str | None) -> None:
    """Admit patient MRN (optionally into a bed)."""
    from areya.admin import admit_patient

    with transaction() as (session, actor):
        admitted = admit_patient(session, mrn, display_name, bed_ref, actor=actor)
    click.echo(f"patient {admitted.mrn} admitted" + (f" to bed {bed_ref}" if bed_ref else ""))


@patient.command("move")
@click.argument("mrn")
@click.option("--bed", "bed_ref", metavar="WARD/BED", required=True, help="The new (free) bed.")
def patient_move(mrn: str, bed_ref: str) -> None:
    """Move patient MRN to another bed."""
    from areya.admin import move_patient

    with transaction() as (session, actor):
        move_patient(session, mrn, bed_ref, actor=actor)
    click.echo(f"patient {mrn} moved to bed {bed_ref}")


@patient.command("discharge")
@click.argument("mrn")
def patient_discharge(mrn: str) -> None:
    """Discharge patient MRN (frees the bed, resolves open alerts)."""
    from areya.admin import discharge_patient

    with transaction() as (session, actor):
        discharge_patient(session, mrn, actor=actor)
    click.echo(f"patient {mrn} discharged")


@patient.command("list")
@click.option("--all", "include_discharged", is_flag=True, help="Include discharged patients.")
@click.option("--ward", "ward_name", help="Only patients in this ward's beds.")
@json_option
def patient_list(include_discharged: bool, ward_name: str | None, as_json: bool) -> None:
    """List patients (access is audited)."""
    from areya.admin import bed_ref, list_patients

    with transaction() as (session, actor):
        rows = [
            (p.mrn, p.display_name, p.status, bed_ref(a.bed) if a else None, p.admitted_at, p.discharged_at)
            for p, a in list_patients(session, include_discharged=include_discharged, ward=ward_name, actor=actor)
        ]
    emit(["mrn", "name", "status", "bed", "admitted", "discharged"], rows, as_json)


# --------------------------------------------------------------------------- camera


@click.group()
def camera() -> None:
    """Cameras (source URLs are secrets and are shown masked)."""


DETECTOR_OPTIONS_HELP = (
    "This camera's face detector options, laid over the detector_options setting: "
    "'name=value,...' as there, e.g. 'rotations=90,min_face_px=40' (a camera mounted on its "
    "side)."
)


def _detector_options(text: str | None) -> str | None:
    """``--detector-options`` checked against the configured backend: a bad option or value is a usage error
    (exit 2, naming the valid ones); returned in the stored form, ``""`` for none."""
    if text is None:
        return None
    from areya.admin import check_detector_options
    from areya.errors import Invalid

    try:
        return check_detector_options(text, get_context().settings.detector) or ""
    except Invalid as exc:
        raise click.BadParameter(str(exc).removeprefix("detector options: "), param_hint="--detector-options") from None


@camera.command("add")
@click.option("--ward", "ward_name", required=True)
@click.option("--name", required=True)
@click.option(
    "--url",
    required=True,
    help="rtsp://user:pass@host/stream, http(s)://host/mjpg (MJPEG), a video "
    "file (/videos/ward.mp4 or file:///videos/ward.mp4?loop=1), device:N or synthetic:[options].",
)
@click.option(
    "--loop/--no-loop",
    default=None,
    help="Video files: start again at the end (default: play once; a file that ends is 'ended', not offline).",
)
@click.option("--fps", type=float, default=None, help="Frames per second to sample (default: default_sample_fps).")
@click.option("--disabled", is_flag=True, help="Register the camera disabled.")
@click.option("--detector-options", "detector_options", metavar="NAME=VALUE,...", help=DETECTOR_OPTIONS_HELP)
def camera_add(
    ward_name: str,
    name: str,
    url: str,
    loop: bool | None,
    fps: float | None,
    disabled: bool,
    detector_options: str | None,
) -> None:
    """Register a camera in a ward (a video file must exist and be readable; it is stored as file:///abs/path)."""
    from areya.admin import add_camera
    from areya.source_url import check_file_source

    app = get_context()
    options = _detector_options(detector_options)
    sample_fps = app.settings.default_sample_fps if fps is None else fps
    url = check_file_source(_allowed_url(app.settings, url), loop=loop)
    with transaction() as (session, actor):
        cam = add_camera(
            session,
            ward_name,
            name,
            url,
            sample_fps,
            enabled=not disabled,
            detector_options=options,
            detector=app.settings.detector,
            actor=actor,
        )
        extra = f", detector options {cam.detector_options}" if cam.detector_options else ""
        click.echo(
            f"camera {ward_name}/{cam.name} added (id {cam.id}, {cam.masked_url}, {cam.sample_fps:g} fps{extra})"
        )


def _allowed_url(settings: Any, url: str) -> str:
    """The camera URL policy (areya.camera.url_policy) as the dashboard applies it, but trusted with files and
    synthetic story paths (the operator of this host): a network host Areya may not connect to is refused."""
    from areya.camera.url_policy import CameraUrlPolicy, CameraUrlRefused

    try:
        return CameraUrlPolicy.from_settings(settings).check(url, trusted=True, unresolved_ok=True)
    except CameraUrlRefused as exc:
        raise click.ClickException(str(exc)) from None


@camera.command("edit")
@click.argument("ref", metavar="WARD/CAMERA|ID")
@click.option("--url", default=None, help="A new source URL (as for `camera add`).")
@click.option("--loop/--no-loop", default=None, help="Video files: start again at the end.")
@click.option("--fps", type=float, default=None, help="Frames per second to sample.")
@click.option(
    "--detector-options",
    "detector_options",
    metavar="NAME=VALUE,...",
    help=DETECTOR_OPTIONS_HELP + " Replaces the camera's previous ones; '' removes them.",
)
def camera_edit(ref: str, url: str | None, loop: bool | None, fps: float | None, detector_options: str | None) -> None:
    """Change a camera's source URL, sample fps or face detector options (what is not given stays)."""
    from areya.admin import camera_ref, update_camera
    from areya.source_url import check_file_source

    app = get_context()
    options = _detector_options(detector_options)
    if url is not None:
        url = check_file_source(_allowed_url(app.settings, url), loop=loop)
    elif loop is not None:
        raise click.UsageError("--loop/--no-loop go with --url")
    if url is None and fps is None and options is None:
        raise click.UsageError("nothing to change: give --url, --fps or --detector-options")
    with transaction() as (session, actor):
        cam = update_camera(
            session,
            ref,
            source_url=url,
            sample_fps=fps,
            detector_options=options,
            detector=app.settings.detector,
            actor=actor,
        )
        click.echo(
            f"camera {camera_ref(cam)} saved ({cam.masked_url}, {cam.sample_fps:g} fps, detector options "
            f"{cam.detector_options or '(global)'})"
        )


@camera.command("list")
@click.option("--ward", "ward_name", help="Only this ward.")
@json_option
def camera_list(ward_name: str | None, as_json: bool) -> None:
    """List cameras with health (URLs masked)."""
    from areya.admin import list_cameras

    with transaction() as (session, _actor):
        rows = [
            (
                c.id,
                c.ward.name,
                c.name,
                c.masked_url,
                c.sample_fps,
                c.enabled,
                c.health_status,
                c.last_frame_at,
                len(c.zones),
                c.detector_options,
            )
            for c in list_cameras(session, ward_name)
        ]
    emit(
        ["id", "ward", "name", "url", "fps", "enabled", "health", "last_frame", "zones", "detector_options"],
        rows,
        as_json,
    )


def _camera_toggle(ref: str, enabled: bool) -> None:
    from areya.admin import camera_ref, set_camera_enabled

    with transaction() as (session, actor):
        cam = set_camera_enabled(session, ref, enabled, actor=actor)
        click.echo(f"camera {camera_ref(cam)} {'enabled' if enabled else 'disabled'}")


@camera.command("enable")
@click.argument("ref", metavar="WARD/CAMERA|ID")
def camera_enable(ref: str) -> None:
    """Enable a camera."""
    _camera_toggle(ref, True)


@camera.command("disable")
@click.argument("ref", metavar="WARD/CAMERA|ID")
def camera_disable(ref: str) -> None:
    """Disable a camera (its ingestor stops sampling it)."""
    _camera_toggle(ref, False)


@camera.command("delete")
@click.argument("ref", metavar="WARD/CAMERA|ID")
def camera_delete(ref: str) -> None:
    """Delete a camera and its zones."""
    from areya.admin import delete_camera

    with transaction() as (session, actor):
        delete_camera(session, ref, actor=actor)
    click.echo(f"camera {ref} deleted")


# --------------------------------------------------------------------------- zone


@click.group()
def zone() -> None:
    """Bed zones: where each bed is in a camera's image (normalized 0..1 coordinates)."""


@zone.command("set", context_settings={"ignore_unknown_options": True})
@click.option("--camera", "camera_ref", metavar="WARD/CAMERA|ID", required=True)
@click.option("--bed", "bed_ref", metavar="WARD/BED", required=True)
@click.option(
    "--pillow",
    "pillow",
    nargs=4,
    type=float,
    default=None,
    metavar="X0 Y0 X1 Y1",
    help="The head-of-bed (pillow) region inside the zone, same coordinates (default: the top of the zone).",
)
@click.argument("coords", nargs=4, type=float, metavar="X0 Y0 X1 Y1")
def zone_set(
    camera_ref: str,
    bed_ref: str,
    pillow: tuple[float, float, float, float] | None,
    coords: tuple[float, float, float, float],
) -> None:
    """Set (create or replace) a bed's zone: top-left X0 Y0, bottom-right X1 Y1, each in [0, 1]; with --pillow,
    where the patient's head lies in it (faces there are taken for the patient; see docs/bedside-roles.md)."""
    from areya.admin import set_zone

    with transaction() as (session, actor):
        set_zone(session, camera_ref, bed_ref, *coords, head=pillow or None, actor=actor)
    text = " ".join(f"{c:g}" for c in coords)
    where = f"; pillow {' '.join(f'{c:g}' for c in pillow)}" if pillow else "; pillow: the top of the zone (default)"
    click.echo(f"zone of bed {bed_ref} on camera {camera_ref} set to {text}{where}")


@zone.command("list")
@click.option("--camera", "camera_ref", metavar="WARD/CAMERA|ID", help="Only this camera.")
@json_option
def zone_list(camera_ref: str | None, as_json: bool) -> None:
    """List bed zones."""
    from areya.admin import camera_ref as cam_ref
    from areya.admin import list_zones

    with transaction() as (session, _actor):
        rows = [
            (cam_ref(z.camera), z.bed.label, z.x0, z.y0, z.x1, z.y1, _pillow_text(z.head))
            for z in list_zones(session, camera_ref)
        ]
    emit(["camera", "bed", "x0", "y0", "x1", "y1", "pillow"], rows, as_json)


def _pillow_text(head: tuple[float, float, float, float] | None) -> str:
    return " ".join(f"{c:g}" for c in head) if head is not None else "default"


@zone.command("delete")
@click.option("--camera", "camera_ref", metavar="WARD/CAMERA|ID", required=True)
@click.option("--bed", "bed_ref", metavar="WARD/BED", required=True)
def zone_delete(camera_ref: str, bed_ref: str) -> None:
    """Delete a bed's zone on a camera."""
    from areya.admin import delete_zone

    with transaction() as (session, actor):
        delete_zone(session, camera_ref, bed_ref, actor=actor)
    click.echo(f"zone of bed {bed_ref} on camera {camera_ref} deleted")


# --------------------------------------------------------------------------- user


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    password = click.prompt("Password", hide_input=True)
    if click.prompt("Repeat for confirmation", hide_input=True) != password:  # click's own check says "Error: ..."
        raise click.ClickException("the two passwords do not match")
    return password


@click.group()
def user() -> None:
    """Dashboard users (nurse, doctor, admin)."""


@user.command("add")
@click.argument("username")
@click.option("--role", required=True, help="nurse, doctor or admin.")
@click.option("--ward", "wards", multiple=True, help="Ward the user covers (repeatable).")
@click.option("--email", help="Address for alert e-mails (validated).")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
def user_add(username: str, role: str, wards: tuple[str, ...], email: str | None, password_stdin: bool) -> None:
    """Add a user (password prompted twice unless --password-stdin)."""
    from areya.admin import add_user
    from areya.admin.users import check_role, clean_email, set_user_email

    check_role(role)  # fail before asking for a password
    clean_email(email)
    password = _read_password(password_stdin)
    with transaction() as (session, actor):
        created = add_user(session, username, role, password, list(wards), actor=actor)
        if email:
            set_user_email(session, created.username, email, actor=actor)
        click.echo(f"user {created.username} ({created.role}) added")


@user.command("list")
@json_option
def user_list(as_json: bool) -> None:
    """List users."""
    from areya.admin import list_users

    with transaction() as (session, _actor):
        rows = [
            (u.id, u.username, u.role, u.active, ",".join(w.name for w in u.wards) or None, u.email, u.last_login_at)
            for u in list_users(session)
        ]
    emit(["id", "username", "role", "active", "wards", "email", "last_login"], rows, as_json)


@user.command("deactivate")
@click.argument("username")
def user_deactivate(username: str) -> None:
    """Deactivate a user (they can no longer log in; history is kept)."""
    from areya.admin import set_user_active

    with transaction() as (session, actor):
        set_user_active(session, username, False, actor=actor)
    click.echo(f"user {username} deactivated")


@user.command("activate")
@click.argument("username")
def user_activate(username: str) -> None:
    """Re-activate a user."""
    from areya.admin import set_user_active

    with transaction() as (session, actor):
        set_user_active(session, username, True, actor=actor)
    click.echo(f"user {username} activated")


@user.command("passwd")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
def user_passwd(username: str, password_stdin: bool) -> None:
    """Set a user's password."""
    from areya.admin import get_user, set_password

    with transaction() as (session, _actor):
        get_user(session, username)  # fail before asking for a password
    password = _read_password(password_stdin)
    with transaction() as (session, actor):
        set_password(session, username, password, actor=actor)
    click.echo(f"password of {username} changed")


@user.command("email")
@click.argument("username")
@click.argument("email", required=False)
@click.option("--clear", is_flag=True, help="Remove the address (no alert e-mails for this user).")
def user_email(username: str, email: str | None, clear: bool) -> None:
    """Set the e-mail address USERNAME's alert e-mails go to (validated), or --clear it."""
    from areya.admin.users import set_user_email
    from areya.errors import Invalid

    if clear == bool(email):
        raise Invalid("give an e-mail address or --clear")
    with transaction() as (session, actor):
        changed = set_user_email(session, username, None if clear else email, actor=actor)
        address = changed.email
    click.echo(f"e-mail of {username}: {address or '(none)'}")


@user.command("role")
@click.argument("username")
@click.argument("role")
def user_role(username: str, role: str) -> None:
    """Change USERNAME's role (nurse, doctor, admin); audited, their sessions end."""
    from areya.admin.users import set_user_role

    with transaction() as (session, actor):
        set_user_role(session, username, role, actor=actor)
    click.echo(f"user {username} is now a {role.strip().lower()}")


@user.command("wards")
@click.argument("username")
@click.argument("wards", nargs=-1)
def user_wards(username: str, wards: tuple[str, ...]) -> None:
    """Set the wards USERNAME covers (none given: no ward)."""
    from areya.admin import set_user_wards

    with transaction() as (session, actor):
        set_user_wards(session, username, list(wards), actor=actor)
    click.echo(f"user {username} covers: {', '.join(wards) or '(no ward)'}")
