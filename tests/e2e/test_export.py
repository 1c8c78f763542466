"""Issue 6: exported Compose projects are valid and bring their topology up."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

from lab.client import Vantage
from lab.docker_env import docker_client
from lab.export import export_compose
from lab.topology import catalog, load_topology


def _compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
    return ["docker", "compose"] if probe.returncode == 0 else None


COMPOSE = _compose_command()


@pytest.mark.parametrize("name", catalog())
def test_exported_compose_file_references_built_images_and_existing_files(tmp_path, name):
    path = export_compose(load_topology(name), tmp_path)
    text = path.read_text()
    for image in re.findall(r'image: "([^"]+)"', text):
        docker_client().images.get(image)
    for source in re.findall(r'- "\./([^:]+):', text):
        assert (path.parent / source).is_file(), source
    assert '"127.0.0.1::1080"' in text
    if COMPOSE:
        validated = subprocess.run([*COMPOSE, "-f", str(path), "config", "-q"], capture_output=True, text=True)
        assert validated.returncode == 0, validated.stderr


@pytest.mark.skipif(COMPOSE is None, reason="no docker compose tool on this machine (CI installs docker-compose)")
def test_an_exported_compose_project_brings_its_topology_up(tmp_path):
    path = export_compose(load_topology("nginx-https"), tmp_path)
    project = ["-p", f"labexport{tmp_path.name[-8:].lower().replace('_', '')}", "-f", str(path)]
    try:
        subprocess.run([*COMPOSE, *project, "up", "-d"], check=True, capture_output=True, timeout=180)
        port = subprocess.run([*COMPOSE, *project, "port", "gateway-outside", "1080"], capture_output=True,
                              text=True, check=True).stdout.strip().rsplit(":", 1)[1]
        session = Vantage(int(port), Path(path.parent / "certs" / "ca.pem")).session()
        status = _eventually(lambda: session.get("https://bitbucket.lab.test/bitbucket/status", timeout=5).json())
        assert status == {"state": "RUNNING"}
    finally:
        subprocess.run([*COMPOSE, *project, "down", "-v", "--remove-orphans"], capture_output=True, timeout=120)


def _eventually(probe, attempts: int = 50):  # type: ignore[no-untyped-def]
    for _ in range(attempts):
        try:
            return probe()
        except requests.RequestException:
            time.sleep(0.2)
    return probe()
