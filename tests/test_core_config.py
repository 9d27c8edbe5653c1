"""Settings: precedence, validation (every bad value -> ConfigError naming the env var), secret key, docs table."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from areya.cli import cli
from areya.cli.config_cmd import CONFIG_DOC, TABLE_END, TABLE_START
from areya.config import ConfigError, Settings, load_settings, parse_rate_limit, setting_fields, settings_table_markdown

REPO = Path(__file__).resolve().parent.parent


def load(tmp_path: Path, config_file: Path | None = None, **env: str) -> Settings:
    return load_settings(config_file, env={"AREYA_DATA_DIR": str(tmp_path / "var"), **env})


def test_defaults(tmp_path: Path) -> None:
    s = load(tmp_path)
    assert s.data_dir == (tmp_path / "var").resolve()
    assert s.database_url == f"sqlite:///{s.data_dir / 'areya.db'}"
    assert s.redis_url == "" and s.redis_embedded
    assert s.frame_stream == "areya:frames" and s.dead_letter_stream == "areya:deadletter"
    assert (s.stream_maxlen, s.default_sample_fps, s.jpeg_quality) == (2000, 2.0, 85)
    assert (s.worker_batch_size, s.worker_batch_ms, s.claim_idle_ms, s.max_deliveries) == (16, 200, 30000, 3)
    assert (s.detector, s.emotion_model, s.snapshot_ttl_s, s.store_crops) == ("blazeface", "areya-fer", 60, False)
    assert (s.scheduler_tick_s, s.negative_window_s, s.negative_min_obs) == (5.0, 300, 60)
    assert (s.negative_open_share, s.negative_close_share, s.negative_measure) == (0.52, 0.44, "probability")
    assert (s.negative_cooldown_s, s.negative_reopen_margin) == (1800, 0.15)  # bench/bench_alert_rules.py
    assert (s.resolve_period_s, s.escalate_after_s, s.camera_offline_s, s.retention_days, s.lock_ttl_s) == (
        300, 900, 60, 7, 15,
    )  # fmt: skip
    assert s.webhook_urls == () and s.smtp_port == 25
    assert (s.web_host, s.web_port, s.session_cookie_secure) == ("127.0.0.1", 5000, False)
    assert s.login_rate_limit == "5/minute" and s.login_rate_limit_pair == (5, 60)


def test_precedence_default_file_env(tmp_path: Path) -> None:
    cfg = tmp_path / "areya.toml"
    cfg.write_text(
        'web_port = 8000\njpeg_quality = 70\n[alerts]\nnegative_min_obs = 5\nwebhook_urls = ["https://h.example/x"]\n'
    )
    s = load(tmp_path, cfg, AREYA_WEB_PORT="9000")
    assert s.web_port == 9000  # env beats file
    assert s.jpeg_quality == 70 and s.negative_min_obs == 5  # file beats default
    assert s.webhook_urls == ("https://h.example/x",)
    # the file can also come from AREYA_CONFIG
    assert load(tmp_path, AREYA_CONFIG=str(cfg)).jpeg_quality == 70


def test_env_values_are_parsed(tmp_path: Path) -> None:
    s = load(
        tmp_path,
        AREYA_STORE_CROPS="yes",
        AREYA_SESSION_COOKIE_SECURE="1",
        AREYA_DEFAULT_SAMPLE_FPS="0.5",
        AREYA_WEBHOOK_URLS="https://a.example/h, http://b.example:8080/h",
        AREYA_LOG_LEVEL="debug",
        AREYA_DATABASE_URL="postgres://u:pw@db.example/areya",
        AREYA_REDIS_URL="redis://localhost:6379/0",
        AREYA_LOGIN_RATE_LIMIT="10,300",
    )
    assert s.store_crops is True and s.session_cookie_secure is True and s.default_sample_fps == 0.5
    assert s.webhook_urls == ("https://a.example/h", "http://b.example:8080/h")
    assert s.log_level == "DEBUG"
    assert s.database_url == "postgresql+psycopg://u:pw@db.example/areya" and not s.is_sqlite
    assert s.login_rate_limit == "10/300s" and s.login_rate_limit_pair == (10, 300)
    assert s.public_dict()["database_url"] == "postgresql+psycopg://u:***@db.example/areya"
    assert s.public_dict()["secret_key"] == "***"


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("web_port", "abc", "must be an integer"),
        ("web_port", "0", "[1, 65535]"),
        ("web_port", "70000", "[1, 65535]"),
        ("jpeg_quality", "101", "[1, 100]"),
        ("default_sample_fps", "0", "(0, 60]"),
        ("default_sample_fps", "nan", "finite"),
        ("worker_batch_size", "0", "[1, 1024]"),
        ("worker_batch_ms", "1.5", "must be an integer"),
        ("max_deliveries", "-1", "[1, 100]"),
        ("negative_open_share", "1.5", "(0, 1]"),
        ("negative_close_share", "-0.1", "[0, 1]"),
        ("store_crops", "maybe", "must be a boolean"),
        ("log_level", "LOUD", "one of DEBUG"),
        ("database_url", "mysql://x/y", "unsupported scheme"),
        ("database_url", "not a url", "must be a URL"),
        ("database_url", "postgresql:///areya", "needs a host"),
        ("redis_url", "http://localhost", "redis://"),
        ("redis_url", "redis://", "needs a host"),
        ("webhook_urls", "ftp://x.example", "http:// or https://"),
        ("webhook_urls", '["https://ok.example", 3]', "list of strings"),
        ("smtp_from", "not-an-address", "e-mail address"),
        ("smtp_port", "99999", "[1, 65535]"),
        ("secret_key", "short", "at least 16"),
        ("frame_stream", "has space", "Redis key"),
        ("detector", "9lives!", "must be a name"),
        ("emotion_model", "  ", "must not be empty"),
        ("login_rate_limit", "lots", "must look like"),
        ("login_rate_limit", "0/minute", ">= 1"),
        ("web_host", "bad host!", "host name"),
        ("mrn_system", "hospital mrn", "without spaces"),
        ("mrn_system", "mrn-numbers", "absolute URI"),
        ("mrn_system", "ftp://hospital.example/mrn", "absolute URI"),
        ("mrn_system", "urn:oid:1.2|3", "without spaces or '|'"),
    ],
)
def test_invalid_values_name_the_env_var(tmp_path: Path, key: str, value: str, fragment: str) -> None:
    env_name = f"AREYA_{key.upper()}"
    with pytest.raises(ConfigError) as info:
        load(tmp_path, **{env_name: value})
    message = str(info.value)
    assert message.startswith(f"{env_name}: ") and fragment in message


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"AREYA_NEGATIVE_CLOSE_SHARE": "0.7"}, "AREYA_NEGATIVE_CLOSE_SHARE: must be below negative_open_share"),
        ({"AREYA_DEAD_LETTER_STREAM": "areya:frames"}, "AREYA_DEAD_LETTER_STREAM: must differ"),
        ({"AREYA_LOCK_TTL_S": "5"}, "AREYA_LOCK_TTL_S: must be longer than scheduler_tick_s"),
    ],
)
def test_cross_field_checks(tmp_path: Path, env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load(tmp_path, **env)


def test_config_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("web_port = \n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load(tmp_path, bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("web_prot = 80\n")
    with pytest.raises(ConfigError, match="AREYA_WEB_PROT: .*unknown setting"):
        load(tmp_path, unknown)
    wrong_group = tmp_path / "group.toml"
    wrong_group.write_text("[pipeline]\nweb_port = 80\n")
    with pytest.raises(ConfigError, match=r"unknown setting \[pipeline\] web_port"):
        load(tmp_path, wrong_group)
    typed = tmp_path / "typed.toml"
    typed.write_text("web_port = true\n")
    with pytest.raises(ConfigError, match="AREYA_WEB_PORT: must be an integer"):
        load(tmp_path, typed)
    with pytest.raises(ConfigError, match="not found"):
        load(tmp_path, tmp_path / "missing.toml")


def test_data_dir_must_be_a_directory(tmp_path: Path) -> None:
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(ConfigError, match="AREYA_DATA_DIR: not a directory"):
        load_settings(env={"AREYA_DATA_DIR": str(afile)})


def test_secret_key_generated_once_and_private(tmp_path: Path) -> None:
    first = load(tmp_path)
    second = load(tmp_path)
    assert len(first.secret_key) >= 32 and first.secret_key == second.secret_key
    path = first.data_dir / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load(tmp_path, AREYA_SECRET_KEY="x" * 20).secret_key == "x" * 20


def test_settings_are_frozen_and_replace_validates(tmp_path: Path) -> None:
    s = load(tmp_path)
    with pytest.raises(AttributeError):
        s.web_port = 1  # type: ignore[misc]
    assert s.replace(web_port=8080).web_port == 8080
    with pytest.raises(ConfigError, match="AREYA_WEB_PORT"):
        s.replace(web_port=-1)


def test_rate_limit_forms() -> None:
    assert parse_rate_limit("5/minute") == (5, 60)
    assert parse_rate_limit("3 per hour") == (3, 3600)
    assert parse_rate_limit("7/90s") == (7, 90)
    assert parse_rate_limit([2, 10]) == (2, 10)


def test_cli_reports_config_errors_with_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["config", "check"], env={"AREYA_DATA_DIR": str(tmp_path), "AREYA_WEB_PORT": "x"})
    assert result.exit_code == 2
    assert "AREYA_WEB_PORT: must be an integer" in result.stderr and "Traceback" not in result.output
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "nope.toml"), "config", "check"])
    assert result.exit_code == 2 and "config file not found" in result.stderr


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    env = {
        "AREYA_DATA_DIR": str(tmp_path),
        "AREYA_DATABASE_URL": "postgresql://areya:topsecret@db.example/areya",
        "AREYA_WEBHOOK_SECRET": "hook-secret-value",
    }
    result = CliRunner().invoke(cli, ["config", "show"], env=env)
    assert result.exit_code == 0, result.output
    assert "topsecret" not in result.output and "hook-secret-value" not in result.output
    assert "areya:***@db.example" in result.output


def test_table_lists_every_setting() -> None:
    table = settings_table_markdown()
    for f in setting_fields():
        assert f"`AREYA_{f.name.upper()}`" in table and f"`{f.name}`" in table


def test_docs_table_is_generated_from_settings() -> None:
    page = (REPO / CONFIG_DOC).read_text(encoding="utf-8")
    start, end = page.index(TABLE_START) + len(TABLE_START), page.index(TABLE_END)
    assert page[start:end].strip() == settings_table_markdown().strip(), (
        f"{CONFIG_DOC}'s configuration table is stale: run `areya config table --update {CONFIG_DOC}`"
    )


def test_no_env_leaks_into_tests() -> None:
    assert not [k for k in os.environ if k.startswith("AREYA_") and not k.startswith("AREYA_TEST_")]
