"""The container files, without a Docker engine: compose.yaml and the Dockerfile read as data,
and docker/entrypoint.sh run for real with ``sh``, on the real ``vigil`` of this interpreter.
(.ci/run installs the Dockerfile's install line in a fresh venv of its own.)"""

from __future__ import annotations

import base64
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

import vigil

ROOT = Path(__file__).resolve().parents[1]
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
KEY_VARIABLES = ("VIGIL_PRIVACY__HMAC_KEY", "VIGIL_PRIVACY__ENCRYPTION_KEYS")


# compose.yaml ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_compose_runs_vigil_beside_postgresql_redis_and_nats(compose: dict) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "nats", "vigil", "worker"}
    for name, service in services.items():
        assert "image" in service or "build" in service, name
    assert services["postgres"]["image"].startswith("postgres:15")
    assert services["redis"]["image"].startswith("redis:7")
    assert services["nats"]["image"].startswith("nats:2")
    assert "-js" in services["nats"]["command"]  # JetStream
    assert services["vigil"]["build"] == "."
    assert "8000:8000" in services["vigil"]["ports"]


def test_every_backend_has_a_healthcheck_and_vigil_waits_for_each_to_be_healthy(
    compose: dict,
) -> None:
    services = compose["services"]
    backends = ("postgres", "redis", "nats")
    for name in backends:
        assert services[name]["healthcheck"]["test"], name
    nats_check = " ".join(services["nats"]["healthcheck"]["test"])
    assert "8222/healthz" in nats_check
    assert "8222" in services["nats"]["command"]  # the monitoring port the check asks
    depends = services["vigil"]["depends_on"]
    assert set(depends) == set(backends)
    assert all(depends[name]["condition"] == "service_healthy" for name in backends)


def test_vigils_urls_name_the_service_hosts_and_postgres_credentials(compose: dict) -> None:
    services = compose["services"]
    env = services["vigil"]["environment"]
    database = urlsplit(env["VIGIL_DATABASE_URL"])
    assert database.scheme == "postgresql" and database.hostname == "postgres"
    assert database.port == 5432
    postgres = services["postgres"]["environment"]
    assert database.username == postgres["POSTGRES_USER"]
    assert database.password == postgres["POSTGRES_PASSWORD"]
    assert database.path == "/" + postgres["POSTGRES_DB"]
    profiles = urlsplit(env["VIGIL_PROFILES_URL"])
    assert profiles.scheme == "redis" and profiles.hostname == "redis" and profiles.port == 6379
    # The development keys are allowed in this stack only, and said so beside the setting.
    assert env["VIGIL_DEV"] == "1"


def test_the_stream_worker_shares_vigils_store_and_profiles_and_checks_its_own_health(
    compose: dict,
) -> None:
    services = compose["services"]
    worker, api = services["worker"], services["vigil"]
    assert worker["command"] == ["consume"] and worker["image"] == api["image"]
    env = worker["environment"]
    for name in env:
        assert setting_exists(name), name
    for shared in ("VIGIL_DATABASE_URL", "VIGIL_PROFILES_URL", "VIGIL_DEV"):
        assert env[shared] == api["environment"][shared], shared
    assert urlsplit(env["VIGIL_STREAM__NATS_URL"]).hostname == "nats"
    assert int(env["VIGIL_STREAM__PARTITIONS"]) > 1  # room to scale out
    # The image's check asks serve's /health: the worker's asks its own metrics port.
    assert f":{env['VIGIL_STREAM__METRICS_PORT']}/metrics" in " ".join(
        worker["healthcheck"]["test"]
    )
    assert worker["depends_on"]["vigil"]["condition"] == "service_healthy"  # the schema
    assert worker["depends_on"]["nats"]["condition"] == "service_healthy"


def setting_exists(name: str) -> bool:
    """Whether an environment variable names a vigil setting (``VIGIL_A__B`` is ``a.b``)."""
    from pydantic import BaseModel

    from vigil.config import Settings

    if not name.startswith("VIGIL_"):
        return False
    model: type[BaseModel] = Settings
    for part in name.removeprefix("VIGIL_").lower().split("__"):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
    return True


# Dockerfile ------------------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    logical = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in logical.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, args = line.partition(" ")
            out.append((keyword.upper(), " ".join(args.split())))
    return out


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def test_the_dockerfile_builds_in_one_stage_and_runs_in_another() -> None:
    stages = [args for keyword, args in _instructions() if keyword == "FROM"]
    assert len(stages) >= 2
    assert all(stage.startswith("python:3.11-slim") for stage in stages)
    final = _final_stage()
    assert ("COPY", "--from=builder /opt/vigil /opt/vigil") in final
    assert ("EXPOSE", "8000") in final


