"""Per-camera face detector options (issue 14): checked against the configured backend (bad name or value: a clear
error, ``areya camera add/edit`` exit 2, nothing saved; global-only options refused per camera), stored in one
canonical form and audited; the migration adds and removes the column without touching cameras or zones; the
worker's :class:`CameraDetectors` makes one detector per distinct effective option set; ``areya predict --camera``
uses them too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.orm import Session

from areya import admin
from areya.cli import cli
from areya.config import Settings
from areya.db.engine import create_db_engine
from areya.db.models import AuditEvent, Camera
from areya.detectors import FaceBox, FaceDetector, detector_from_settings
from areya.detectors.cameras import CameraDetectors, options_key
from areya.detectors.options import camera_options_text, check_camera_options
from areya.errors import Invalid

CAM_URL = "rtsp://admin:pw123@10.1.1.1:554/live"


# ------------------------------------------------------------------------------------------------ checks
def test_camera_options_are_checked_and_stored_in_one_form() -> None:
    assert camera_options_text("blazeface", "rotations=90, min_face_px=40") == "rotations=90,min_face_px=40"
    assert camera_options_text("blazeface", "zone_mode=Zones,rotations=0/270,tiles=2") == (
        "zone_mode=zones,rotations=0/270,tiles=2"
    )
    assert camera_options_text("haar", "min_neighbors=3,equalize=yes") == "min_neighbors=3,equalize=true"
    assert camera_options_text("blazeface", "") is None and camera_options_text("blazeface", " ,") is None
    assert check_camera_options("blazeface", "rotations=90") == {"rotations": (90,)}


@pytest.mark.parametrize(
    ("backend", "value", "fragments"),
    [
        ("blazeface", "rotation=90", ["unknown option 'rotation' for detector 'blazeface'", "valid options: "]),
        ("blazeface", "rotations=ninety", ["option 'rotations'", "angles in degrees like 0/90/270"]),
        ("blazeface", "min_face_px=-3", ["option 'min_face_px'", "[0, 4096], got -3"]),
        ("haar", "tiles=2", ["unknown option 'tiles' for detector 'haar'", "scale_factor"]),
        ("blazeface", "rotations", ["must be 'name=value' pairs"]),
        ("blazeface", "tiles=1,tiles=2", ["option 'tiles' given twice"]),
        (
            "blazeface",
            "model_path=/etc/passwd",
            ["option 'model_path' cannot be set per camera", "AREYA_DETECTOR_OPTIONS", "per-camera options: min_score"],
        ),
        ("blazeface", "num_threads=8", ["option 'num_threads' cannot be set per camera"]),
        ("haar", "cascade_file=/tmp/x.xml", ["option 'cascade_file' cannot be set per camera"]),
        ("blazeface", "tiles=2," * 200, ["at most 1000 characters"]),
    ],
)
def test_bad_camera_options_are_a_clear_error(backend: str, value: str, fragments: list[str]) -> None:
    with pytest.raises(ValueError) as info:
        check_camera_options(backend, value)
    for fragment in fragments:
        assert fragment in str(info.value)
    listed = str(info.value).partition("options: ")[2]
    assert not {"num_threads", "model_path", "cascade_file"} & set(listed.split(", "))


# ------------------------------------------------------------------------------------------- admin (DB)
def _ward(session: Session) -> None:
    admin.add_ward(session, "ICU")
    admin.add_bed(session, "ICU", "1")


def test_admin_add_and_update_validate_store_and_audit(session: Session) -> None:
    _ward(session)
    with pytest.raises(Invalid, match=r"^detector options: unknown option 'rotation' for detector 'blazeface'"):
        admin.add_camera(session, "ICU", "cam", CAM_URL, detector_options="rotation=90", detector="blazeface")
    session.rollback()
    assert session.scalar(select(Camera)) is None  # refused: nothing saved
    _ward(session)
    cam = admin.add_camera(
        session, "ICU", "cam", CAM_URL, detector_options="rotations=90 , min_face_px=40", detector="blazeface"
    )
    plain = admin.add_camera(session, "ICU", "plain", CAM_URL, detector_options="  ", detector="blazeface")
    assert (cam.detector_options, plain.detector_options) == ("rotations=90,min_face_px=40", None)
    with pytest.raises(Invalid, match="option 'tiles' of detector 'blazeface' must be an integer"):
        admin.update_camera(session, "ICU/cam", detector_options="tiles=many", detector="blazeface")
    with pytest.raises(Invalid, match="unknown option 'tiles' for detector 'haar'; valid options: scale") as info:
        admin.update_camera(session, "ICU/cam", detector_options="rotations=90,tiles=2", detector="haar")
    assert "cascade_file" not in str(info.value)  # global-only: not offered per camera
    assert cam.detector_options == "rotations=90,min_face_px=40"  # a refused change leaves the value
    admin.update_camera(session, "ICU/cam", sample_fps=1.0)  # options not given: unchanged
    assert cam.detector_options == "rotations=90,min_face_px=40"
    admin.update_camera(session, "ICU/cam", detector_options="min_face_px=32", detector="blazeface")
    admin.update_camera(session, "ICU/cam", detector_options="", detector="blazeface")
    session.commit()
    assert session.get(Camera, cam.id).detector_options is None
    events = session.execute(
        select(AuditEvent.action, AuditEvent.detail)
        .where(AuditEvent.target == f"camera:{cam.id}")
        .order_by(AuditEvent.id)
    ).all()
    assert events[0][0] == "camera.add" and events[0][1]["detector_options"] == "rotations=90,min_face_px=40"
    changes = [d.get("detector_options") for a, d in events if a == "camera.update"]
    assert changes == [
        None,
        {"from": "rotations=90,min_face_px=40", "to": "min_face_px=32"},
        {"from": "min_face_px=32", "to": None},
    ]


# ------------------------------------------------------------------------------------------------- CLI
@pytest.fixture
def run(db_settings: Settings) -> Any:
    env = {"AREYA_DATA_DIR": str(db_settings.data_dir), "AREYA_DATABASE_URL": db_settings.database_url}
    env["AREYA_CAMERA_ALLOW_NETWORKS"] = "10.0.0.0/8"  # the test cameras' network (areya.camera.url_policy)

    def invoke(*args: str, **extra_env: str) -> Result:
        return CliRunner().invoke(cli, list(args), env={**env, **extra_env})

    for step in (("ward", "add", "ICU"), ("bed", "add", "ICU", "1")):
        assert invoke(*step).exit_code == 0
    return invoke


def _cameras(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(Camera.name, Camera.sample_fps, Camera.detector_options))]


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ("rotation=90", "unknown option 'rotation' for detector 'blazeface'; valid options: min_score"),
        ("min_face_px=big", "option 'min_face_px' of detector 'blazeface' must be an integer"),
        ("num_threads=4", "option 'num_threads' cannot be set per camera"),
        ("tiles", "must be 'name=value' pairs"),
    ],
)
def test_cli_bad_options_exit_2_and_save_nothing(run: Any, engine: Engine, options: str, fragment: str) -> None:
    added = run("camera", "add", "--ward", "ICU", "--name", "cam", "--url", CAM_URL, "--detector-options", options)
    assert added.exit_code == 2, added.output
    assert fragment in added.stderr and "--detector-options" in added.stderr and "Traceback" not in added.output
    assert _cameras(engine) == []
    assert run("camera", "add", "--ward", "ICU", "--name", "cam", "--url", CAM_URL).exit_code == 0
    edited = run("camera", "edit", "ICU/cam", "--fps", "1", "--detector-options", options)
    assert edited.exit_code == 2 and fragment in edited.stderr
    assert _cameras(engine) == [("cam", 2.0, None)]  # the fps was not changed either


def test_cli_add_edit_list_and_clear(run: Any, engine: Engine) -> None:
    added = run(
        "camera",
        "add",
        "--ward",
        "ICU",
        "--name",
        "side",
        "--url",
        CAM_URL,
        "--detector-options",
        "rotations=90, min_face_px=40",
    )
    assert added.exit_code == 0, added.output
    assert "detector options rotations=90,min_face_px=40" in added.stdout
    assert run("camera", "add", "--ward", "ICU", "--name", "plain", "--url", CAM_URL).exit_code == 0
    listing = run("camera", "list", "--json")
    assert '"detector_options": "rotations=90,min_face_px=40"' in listing.stdout
    assert '"detector_options": null' in listing.stdout
    assert "DETECTOR_OPTIONS" in run("camera", "list").stdout
    edited = run("camera", "edit", "ICU/plain", "--detector-options", "min_face_px=24")
    assert edited.exit_code == 0 and "detector options min_face_px=24" in edited.stdout
    haar = run("camera", "edit", "ICU/plain", "--detector-options", "min_neighbors=3", AREYA_DETECTOR="haar")
    assert haar.exit_code == 0, haar.output  # checked against the configured backend
    wrong = run("camera", "edit", "ICU/plain", "--detector-options", "tiles=2", AREYA_DETECTOR="haar")
    assert wrong.exit_code == 2 and "unknown option 'tiles' for detector 'haar'" in wrong.stderr
    cleared = run("camera", "edit", "ICU/side", "--detector-options", "")
    assert cleared.exit_code == 0 and "detector options (global)" in cleared.stdout
    assert sorted(_cameras(engine)) == [("plain", 2.0, "min_neighbors=3"), ("side", 2.0, None)]
    nothing = run("camera", "edit", "ICU/side")
    assert nothing.exit_code == 2 and "nothing to change" in nothing.stderr
    unknown = run("camera", "edit", "ICU/none", "--fps", "1")
    assert unknown.exit_code == 1 and "unknown camera 'none'" in unknown.stderr
    with engine.connect() as conn:
        actions = [r[0] for r in conn.execute(select(AuditEvent.action).where(AuditEvent.action.like("camera.%")))]
    assert actions == ["camera.add", "camera.add", "camera.update", "camera.update", "camera.update"]


# ------------------------------------------------------------------------------------------- migration
def test_migration_adds_and_drops_the_column_keeping_cameras_and_zones(
    settings: Settings, empty_database_url: str
) -> None:
    from alembic import command

    from areya.db.migrate import alembic_config, upgrade

    s = settings.replace(database_url=empty_database_url)
    cfg = alembic_config(s)
    command.upgrade(cfg, "0008_adt")
    engine = create_db_engine(s)
    try:
        with engine.begin() as conn:
            assert "detector_options" not in {c["name"] for c in inspect(conn).get_columns("cameras")}
            conn.execute(text("INSERT INTO wards (name, created_at) VALUES ('ICU', CURRENT_TIMESTAMP)"))
            conn.execute(text("INSERT INTO beds (ward_id, label) VALUES (1, '1')"))
            conn.execute(
                text(
                    "INSERT INTO cameras (ward_id, name, source_url, sample_fps, enabled, health_status, "
                    "created_at) VALUES (1, 'cam', 'device:0', 2, true, 'unknown', CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(text("INSERT INTO bed_zones (camera_id, bed_id, x0, y0, x1, y1) VALUES (1, 1, 0, 0, 0.5, 1)"))
        engine.dispose()
        upgrade(s)
        with engine.begin() as conn:
            assert conn.execute(text("SELECT detector_options FROM cameras")).scalar_one() is None
            conn.execute(text("UPDATE cameras SET detector_options = 'rotations=90'"))
        engine.dispose()
        command.downgrade(cfg, "0008_adt")
        with engine.connect() as conn:
            assert "detector_options" not in {c["name"] for c in inspect(conn).get_columns("cameras")}
            assert conn.execute(text("SELECT name FROM cameras")).scalars().all() == ["cam"]
            assert conn.execute(text("SELECT count(*) FROM bed_zones")).scalar_one() == 1  # not cascaded away
        engine.dispose()
        upgrade(s)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT detector_options FROM cameras")).scalar_one() is None
    finally:
        engine.dispose()


# ----------------------------------------------------------------------------------- CameraDetectors
class Made(FaceDetector):
    """A fake backend that remembers the options it was made with."""

    name = "made"

    def __init__(self, backend: str, **options: Any) -> None:
        self.backend, self.options = backend, options
        self.closed = False

    def detect(self, frame_bgr: np.ndarray) -> list[FaceBox]:
        return []

    def close(self) -> None:
        self.closed = True


def test_one_detector_per_distinct_effective_option_set() -> None:
    made: list[Made] = []

    def factory(backend: str, **options: Any) -> Made:
        made.append(Made(backend, **options))
        return made[-1]

    detectors = CameraDetectors("blazeface", {"tiles": 2, "zone_mode": "frame"}, factory=factory)
    default = detectors.default
    assert made == [default] and default.options == {"tiles": 2, "zone_mode": "frame"}
    assert detectors.for_camera(None) is default and detectors.for_camera("") is default
    assert detectors.for_camera("tiles=2") is default  # changes nothing: no new instance
    side = detectors.for_camera("rotations=90")
    assert side.options == {"tiles": 2, "zone_mode": "frame", "rotations": (90,)}  # global + camera
    assert detectors.for_camera("rotations=90") is side
    assert detectors.for_camera("zone_mode=frame,rotations=90") is side  # same effective options, other text
    tiles = detectors.for_camera("tiles=3,rotations=90")
    assert tiles.options == {"tiles": 3, "zone_mode": "frame", "rotations": (90,)}  # the camera's value wins
    assert len(made) == 3 and set(detectors.detectors) == {
        options_key(default.options),
        options_key(side.options),
        options_key(tiles.options),
    }
    with pytest.raises(ValueError, match="unknown option 'scale_factor' for detector 'blazeface'"):
        detectors.for_camera("scale_factor=1.1")
    with pytest.raises(ValueError, match="cannot be set per camera"):
        detectors.for_camera("num_threads=2")
    assert len(made) == 3
    detectors.close()
    assert side.closed and tiles.closed and not default.closed  # the global one is closed by its owner


def test_settings_camera_and_command_line_layers(tmp_path: Path) -> None:
    from areya.config import load_settings

    s = load_settings(
        env={
            "AREYA_DATA_DIR": str(tmp_path),
            "AREYA_DETECTOR": "haar",
            "AREYA_DETECTOR_OPTIONS": "min_size=30,min_face_px=20",
        }
    )
    det = detector_from_settings(s, camera_options="min_face_px=40,min_neighbors=2")
    assert (det.min_face_px, det.min_size, det.min_neighbors) == (40, 30, 2)
    det = detector_from_settings(s, options={"min_neighbors": "7"}, camera_options="min_face_px=40,min_neighbors=2")
    assert (det.min_face_px, det.min_neighbors) == (40, 7)  # settings < camera < command line
    detectors = CameraDetectors.from_settings(s)
    assert (detectors.backend, detectors.options) == ("haar", {"min_size": 30, "min_face_px": 20})
    assert detectors.for_camera("min_face_px=40").min_face_px == 40
    assert detectors.default.min_face_px == 20


def test_predict_uses_the_cameras_options(run: Any, engine: Engine, db_settings: Settings, tmp_path: Path) -> None:
    from areya.cli.predict import detector_from_cli

    assert (
        run(
            "camera", "add", "--ward", "ICU", "--name", "cam", "--url", CAM_URL, "--detector-options", "min_face_px=40"
        ).exit_code
        == 0
    )
    s = db_settings.replace(detector="haar")
    assert detector_from_cli(s, None, (), "min_face_px=40").min_face_px == 40
    assert detector_from_cli(s, None, ("min_face_px=8",), "min_face_px=40").min_face_px == 8
    image = tmp_path / "blank.png"
    image.write_bytes(b"")
    unknown = run("predict", str(image), "--camera", "ICU/nope", AREYA_DETECTOR="haar")
    assert unknown.exit_code == 1 and "unknown camera 'nope'" in unknown.stderr
    with engine.begin() as conn:
        conn.execute(text("UPDATE cameras SET detector_options = 'tiles=2'"))  # stored for BlazeFace, now haar
    bad = run("predict", str(image), "--camera", "ICU/cam", AREYA_DETECTOR="haar")
    assert bad.exit_code == 1 and "the camera's detector options 'tiles=2': unknown option 'tiles'" in bad.stderr


def test_worker_command_checks_its_detector_options_before_starting(tmp_path: Path) -> None:
    env = {"AREYA_DATA_DIR": str(tmp_path)}
    bad = CliRunner().invoke(cli, ["worker", "--detector-option", "tile=2"], env=env)
    assert bad.exit_code == 1 and "unknown option 'tile' for detector 'blazeface'" in bad.stderr
    malformed = CliRunner().invoke(cli, ["worker", "--detector-option", "tiles"], env=env)
    assert malformed.exit_code == 2 and "name=value" in malformed.stderr
    assert not (tmp_path / "redis").exists()  # nothing was started
