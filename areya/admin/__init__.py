"""Domain operations used by both the CLI and the web app.

Each operation takes a SQLAlchemy Session, validates its input, changes rows, writes an AuditEvent and flushes —
it never commits: the caller owns the transaction (one per command / request), so a refused operation leaves the
database unchanged.  Refusals raise :class:`AdminError` (NotFound / Conflict / Invalid) with one clear sentence.
"""

from areya.admin.cameras import (
    add_camera,
    check_detector_options,
    check_zone,
    delete_camera,
    delete_zone,
    list_cameras,
    list_zones,
    set_camera_enabled,
    set_zone,
    update_camera,
)
from areya.admin.patients import (
    admit_patient,
    bed_occupant,
    current_assignment,
    discharge_patient,
    list_patients,
    move_patient,
    patient_in_bed_at,
)
from areya.admin.refs import bed_ref, camera_ref, get_bed, get_camera, get_patient, get_user, get_ward
from areya.admin.users import (
    add_user,
    authenticate,
    hash_password,
    list_users,
    set_password,
    set_user_active,
    set_user_wards,
    verify_password,
)
from areya.admin.wards import add_bed, add_ward, delete_bed, delete_ward, list_beds, list_wards
from areya.audit import SYSTEM, Actor, record
from areya.errors import AdminError, Conflict, Invalid, NotFound

__all__ = [
    "SYSTEM",
    "Actor",
    "AdminError",
    "Conflict",
    "Invalid",
    "NotFound",
    "add_bed",
    "add_camera",
    "add_user",
    "add_ward",
    "admit_patient",
    "authenticate",
    "bed_occupant",
    "bed_ref",
    "camera_ref",
    "check_detector_options",
    "check_zone",
    "current_assignment",
    "delete_bed",
    "delete_camera",
    "delete_ward",
    "delete_zone",
    "discharge_patient",
    "get_bed",
    "get_camera",
    "get_patient",
    "get_user",
    "get_ward",
    "hash_password",
    "list_beds",
    "list_cameras",
    "list_patients",
    "list_users",
    "list_wards",
    "list_zones",
    "move_patient",
    "patient_in_bed_at",
    "record",
    "set_camera_enabled",
    "set_password",
    "set_user_active",
    "set_user_wards",
    "set_zone",
    "update_camera",
    "verify_password",
]
