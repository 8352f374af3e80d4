"""deploy/kubernetes/vigil.yaml read as data: an example manifest must at least be one that
would run (each variable a real setting, each container's arguments a real command, one
partition count for every worker, probes on the ports that answer)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import vigil
from tests.test_container import setting_exists

ROOT = Path(__file__).resolve().parents[1]
VIGIL = [sys.executable, "-c", "from vigil.cli import app; app()"]


@pytest.fixture(scope="module")
def manifest() -> dict[tuple[str, str], dict]:
    documents = yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / "vigil.yaml").read_text())
    return {(d["kind"], d["metadata"]["name"]): d for d in documents}


def _containers(manifest: dict[tuple[str, str], dict]) -> list[dict]:
    return [
        container
        for document in manifest.values()
        if document["kind"] in ("Deployment", "Job")
        for container in document["spec"]["template"]["spec"]["containers"]
    ]


def test_the_manifest_holds_the_schema_job_the_api_and_the_workers(manifest) -> None:
    assert set(manifest) == {
        ("ConfigMap", "vigil"),
        ("Job", "vigil-db-upgrade"),
        ("Deployment", "vigil-api"),
        ("Service", "vigil-api"),
        ("Deployment", "vigil-consume"),
    }


def test_every_setting_it_names_is_one_of_vigils(manifest) -> None:
    for name in manifest[("ConfigMap", "vigil")]["data"]:
        assert setting_exists(name), name
    text = (ROOT / "deploy" / "kubernetes" / "vigil.yaml").read_text()
    for name in ("VIGIL_DATABASE_URL", "VIGIL_PRIVACY__HMAC_KEY", "VIGIL_PRIVACY__ENCRYPTION_KEYS"):
        assert f"--from-literal={name}=" in text  # the Secret it says to create
        assert setting_exists(name), name


@pytest.mark.parametrize("index", range(3))
def test_each_containers_arguments_are_a_vigil_command_of_this_version(manifest, index) -> None:
    container = _containers(manifest)[index]
    assert container["image"] == f"vigil:{vigil.__version__}"
    done = subprocess.run([*VIGIL, *container["args"], "--help"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_workers_agree_on_partitions_and_are_probed_on_their_metrics_port(manifest) -> None:
    config = manifest[("ConfigMap", "vigil")]["data"]
    consume = manifest[("Deployment", "vigil-consume")]
    pod = consume["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    # One partition count, from the ConfigMap, for every worker (never per pod).
    assert {"configMapRef": {"name": "vigil"}} in container["envFrom"]
    assert "env" not in container
    assert consume["spec"]["replicas"] <= int(config["VIGIL_STREAM__PARTITIONS"])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == int(config["VIGIL_STREAM__METRICS_PORT"])
    assert container["livenessProbe"]["httpGet"]["port"] == "metrics"
    # Time to drain: the batch in hand committed, published and acknowledged.
    assert pod["terminationGracePeriodSeconds"] >= 30


def test_pods_run_as_the_images_user_not_root(manifest) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for document in manifest.values():
        if document["kind"] in ("Deployment", "Job"):
            security = document["spec"]["template"]["spec"]["securityContext"]
            assert security["runAsNonRoot"] is True
            assert f"USER {security['runAsUser']}:" in dockerfile
