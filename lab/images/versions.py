"""The exact proxy and OpenSSL versions each release's images ship, read from the images."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from docker.errors import DockerException

from lab.docker_env import docker_client
from lab.errors import LabError
from lab.images.build import built_images, ensure_images
from lab.progress import SILENT, Progress
from lab.proxies import KINDS
from lab.releases import RELEASES
from lab.sweep import owner_labels

if TYPE_CHECKING:
    from lab.runtime import RunningTopology

_OPENSSL = next((kind for kind in KINDS.values() if kind.openssl_command), None)
"""The first kind whose image names the OpenSSL it links; None: reports name no OpenSSL."""
COMMANDS: dict[str, tuple[str, list[str], str]] = {
    **{name: (name, list(kind.version_command), kind.version_pattern) for name, kind in KINDS.items()},
    **({"openssl": (_OPENSSL.name, list(_OPENSSL.openssl_command), _OPENSSL.openssl_pattern)} if _OPENSSL else {})}
"""What to run in which image, and where its version is in the output."""


def release_versions(progress: Progress = SILENT) -> dict[str, dict[str, str]]:
    """{release: {proxy kind: its version ("1.22.1"), …, "openssl": …}}, building
    each release's proxy images when missing."""
    return {release: image_versions(ensure_images(_kinds_of(release), progress, release)) for release in RELEASES}


def _kinds_of(release: str) -> tuple[str, ...]:
    """The proxy kinds Debian ``release`` packages and this machine can build (every kind's
    image, none of its variants)."""
    return tuple(name for name, kind in KINDS.items() if release in kind.debian_versions and not kind.unavailable)


CACHE = Path(tempfile.gettempdir()) / "bitbucket-lab-versions.json"
"""Versions by image tag: a tag is a hash of the image's inputs, so what it reports never changes."""


def image_versions(tags: dict[str, str]) -> dict[str, str]:
    """What each proxy image reports about itself (``-v``), by throwaway containers (at
    once), remembered by image tag in :data:`CACHE`."""
    commands = {what: command for what, command in COMMANDS.items() if command[0] in tags}
    key = " ".join(sorted(tags[image] for image, _, _ in commands.values()))
    cache = _read_cache()
    known = cache.get(key)
    if isinstance(known, dict):
        return {str(what): str(version) for what, version in known.items()}
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(commands)) as pool:
        outputs = {what: pool.submit(run_once, tags[image], command) for what, (image, command, _) in commands.items()}
        versions = {what: parse_version(what, future.result()) or "?" for what, future in outputs.items()}
    with contextlib.suppress(OSError):
        cache[key] = versions
        temporary = CACHE.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(cache))
        temporary.replace(CACHE)
    return versions


def _read_cache() -> dict[str, object]:
    try:
        document = json.loads(CACHE.read_text())
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def lab_versions(release: str, running_kinds: tuple[str, ...] = (), progress: Progress = SILENT) -> dict[str, str]:
    """The versions a report names: the proxies and OpenSSL of ``release``'s images, and the
    git the checks run (the host's). Only ``running_kinds`` (the run's own proxies) are built
    when missing; the other kinds' images are named when they exist, never built for a report."""
    tags = built_images(_kinds_of(release), release)
    if running_kinds:  # ensure_images(()) would mean every image
        tags.update(ensure_images(running_kinds, progress, release))
    versions = image_versions(tags) if tags else {}
    names = {name: kind.label for name, kind in KINDS.items()}
    if _OPENSSL is not None:
        names["openssl"] = f"OpenSSL ({_OPENSSL.name} image)"
    shown = {names[what]: version for what, version in versions.items()}
    try:
        git = subprocess.run(["git", "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        git = "?"
    shown["git (the checks' client)"] = git.removeprefix("git version ") or "?"
    shown["proxy release"] = release
    return shown


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


def running_proxy_version(running: RunningTopology) -> str | None:
    """The exact version of the proxy that ran (``nginx/1.22.1``), read from its container."""
    proxy = running.topology.proxy
    if proxy is None:
        return None
    _, command, _ = COMMANDS[proxy.kind]
    try:
        result = running.containers[proxy.name].exec_run(command)
    except DockerException:
        return None
    version = parse_version(proxy.kind, result.output.decode("utf-8", "replace"))
    return f"{KINDS[proxy.kind].version_prefix}{version}" if version else None


def running_proxy(running: RunningTopology) -> dict[str, object]:
    """``{"kind", "version"}`` of the proxy that ran (both None for a topology without one):
    what ``--json`` says so a user can read back which ``--proxy-version`` really ran."""
    proxy = running.topology.proxy
    return {"kind": proxy.kind if proxy else None, "version": running_proxy_version(running)}


def running_kinds(running: RunningTopology) -> tuple[str, ...]:
    """The proxy kinds ``running`` runs (a topology without a proxy runs none)."""
    return tuple(dict.fromkeys(node.kind for node in running.topology.nodes if node.kind in KINDS))
