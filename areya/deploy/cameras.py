"""Declarative camera registration: a TOML file (a Kubernetes Secret, a root-only file) -> the cameras table.

Camera source URLs carry credentials, so a deployment keeps them in a secret and syncs them into the database
(where every view masks them).  The file lists cameras; each is added if missing, its URL / fps / enabled state
updated if different, left alone otherwise.  Cameras not in the file are never touched (the dashboard may have
added them).  Missing wards are created.  One transaction: any bad entry -> nothing changes.

    [[camera]]
    ward = "ICU"
    name = "cam-1"
    url = "rtsp://user:secret@10.0.0.5/stream"
    fps = 2.0          # optional (default: the default_sample_fps setting)
    enabled = true     # optional
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from areya.audit import SYSTEM, Actor
from areya.camera.url_policy import CameraUrlPolicy
from areya.errors import Invalid

_KEYS = {"ward", "name", "url", "fps", "enabled"}


@dataclass(frozen=True)
class CameraSpec:
    ward: str
    name: str
    url: str
    fps: float | None = None
    enabled: bool = True


def read_camera_file(path: str | Path) -> list[CameraSpec]:
    """Parse and check the file; :class:`Invalid` names the entry and the problem (never the URL)."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise Invalid(f"camera file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise Invalid(f"camera file {path}: invalid TOML: {exc}") from None
    extra = set(data) - {"camera"}
    if extra:
        raise Invalid(f"camera file {path}: unknown top-level key(s) {sorted(extra)} (use [[camera]] tables)")
    entries = data.get("camera", [])
    if not isinstance(entries, list):
        raise Invalid(f"camera file {path}: 'camera' must be an array of tables ([[camera]])")
    specs: list[CameraSpec] = []
    seen: set[tuple[str, str]] = set()
    for i, entry in enumerate(entries, 1):
        specs.append(_spec(entry, f"camera file {path}: entry {i}"))
        key = (specs[-1].ward, specs[-1].name)
        if key in seen:
            raise Invalid(f"camera file {path}: entry {i}: camera {key[0]}/{key[1]} listed twice")
        seen.add(key)
    return specs


def _spec(entry: Any, where: str) -> CameraSpec:
    if not isinstance(entry, dict):
        raise Invalid(f"{where}: must be a table")
    unknown = set(entry) - _KEYS
    if unknown:
        raise Invalid(f"{where}: unknown key(s) {sorted(unknown)}")
    for key in ("ward", "name", "url"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise Invalid(f"{where}: '{key}' is required (a non-empty string)")
    fps = entry.get("fps")
    if fps is not None and (isinstance(fps, bool) or not isinstance(fps, int | float)):
        raise Invalid(f"{where}: 'fps' must be a number")
    enabled = entry.get("enabled", True)
    if not isinstance(enabled, bool):
        raise Invalid(f"{where}: 'enabled' must be true or false")
    return CameraSpec(
        entry["ward"].strip(),
        entry["name"].strip(),
        entry["url"].strip(),
        float(fps) if fps is not None else None,
        enabled,
    )


def sync_cameras(
    session: Session,
    specs: list[CameraSpec],
    *,
    default_fps: float,
    actor: Actor = SYSTEM,
    url_policy: CameraUrlPolicy | None = None,
) -> list[tuple[str, str]]:
    """Apply ``specs``; returns (camera ref, what happened) per camera: added / updated / unchanged / ward added.
    ``url_policy``: every URL is checked against it first (as the command line's: files and story paths allowed);
    one refused changes nothing."""
    from areya.admin.cameras import add_camera, set_camera_enabled, update_camera
    from areya.admin.wards import add_ward
    from areya.camera.url_policy import CameraUrlRefused
    from areya.db.models import Camera, Ward

    if url_policy is not None:
        for spec in specs:
            try:
                url_policy.check(spec.url, trusted=True, unresolved_ok=True)
            except CameraUrlRefused as exc:
                raise Invalid(f"camera {spec.ward}/{spec.name}: {exc}") from None
    report: list[tuple[str, str]] = []
    for spec in specs:
        ward = session.scalar(select(Ward).where(Ward.name == spec.ward))
        if ward is None:
            ward = add_ward(session, spec.ward, actor=actor)
            report.append((ward.name, "ward added"))
        ref = f"{ward.name}/{spec.name}"
        camera = session.scalar(select(Camera).where(Camera.ward_id == ward.id, Camera.name == spec.name))
        if camera is None:
            add_camera(
                session, ward.name, spec.name, spec.url, spec.fps or default_fps, enabled=spec.enabled, actor=actor
            )
            report.append((ref, "added"))
            continue
        changes: dict[str, Any] = {}
        if camera.source_url != spec.url:
            changes["source_url"] = spec.url
        if spec.fps is not None and camera.sample_fps != spec.fps:
            changes["sample_fps"] = spec.fps
        if changes:
            update_camera(session, ref, actor=actor, **changes)
        if camera.enabled != spec.enabled:
            set_camera_enabled(session, ref, spec.enabled, actor=actor)
            changes["enabled"] = spec.enabled
        what = ", ".join(k.replace("source_url", "url").replace("sample_fps", "fps") for k in changes)
        report.append((ref, f"updated ({what})" if changes else "unchanged"))
    return report
