"""Name validation and look-ups by the references operators type: ``WARD``, ``WARD/BED``, ``WARD/CAMERA``, ``MRN``."""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from areya.db.models import Bed, Camera, Patient, User, Ward
from areya.errors import Conflict, Invalid, NotFound

_NAME_RE = re.compile(r"[^/\x00-\x1f\x7f]+")
_MRN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_USERNAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


# control (Cc), format (Cf: bidirectional overrides and isolates U+202A-202E / U+2066-2069, zero-width characters,
# soft hyphen), surrogate (Cs), private-use (Co), unassigned (Cn) and line/paragraph separators (Zl, Zp): a name
# with one of them can display differently from what it is (a reversed MRN, an invisible difference)
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def hidden_characters(text: str) -> list[str]:
    """The code points of ``text`` that are invisible or change how text around them displays (U+XXXX)."""
    return [f"U+{ord(ch):04X}" for ch in text if unicodedata.category(ch) in HIDDEN_CATEGORIES]


def clean_name(value: str, what: str, max_len: int) -> str:
    """Stripped name, 1..max_len chars, no '/', control, bidirectional-override or other invisible characters."""
    if not isinstance(value, str):
        raise Invalid(f"{what} must be text")
    name = value.strip()
    if not name:
        raise Invalid(f"{what} must not be empty")
    if len(name) > max_len:
        raise Invalid(f"{what} must be at most {max_len} characters")
    if not _NAME_RE.fullmatch(name):
        raise Invalid(f"{what} {name!r} must not contain '/' or control characters")
    hidden = hidden_characters(name)
    if hidden:
        raise Invalid(f"{what} must not contain invisible or text-direction characters ({', '.join(hidden[:5])})")
    return name


def clean_mrn(value: str) -> str:
    mrn = (value or "").strip()
    if not _MRN_RE.fullmatch(mrn):
        raise Invalid(f"MRN {value!r} must be 1-64 letters, digits, '.', '_' or '-' (starting with a letter or digit)")
    return mrn


def clean_username(value: str) -> str:
    name = (value or "").strip().lower()
    if not _USERNAME_RE.fullmatch(name):
        raise Invalid(f"username {value!r} must be 1-64 of a-z, 0-9, '.', '_', '-' (starting with a letter or digit)")
    return name


def split_ref(ref: str, what: str) -> tuple[str, str]:
    """``"WARD/NAME"`` -> ("WARD", "NAME")."""
    ward, sep, name = (ref or "").strip().partition("/")
    if not sep or not ward.strip() or not name.strip() or "/" in name:
        raise Invalid(f"{what} must be given as WARD/{what.upper()}, got {ref!r}")
    return ward.strip(), name.strip()


def get_ward(session: Session, name: str) -> Ward:
    ward = session.scalar(select(Ward).where(Ward.name == (name or "").strip()))
    if ward is None:
        raise NotFound(f"unknown ward {name!r}")
    return ward


def get_bed(session: Session, ref: str) -> Bed:
    """A bed by ``WARD/BED``."""
    ward_name, label = split_ref(ref, "bed")
    ward = get_ward(session, ward_name)
    bed = session.scalar(select(Bed).where(Bed.ward_id == ward.id, Bed.label == label))
    if bed is None:
        raise NotFound(f"unknown bed {label!r} in ward {ward.name!r}")
    return bed


def get_camera(session: Session, ref: str) -> Camera:
    """A camera by ``WARD/CAMERA`` or by numeric id."""
    ref = (ref or "").strip()
    if ref.isdigit():
        camera = session.get(Camera, int(ref))
        if camera is None:
            raise NotFound(f"unknown camera id {ref}")
        return camera
    ward_name, name = split_ref(ref, "camera")
    ward = get_ward(session, ward_name)
    camera = session.scalar(select(Camera).where(Camera.ward_id == ward.id, Camera.name == name))
    if camera is None:
        raise NotFound(f"unknown camera {name!r} in ward {ward.name!r}")
    return camera


def get_patient(session: Session, mrn: str) -> Patient:
    patient = session.scalar(select(Patient).where(Patient.mrn == (mrn or "").strip()))
    if patient is None:
        raise NotFound(f"unknown patient MRN {mrn!r}")
    return patient


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == (username or "").strip().lower()))
    if user is None:
        raise NotFound(f"unknown user {username!r}")
    return user


def bed_ref(bed: Bed) -> str:
    return f"{bed.ward.name}/{bed.label}"


def camera_ref(camera: Camera) -> str:
    return f"{camera.ward.name}/{camera.name}"


def flush(session: Session, what: str) -> None:
    """Flush, turning a constraint violation (e.g. a concurrent duplicate) into a clear Conflict."""
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(f"{what}: refused by a database constraint ({_constraint_hint(exc)})") from None


def _constraint_hint(exc: IntegrityError) -> str:
    text = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    return text[:200]
