"""The exact proxy and OpenSSL versions each release's images ship, read from the images."""

from __future__ import annotations

import contextlib
import re

from docker.errors import DockerException

from lab.docker_env import docker_client
from lab.errors import LabError
from lab.images.build import PROXY_IMAGES, ensure_images
from lab.progress import SILENT, Progress
from lab.releases import RELEASES
from lab.sweep import owner_labels

COMMANDS = {"nginx": ("nginx", ["nginx", "-v"], r"nginx/([\w.]+)"),
            "apache": ("apache", ["apache2", "-v"], r"Apache/([\w.]+)"),
            "haproxy": ("haproxy", ["haproxy", "-v"], r"HA-?Proxy version ([\w.+~-]+)"),
            "openssl": ("nginx", ["nginx", "-V"], r"(?:built|running) with OpenSSL ([\w.]+)")}
"""What to run in which image, and where its version is in the output."""


def release_versions(progress: Progress = SILENT) -> dict[str, dict[str, str]]:
    """{release: {"nginx": "1.22.1", "apache": …, "haproxy": …, "openssl": …}}, building
    each release's proxy images when missing."""
    return {release: image_versions(ensure_images(PROXY_IMAGES, progress, release)) for release in RELEASES}


def image_versions(tags: dict[str, str]) -> dict[str, str]:
    """What each proxy image reports about itself (``-v``), by a throwaway container."""
    versions = {}
    for what, (image, command, _) in COMMANDS.items():
        versions[what] = parse_version(what, run_once(tags[image], command)) or "?"
    return versions


def parse_version(what: str, output: str) -> str | None:
    match = re.search(COMMANDS[what][2], output)
    return match.group(1) if match else None


def run_once(image: str, command: list[str]) -> str:
    """A command's output in a throwaway container of ``image`` (no network), removed after."""
    client = docker_client()
    try:
        container = client.containers.create(image, command, entrypoint=[], network_mode="none",
                                             labels=owner_labels())
    except DockerException as error:
        raise LabError(f"cannot run {image}: {error}") from None
    try:
        container.start()
        container.wait(timeout=60)
        return container.logs().decode("utf-8", "replace")
    except DockerException as error:
        raise LabError(f"running {' '.join(command)} in {image} failed: {error}") from None
    finally:
        with contextlib.suppress(DockerException):
            container.remove(force=True)
