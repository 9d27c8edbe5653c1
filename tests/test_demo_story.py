"""The demo's pieces without running it: the shipped face pack, the story file, demo passwords."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pytest

from areya.camera.facepack import DEMO_FACES, load_face_pack
from areya.camera.story import DEFAULT_STORY, StoryError, load_story, parse_story
from areya.demo.passwords import demo_passwords, passwords_path

REPO = Path(__file__).resolve().parents[1]
AREYA4_AS_FER = {"angry", "happy", "neutral", "sad"}


def test_face_pack_is_small_real_and_labelled() -> None:
    assert DEMO_FACES.is_file() and DEMO_FACES.stat().st_size <= 300_000
    pack = load_face_pack()
    assert 0 < len(pack) <= 200
    assert set(pack.labels) == AREYA4_AS_FER  # the four Areya classes, nothing else
    assert pack.meta["split"] == "PublicTest" and "FER-2013" in pack.meta["source"]
    assert all(s.startswith("PublicTest_") for s in pack.sources)
    face = pack.image(0)
    assert face.shape == (48, 48) and face.dtype == np.uint8
    for emotion in AREYA4_AS_FER:  # the story can show every class, with faces the model labels as intended
        assert pack.indices(emotion, agreeing=True)
        assert all(pack.agrees[i] for i in pack.indices(emotion, agreeing=True))


def test_the_documented_build_command_reads_every_publictest_file() -> None:
    """The pack's README command (and the script's docstring) rebuilds the shipped pack: no --scan needed."""
    import importlib.util
    import re
    import shlex

    spec = importlib.util.spec_from_file_location("make_demo_faces", REPO / "scripts/make_demo_faces.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    readme = (REPO / "areya/demo/assets/README.md").read_text()
    command = re.search(r"\*\*Built by\*\* `([^`]+)`", readme).group(1)
    assert command in script.__doc__
    argv = shlex.split(command)
    assert argv[:3] == ["nice", "python", "scripts/make_demo_faces.py"] and "--scan" not in argv
    args = script.build_parser().parse_args(argv[3:])
    assert args.scan >= 895  # FER-2013 PublicTest's largest class of the four (happy)
    data = REPO / args.data
    if data.is_dir():  # the dataset is here: every file of every class is read
        for name in ("angry", "happy", "neutral", "sad"):
            assert args.scan >= sum(1 for p in (data / name).iterdir() if p.suffix.lower() in (".jpg", ".png"))


def test_only_the_pack_comes_from_shared_data() -> None:
    shipped = [p for p in (REPO / "areya").rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".npz")]
    assert shipped == [DEMO_FACES]


def test_shipped_story_tells_the_ward_story() -> None:
    story = load_story()
    assert story.path == DEFAULT_STORY.resolve() and len(story.beds) == 4
    sad, angry, *content = story.beds
    assert sad.emotion_at(0) == "neutral" and sad.emotion_at(60) == "sad" and sad.emotion_at(800) == "sad"
    assert angry.emotion_at(60) == "angry" and angry.emotion_at(200) == "neutral"
    assert all(bed.emotion_at(t) in ("happy", "neutral") for bed in content for t in (0, 100, 500))
    assert story.alerts["negative_window_s"] <= 120  # demo-tuned: alerts within minutes
    scenario = story.scenario()
    assert scenario.duration == story.duration_s
    assert scenario.emotion_at(1, 60) == "angry" and scenario.emotion_at(1, 200) == "neutral"
    assert all(seg.end - seg.start <= story.face_change_s for seg in scenario.segments)


def test_demo_camera_shows_the_pack_unless_faces_names_a_folder(tmp_path: Path) -> None:
    from areya.camera.facepack import BUILTIN_FACES
    from areya.camera.synthetic import ward_from_uri
    from areya.demo import story_url, synthetic_url

    story = ward_from_uri(story_url(DEFAULT_STORY))  # what `areya demo` registers by default
    assert story.library.pack is not None and story.library.faces_dir is None and story.library.agreeing
    assert ward_from_uri(synthetic_url(3, BUILTIN_FACES)).library.pack is not None  # `areya demo --beds 3`
    (tmp_path / "sad").mkdir()
    own = ward_from_uri(story_url(DEFAULT_STORY, str(tmp_path)))  # `areya demo --faces DIR`
    assert own.library.pack is None and own.library.faces_dir == tmp_path.resolve()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"bed": []}, "1 to 12 [[bed]]"),
        ({"bed": [{"phases": [{"at": 5, "emotion": "sad"}]}]}, "start at 0"),
        ({"bed": [{"phases": [{"at": 0, "emotion": "bored"}]}]}, "unknown emotion 'bored'"),
        ({"faces": "some", "bed": [{"phases": [{"at": 0, "emotion": "sad"}]}]}, "faces must be one of"),
        (
            {"duration_s": 10, "bed": [{"phases": [{"at": 0, "emotion": "sad"}, {"at": 20, "emotion": "happy"}]}]},
            "after duration_s",
        ),
    ],
)
def test_bad_stories_are_refused_with_the_reason(data: dict, message: str) -> None:
    with pytest.raises(StoryError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_story(data)


def test_story_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "story.toml"
    bad.write_text("duration_s = \n")
    with pytest.raises(StoryError, match="story.toml"):
        load_story(bad)


def test_demo_passwords_are_kept_private_and_stable(tmp_path: Path) -> None:
    users = ("admin", "nurse", "doctor")
    first = demo_passwords(tmp_path, users)
    assert set(first) == set(users) and all(len(p) >= 12 for p in first.values())
    assert stat.S_IMODE(passwords_path(tmp_path).stat().st_mode) == 0o600
    assert demo_passwords(tmp_path, users) == first  # every start: the same ones
    rotated = demo_passwords(tmp_path, users, reset=True)
    assert all(rotated[u] != first[u] for u in users)
    assert demo_passwords(tmp_path, users) == rotated


def test_the_demo_ward_opens_at_the_same_level_at_night_as_by_day() -> None:
    """The demo's rule override turns the night's raise off: `areya demo` run at 3 a.m. tells the same story."""
    from areya.alerts.overrides import apply_values, parse_override_values
    from areya.alerts.rules import RuleParams, thresholds
    from areya.config import Settings

    params = apply_values(RuleParams.from_settings(Settings()), parse_override_values(load_story().alerts))
    assert Settings().negative_night_raise > 0  # the global default raises the thresholds at night ...
    assert params.night_raise == 0.0  # ... the demo ward does not
    by_day, at_night = thresholds(params, None), thresholds(params, None, night=True)
    assert by_day.open_at == at_night.open_at == 0.5
