"""deploy/: compose file, Kubernetes manifests, Dockerfiles, systemd units and examples.

Docker cannot run here, so what can be checked is checked: structure (services, replicas, health checks,
restart policies, GPU reservation, secrets never inlined), schemas (compose-spec via check-jsonschema,
Kubernetes via kubernetes-validate, both offline), Dockerfile lint (hadolint), `systemd-analyze verify`, and
that every `areya ...` command line in any of them parses against the real CLI.  A check whose tool is missing
is skipped, never passed silently.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from areya.cli import cli
from areya.config import ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
K8S = DEPLOY / "k8s"
SYSTEMD = DEPLOY / "systemd"
BIN = Path(sys.executable).parent
SECRETISH = re.compile(r"PASSWORD|SECRET|DATABASE_URL|REDIS_URL|AUTH|TOKEN", re.I)
LONG_RUNNING = ("web", "ingest", "worker", "worker-gpu", "scheduler")


def tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path=str(BIN))
    if path is None:
        pytest.skip(f"{name} not installed (pip install -e '.[dev]')")
    return path


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR:?error} with ``env`` (defaults otherwise); $$ -> $."""
    env = env or {}

    def sub(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        if env.get(name):
            return env[name]
        if op == ":-":
            return arg
        if op == ":?":
            raise KeyError(f"{name}: {arg}")
        return ""

    return re.sub(r"\$\{([A-Z0-9_]+)(?:(:-|:\?)([^}]*))?\}", sub, value).replace("$$", "$")


def parse_areya(argv: list[str]) -> tuple[str, dict[str, Any]]:
    """Parse an ``areya ...`` argument list with the real click CLI (types, choices, options) without running it."""
    ctx = cli.make_context("areya", list(argv))
    cmd: click.Command = cli
    args = [*getattr(ctx, "_protected_args", []), *ctx.args]
    while isinstance(cmd, click.Group):
        name, sub, rest = cmd.resolve_command(ctx, args)
        assert sub is not None and name is not None
        ctx = sub.make_context(name, rest, parent=ctx)
        cmd, args = sub, [*getattr(ctx, "_protected_args", []), *ctx.args]
    assert not args, f"unparsed arguments {args} in {argv}"
    return str(ctx.command.name), dict(ctx.params)


def k8s_docs() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                yield path, doc


def k8s_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in k8s_docs() if doc["kind"] == kind}


def pod_containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


# --------------------------------------------------------------------------- docker compose


def test_compose_has_every_service_with_health_and_restart_policies() -> None:
    services = compose()["services"]
    assert {"postgres", "redis", "migrate", *LONG_RUNNING} <= set(services)
    for name, svc in services.items():
        assert "healthcheck" in svc or "restart" in svc, f"{name}: neither a healthcheck nor a restart policy"
    for name in ("postgres", "redis", *LONG_RUNNING):
        assert services[name]["restart"] == "unless-stopped", name
        assert services[name]["healthcheck"]["test"], name
    assert services["migrate"]["restart"] == "no"  # one-shot; the others wait for it to complete
    for name in LONG_RUNNING:
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
        assert deps["postgres"]["condition"] == deps["redis"]["condition"] == "service_healthy", name


