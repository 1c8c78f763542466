"""The exact proxy and OpenSSL versions each release's images ship, read from the images."""

from __future__ import annotations

import re

from lab.docker_env import LAB_LABEL, docker_client
from lab.images.build import PROXY_IMAGES, ensure_images
from lab.progress import SILENT, Progress
from lab.releases import RELEASES

COMMANDS = {"nginx": ("nginx", ["nginx", "-v"], r"nginx/([\w.]+)"),
            "apache": ("apache", ["apache2", "-v"], r"Apache/([\w.]+)"),
            "haproxy": ("haproxy", ["haproxy", "-v"], r"HAProxy version ([\w.+~-]+)"),
            "openssl": ("nginx", ["openssl", "version"], r"OpenSSL ([\w.]+)")}


def release_versions(progress: Progress = SILENT) -> dict[str, dict[str, str]]:
    """{release: {"nginx": "1.22.1", "apache": …, "haproxy": …, "openssl": …}}, building
    each release's proxy images when missing."""
    return {release: image_versions(ensure_images(PROXY_IMAGES, progress, release)) for release in RELEASES}


def image_versions(tags: dict[str, str]) -> dict[str, str]:
    """What each proxy image reports about itself (``-v``), by a throwaway container."""
    client, versions = docker_client(), {}
    for what, (image, command, pattern) in COMMANDS.items():
        output = client.containers.run(tags[image], command, entrypoint=[], remove=True, stderr=True,
                                       labels={LAB_LABEL: "1"}, network_mode="none")
        match = re.search(pattern, output.decode("utf-8", "replace"))
        versions[what] = match.group(1) if match else "?"
    return versions