def test_the_image_runs_as_a_fixed_user_that_is_not_root() -> None:
    users = [args for keyword, args in _final_stage() if keyword == "USER"]
    assert users, "no USER in the runtime stage: it would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert user == "10001"


def test_the_image_installs_from_the_lock_ci_uses_and_ci_runs_the_same_command() -> None:
    installs = [
        args for keyword, args in _instructions() if keyword == "RUN" and "pip install" in args
    ]
    assert len(installs) == 1
    arguments = installs[0].split("pip install", 1)[1].strip()
    assert arguments == '-c requirements/dev.lock ".[postgres]"'
    ci = (ROOT / ".ci" / "run").read_text()
    assert "-c requirements/dev.lock" in ci
    assert f"install -q {arguments}" in ci  # the image's install step, run by CI


def test_the_image_checks_health_and_starts_through_the_entrypoint() -> None:
    final = dict(_final_stage())
    assert "/health" in final["HEALTHCHECK"] and "urllib" in final["HEALTHCHECK"]
    assert json.loads(final["ENTRYPOINT"]) == ["/opt/vigil/bin/vigil-entrypoint"]
    assert json.loads(final["CMD"]) == ["serve"]
    copies = [args for keyword, args in _instructions() if keyword == "COPY"]
    assert "docker/entrypoint.sh /opt/vigil/bin/vigil-entrypoint" in copies


def test_what_the_dockerfile_copies_exists_and_is_not_ignored() -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for keyword, args in _instructions():
        if keyword != "COPY" or args.startswith("--from"):
            continue
        *sources, _ = args.split()
        for source in sources:
            assert (ROOT / source).exists(), source
            assert source.rstrip("/") not in ignored, source
    assert {".git", ".venv", "build", "site", "out", "*.db"} <= ignored


# docker/entrypoint.sh --------------------------------------------------------------------------


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The entrypoint under ``sh``, the real ``vigil`` (this interpreter's) first on PATH, in a
    clean VIGIL_* environment on a SQLite file in ``tmp_path``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    base["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    base["VIGIL_CONFIG"] = str(tmp_path / "no-vigil.toml")
    base["VIGIL_DATABASE_URL"] = f"sqlite:///{tmp_path / 'v.db'}"
    base.update(env)
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *args],
        cwd=tmp_path,
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _own_keys() -> dict[str, str]:
    key = base64.b64encode(os.urandom(32)).decode()
    return {
        "VIGIL_PRIVACY__HMAC_KEY": os.urandom(32).hex(),
        "VIGIL_PRIVACY__ENCRYPTION_KEYS": json.dumps({"k1": key}),
        "VIGIL_PRIVACY__ENCRYPTION_KEY_ID": "k1",
    }


def test_the_entrypoint_is_posix_sh_and_ends_by_exec_ing_vigil() -> None:
    subprocess.run(["sh", "-n", str(ENTRYPOINT)], check=True)
    lines = [line for line in ENTRYPOINT.read_text().splitlines() if line.strip()]
    assert lines[0] == "#!/bin/sh"
    assert "set -eu" in lines
    assert lines[-1] == 'exec vigil "$@"'


def test_serve_is_refused_with_the_development_keys_naming_the_variables(tmp_path: Path) -> None:
    result = _run(tmp_path, "serve")
    assert result.returncode != 0
    for variable in (*KEY_VARIABLES, "VIGIL_DEV=1"):
        assert variable in result.stderr
    assert not (tmp_path / "v.db").exists()  # refused before touching the database


def test_with_vigil_dev_serve_gets_its_schema_then_runs_vigil(tmp_path: Path) -> None:
    result = _run(tmp_path, "serve", "--help", VIGIL_DEV="1")
    assert result.returncode == 0, result.stderr
    assert "Serve decisions over HTTP" in result.stdout
    assert "development privacy keys" in result.stderr  # said, not silent
    with sqlite3.connect(tmp_path / "v.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert {"transactions", "logins"} <= tables


def test_other_commands_go_straight_to_vigil(tmp_path: Path) -> None:
    result = _run(tmp_path, "--version")
    assert result.returncode == 0, result.stderr
    assert vigil.__version__ in result.stdout
    assert not (tmp_path / "v.db").exists()


def test_with_its_own_keys_serve_waits_for_postgresql_then_gives_up(tmp_path: Path) -> None:
    # Past the key check without VIGIL_DEV, to the database: port 1 on the loopback, where
    # nothing listens and every connection is refused at once.
    result = _run(
        tmp_path,
        "serve",
        VIGIL_DATABASE_URL="postgresql://vigil@127.0.0.1:1/vigil",
        VIGIL_DB_ATTEMPTS="2",
        VIGIL_DB_PAUSE="0",
        **_own_keys(),
    )
    assert result.returncode != 0
    assert "development" not in result.stderr
    assert "attempt 1 of 2" in result.stderr
    assert "after 2 attempts" in result.stderr, result.stderr