def test_compose_scale_out_workers_gpu_profile_and_two_schedulers() -> None:
    services = compose()["services"]
    assert int(interpolate(str(services["worker"]["deploy"]["replicas"]))) >= 2
    assert int(interpolate(str(services["worker"]["deploy"]["replicas"]), {"AREYA_WORKERS": "6"})) == 6
    assert services["scheduler"]["deploy"]["replicas"] == 2
    gpu = services["worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert gpu["build"]["dockerfile"] == "deploy/Dockerfile.gpu"
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert services["web"]["command"][:2] == ["web", "--gunicorn"]
    assert all("profiles" not in services[n] for n in ("web", "ingest", "worker", "scheduler"))


def test_compose_redis_keeps_nothing_on_disk_and_volumes_are_named() -> None:
    data = compose()
    redis_cmd = " ".join(data["services"]["redis"]["command"])
    # camera frames must never reach a disk: no append-only file, no RDB snapshot, no volume
    assert "--appendonly no" in redis_cmd and "--save ''" in redis_cmd and "--requirepass" in redis_cmd
    assert "appendonly yes" not in redis_cmd and "volumes" not in data["services"]["redis"]
    assert "pgdata:/var/lib/postgresql/data" in data["services"]["postgres"]["volumes"]
    assert {"pgdata", "areya-data"} <= set(data["volumes"]) and "redisdata" not in data["volumes"]
    assert data["services"]["web"]["ports"] == ["${AREYA_WEB_PUBLISH:-127.0.0.1:5000}:5000"]
    assert interpolate(data["services"]["web"]["ports"][0]).startswith("127.0.0.1:")  # proxy in front


def _env_items(svc: dict[str, Any]) -> Iterator[tuple[str, str]]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    for key, value in env.items():
        yield key, str(value)


def test_compose_secrets_are_never_inlined() -> None:
    services = compose()["services"]
    seen = set()
    for name, svc in services.items():
        for key, value in _env_items(svc):
            if SECRETISH.search(key):
                seen.add(key)
                assert "${" in value, f"{name}: {key} has an inline value"
                # a URL's password part must itself be a reference
                match = re.match(r"^[a-z+]+://([^@/]*)@", value)
                if match:
                    assert match.group(1).split(":", 1)[-1].startswith("${"), f"{name}: {key} inlines a password"
    assert {"AREYA_DATABASE_URL", "AREYA_REDIS_URL", "AREYA_SECRET_KEY", "POSTGRES_PASSWORD"} <= seen
    env_example = dict(
        line.split("=", 1)
        for line in (DEPLOY / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    for key in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "AREYA_SECRET_KEY"):
        assert env_example[key] == "", f".env.example must not carry a value for {key}"
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):  # compose refuses to start without it
        interpolate(services["postgres"]["environment"]["POSTGRES_PASSWORD"])


def test_compose_file_matches_the_compose_spec_schema(tmp_path: Path) -> None:
    exe = tool("check-jsonschema")
    ok = subprocess.run(
        [exe, "--builtin-schema", "vendor.compose-spec", str(COMPOSE)], capture_output=True, text=True, timeout=120
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    broken = compose()
    broken["services"]["worker"]["restart_policy"] = "always"  # not a compose key: must be caught
    bad = tmp_path / "docker-compose.yml"
    bad.write_text(yaml.safe_dump(broken))
    result = subprocess.run(
        [exe, "--builtin-schema", "vendor.compose-spec", str(bad)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0 and "restart_policy" in result.stdout + result.stderr


def test_compose_files_it_references_exist() -> None:
    data = compose()
    for svc in data["services"].values():
        if "build" in svc:
            assert (ROOT / svc["build"]["dockerfile"]).is_file()
    for section in ("configs", "secrets"):
        for item in data[section].values():
            assert (DEPLOY / interpolate(item["file"])).is_file(), item


# --------------------------------------------------------------------------- every areya command line


def _compose_commands() -> Iterator[tuple[str, list[str]]]:
    for name, svc in compose()["services"].items():
        image = interpolate(str(svc.get("image", "")))
        if image.startswith("areya:") and "command" in svc:
            yield f"compose {name}", [interpolate(a) for a in svc["command"]]
        test = (svc.get("healthcheck") or {}).get("test") or []
        if test[:2] == ["CMD", "areya"]:
            yield f"compose {name} healthcheck", test[2:]


def _systemd_commands() -> Iterator[tuple[str, list[str]]]:
    for unit in sorted(SYSTEMD.glob("*.service")):
        for line in unit.read_text().splitlines():
            if line.startswith("ExecStart="):
                argv = shlex.split(line.removeprefix("ExecStart="))
                assert argv[0] == "/opt/areya/venv/bin/areya", unit.name
                yield unit.name, argv[1:]


def _k8s_commands() -> Iterator[tuple[str, list[str]]]:
    for path, doc in k8s_docs():
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        for c in pod_containers(doc):
            if c["image"].startswith("areya:"):
                assert "command" not in c, "the image's entrypoint is areya"
                yield f"{path.name} {c['name']}", c["args"]
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                cmd = c.get(probe, {}).get("exec", {}).get("command")
                if cmd:
                    assert cmd[0] == "areya"
                    yield f"{path.name} {c['name']} {probe}", cmd[1:]


def _dockerfile_commands() -> Iterator[tuple[str, list[str]]]:
    for name in ("Dockerfile.cpu", "Dockerfile.gpu"):
        text = (DEPLOY / name).read_text()
        assert re.search(r'^ENTRYPOINT \["areya"\]$', text, re.M), name
        for match in re.finditer(r"^(?:CMD|HEALTHCHECK .* CMD) (\[.*\])$", text, re.M):
            argv = yaml.safe_load(match.group(1))
            yield name, argv[1:] if argv[0] == "areya" else argv


ALL_COMMANDS = [*_compose_commands(), *_systemd_commands(), *_k8s_commands(), *_dockerfile_commands()]


@pytest.mark.parametrize(("where", "argv"), ALL_COMMANDS, ids=[f"{w}: {' '.join(a)}" for w, a in ALL_COMMANDS])
def test_every_areya_command_line_parses_with_the_real_cli(where: str, argv: list[str]) -> None:
    name, _ = parse_areya(argv)
    assert name


def test_the_command_lines_cover_every_service() -> None:
    names = {parse_areya(argv)[0] for _, argv in ALL_COMMANDS}
    assert {"web", "ingest", "worker", "scheduler", "upgrade", "health", "sync-cameras"} <= names
    with pytest.raises(click.UsageError):
        parse_areya(["web", "--gunicorns"])  # the parser used above does reject a bad line
    with pytest.raises(click.UsageError):
        parse_areya(["health", "wrker"])


def test_deployed_ingest_never_exits_when_its_files_end() -> None:
    """A service manager restarts an ingestor that exits: with --until-end it would read its video files again and
    duplicate their observations.  The deployed ingestors run until stopped."""
    ingestors = [
        (where, params) for where, argv in ALL_COMMANDS for name, params in [parse_areya(argv)] if name == "ingest"
    ]
    assert {w.split()[0] for w, _ in ingestors} >= {"compose", "areya-ingest.service", "ingest.yaml"}
    assert all(params["until_end"] is False for _, params in ingestors), ingestors


# --------------------------------------------------------------------------- Kubernetes


def test_k8s_deployments_services_and_gpu_resources() -> None:
    deployments = k8s_kind("Deployment")
    assert {"areya-web", "areya-ingest", "areya-worker", "areya-worker-gpu", "areya-scheduler"} <= set(deployments)
    assert deployments["areya-scheduler"]["spec"]["replicas"] == 2
    assert deployments["areya-worker"]["spec"]["replicas"] >= 2
    assert deployments["areya-ingest"]["spec"]["replicas"] == 1
    assert deployments["areya-ingest"]["spec"]["strategy"]["type"] == "Recreate"  # never two ingestors
    gpu = deployments["areya-worker-gpu"]["spec"]["template"]["spec"]["containers"][0]
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == 1 and gpu["image"] == "areya:gpu"
    services = k8s_kind("Service")
    assert services["areya-web"]["spec"]["selector"] == {"app.kubernetes.io/name": "areya-web"}
    assert "areya-redis" in services
    for name, dep in deployments.items():
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
        main = dep["spec"]["template"]["spec"]["containers"][0]
        assert "livenessProbe" in main, name
        assert main["securityContext"]["allowPrivilegeEscalation"] is False, name
        assert dep["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True, name


def test_k8s_redis_keeps_nothing_on_disk() -> None:
    redis = k8s_kind("StatefulSet")["areya-redis"]
    assert redis["spec"]["replicas"] == 1 and "volumeClaimTemplates" not in redis["spec"]
    args = " ".join(redis["spec"]["template"]["spec"]["containers"][0]["args"])
    assert "--appendonly no" in args and '--save ""' in args and "appendonly yes" not in args
    volumes = redis["spec"]["template"]["spec"]["volumes"]
    assert all(v.get("emptyDir", {}).get("medium") == "Memory" for v in volumes)  # frames never reach a disk
    assert not [d for _, d in k8s_docs() if d["kind"] == "PersistentVolumeClaim"]


def test_k8s_configmap_secret_split() -> None:
    (config,) = k8s_kind("ConfigMap").values()
    assert not [k for k in config["data"] if SECRETISH.search(k)], "secrets in the ConfigMap"
    secrets = k8s_kind("Secret")
    assert {"AREYA_DATABASE_URL", "AREYA_REDIS_URL", "AREYA_SECRET_KEY"} <= set(secrets["areya-secrets"]["stringData"])
    assert "cameras.toml" in secrets["areya-cameras"]["stringData"]
    for path, doc in k8s_docs():
        if doc["kind"] in ("Deployment", "Job", "StatefulSet"):
            for c in pod_containers(doc):
                for env in c.get("env", []):
                    if SECRETISH.search(env["name"]):
                        assert "secretKeyRef" in env.get("valueFrom", {}), f"{path.name}: {env['name']} inline"
                refs = {next(iter(r.values()))["name"] for r in c.get("envFrom", [])}
                if c["image"].startswith("areya:"):
                    assert refs == {"areya-config", "areya-secrets"}, path.name
    # the ConfigMap is a valid set of settings (with secrets as the Secret would add them)
    env = {
        **config["data"],
        "AREYA_DATABASE_URL": "postgresql+psycopg://areya:x@db/areya",
        "AREYA_REDIS_URL": "redis://:x@areya-redis:6379/0",
        "AREYA_SECRET_KEY": "x" * 32,
    }
    assert load_settings(env=env).worker_batch_size == int(config["data"]["AREYA_WORKER_BATCH_SIZE"])


def test_k8s_kustomization_lists_existing_files_and_no_secret() -> None:
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for res in kust["resources"]:
        assert (K8S / res).is_file(), res
    assert "secret.example.yaml" not in kust["resources"]


def test_k8s_manifests_pass_the_kubernetes_schema(tmp_path: Path) -> None:
    exe = tool("kubernetes-validate")
    files = [str(p) for p in sorted(K8S.glob("*.yaml")) if p.name != "kustomization.yaml"]
    for version in ("1.29.0", "1.33.0"):
        ok = subprocess.run([exe, "--strict", "-k", version, *files], capture_output=True, text=True, timeout=300)
        assert ok.returncode == 0, ok.stdout + ok.stderr
    doc = yaml.safe_load((K8S / "web.yaml").read_text().split("\n---\n")[0])
    doc["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}  # typo: strict must reject it
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    result = subprocess.run([exe, "--strict", str(bad)], capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "livenesProbe" in result.stdout + result.stderr


# --------------------------------------------------------------------------- Dockerfiles


@pytest.mark.parametrize("name", ["Dockerfile.cpu", "Dockerfile.gpu"])
def test_dockerfile_basics(name: str) -> None:
    text = (DEPLOY / name).read_text()
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1] not in ("root", "0", "0:0"), "must run as a non-root user"
    assert re.match(r"^\d+:\d+$", users[-1]), "numeric user (Kubernetes runAsNonRoot can check it)"
    assert "HEALTHCHECK" in text and "ADD http" not in text
    for src in re.findall(r"^COPY (?!--from)(\S+)", text, re.M):
        assert (ROOT / src).exists(), f"{name}: COPY {src}: not in the repository"
    ignore = (DEPLOY / f"{name}.dockerignore").read_text()
    assert ignore.splitlines()[2] == "**", "the build context is an allow-list"
    assert "!.venv" not in ignore and "!var" not in ignore


def test_dockerfile_gpu_is_based_on_tensorflow_cuda() -> None:
    text = (DEPLOY / "Dockerfile.gpu").read_text()
    assert re.search(r"^ARG TF_IMAGE=tensorflow/tensorflow:[\d.]+-gpu$", text, re.M)
    assert "FROM ${TF_IMAGE}" in text


@pytest.mark.parametrize("name", ["Dockerfile.cpu", "Dockerfile.gpu"])
def test_hadolint_is_clean(name: str) -> None:
    exe = tool("hadolint")
    result = subprocess.run([exe, "--no-color", str(DEPLOY / name)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


# --------------------------------------------------------------------------- systemd


UNITS = [
    "areya-migrate.service",
    "areya-web.service",
    "areya-ingest.service",
    "areya-worker@.service",
    "areya-scheduler.service",
]
HARDENING = [
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "ReadWritePaths=/var/lib/areya",
    "User=areya",
    "Group=areya",
    "EnvironmentFile=/etc/areya/areya.env",
]


@pytest.mark.parametrize("unit", UNITS)
def test_systemd_unit_restart_user_and_hardening(unit: str) -> None:
    lines = (SYSTEMD / unit).read_text().splitlines()
    for option in HARDENING:
        assert option in lines, f"{unit}: {option}"
    if unit == "areya-migrate.service":
        assert "Type=oneshot" in lines
    else:
        assert "Restart=on-failure" in lines
        assert "Requires=areya-migrate.service" in lines
    assert "WantedBy=areya.target" in lines
    assert "UMask=0077" in lines and "StateDirectoryMode=0700" in lines  # the DB, secret key: this user only
    assert not [line for line in lines if SECRETISH.search(line.split("=", 1)[0])], "secrets belong in areya.env"


def test_systemd_units_verify(tmp_path: Path) -> None:
    exe = tool("systemd-analyze")
    areya = shutil.which("areya", path=str(BIN))
    assert areya, "the areya console script"
    for path in SYSTEMD.iterdir():
        (tmp_path / path.name).write_text(path.read_text().replace("/opt/areya/venv/bin/areya", areya))
    names = ["areya.target", *[u.replace("@.", "@1.") for u in UNITS]]
    result = subprocess.run(
        [exe, "verify", "--man=no", *names], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout + result.stderr
    bad = tmp_path / "areya-web.service"
    bad.write_text(bad.read_text().replace("Restart=on-failure", "Restart=on-failur"))
    result = subprocess.run(
        [exe, "verify", "--man=no", "areya-web.service"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert "on-failur" in result.stdout + result.stderr  # verify does catch a bad line


# --------------------------------------------------------------------------- examples


def test_example_config_is_valid_and_holds_no_secret(tmp_path: Path) -> None:
    path = DEPLOY / "areya.example.toml"
    data = tomllib.loads(path.read_text())
    flat = {k for table in data.values() for k in (table if isinstance(table, dict) else {})}
    assert not {"database_url", "redis_url", "secret_key", "webhook_secret"} & flat
    settings = load_settings(path, env={"AREYA_DATA_DIR": str(tmp_path)})
    assert settings.session_cookie_secure is True and settings.store_crops is False
    bad = tmp_path / "bad.toml"
    bad.write_text(path.read_text().replace("lock_ttl_s = 15", "lock_ttl_s = 2"))
    with pytest.raises(ConfigError, match="AREYA_LOCK_TTL_S"):
        load_settings(bad, env={"AREYA_DATA_DIR": str(tmp_path)})


def test_example_secret_files_hold_placeholders_only() -> None:
    from areya.deploy.cameras import read_camera_file

    assert read_camera_file(DEPLOY / "cameras.example.toml") == []  # registers nothing by accident
    for line in (SYSTEMD / "areya.env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            assert "CHANGE-ME" in line, line
    for _, doc in k8s_docs():
        if doc["kind"] == "Secret":
            for key, value in doc["stringData"].items():
                assert "CHANGE-ME" in value, f"{key}: example Secrets carry placeholders only"
