"""Build the lab's images once and find them again by the hash of their inputs.

Builds are serialised across every process on the machine by one file lock
(:func:`images_lock_path`), whatever each run's ``TMPDIR``: runs share one Docker engine,
so two runs with different temporary folders must still not build the same image twice
at once. The lock is ``/var/lock/bitbucket-lab-images.lock`` (``/var/lock`` is the FHS
place for lock files, shared by all users: a run opens an existing lock read-only, which
``flock`` needs no more than); where ``/var/lock`` has no such file and cannot take one, it
is ``~/.cache/bitbucket-lab/images.lock``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import functools
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.errors import APIError, ImageNotFound

from lab.docker_env import LAB_LABEL, docker_client
from lab.errors import LabError
from lab.progress import SILENT, Progress
from lab.proxies import KINDS
from lab.releases import DEFAULT_RELEASE, check_release

IMAGES_DIR = Path(__file__).resolve().parent
STUB_SOURCE = IMAGES_DIR.parent / "stub"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBOOTSTRAP_SCRIPTS = "/usr/share/debootstrap/scripts"
SHARED_LOCK = Path("/var/lock/bitbucket-lab-images.lock")
USER_LOCK = Path("~/.cache/bitbucket-lab/images.lock")
BUILD_TIMEOUT_S = 900


@dataclass(frozen=True)
class ImageSpec:
    """One image: its build context as {path in context: source file or directory}."""

    name: str
    context: Mapping[str, Path]


def _spec(name: str, extra: Mapping[str, Path] | None = None, folder: Path | None = None) -> ImageSpec:
    """Every file of ``folder`` (default ``images/<name>/``: Dockerfile, scripts), plus
    ``extra`` context entries."""
    context = {path.name: path for path in (folder or IMAGES_DIR / name).iterdir()
               if path.is_file() and not path.name.endswith(".pyc")}
    context.update(extra or {})
    return ImageSpec(name, context)


_SEAL = {"seal.sh": IMAGES_DIR / "common" / "seal.sh"}
_PROXY_SCRIPTS = {**_SEAL, "wait-hosts.sh": IMAGES_DIR / "common" / "wait-hosts.sh",
                  "prepare-host.sh": IMAGES_DIR / "common" / "prepare-host.sh"}
PROXY_SPECS: dict[str, ImageSpec] = {
    **{name: _spec(name, {**_PROXY_SCRIPTS, **kind.image_files}, kind.image_dir) for name, kind in KINDS.items()},
    # a variant runs its kind's start script unless its folder has its own
    **{image: _spec(image, {**_PROXY_SCRIPTS, "start.sh": kind.image_dir / "start.sh"}, kind.package / folder)
       for kind in KINDS.values() for image, folder in kind.image_variants.items()},
}
PROXY_IMAGES: tuple[str, ...] = tuple(PROXY_SPECS)
"""Built from the chosen release's base (``lab/proxies/<kind>/image``); the stub and the
gateway always from the default."""
SPECS: dict[str, ImageSpec] = {
    "stub": _spec("stub", {"stub": STUB_SOURCE, **_SEAL}),
    **PROXY_SPECS,
    "gateway": _spec("gateway", _SEAL),
    "browser": _spec("browser", _SEAL),
}
OPTIONAL_IMAGES: tuple[str, ...] = ("browser", *(image for kind in KINDS.values() for image in kind.image_variants))
"""Built only when asked for by name (``ensure_images(("browser",))``): Chromium is big, and
runs without the browser node (``--no-browser``) never need it; httpd laid out as the official
image (built from source) only for a customer's ``ServerRoot "/usr/local/apache2"``."""
IMAGE_NAMES: tuple[str, ...] = tuple(name for name in SPECS if name not in OPTIONAL_IMAGES)
"""The images every topology needs: the default of :func:`ensure_images`."""


def image_tag(name: str, base_id: str, release: str = DEFAULT_RELEASE) -> str:
    """``bitbucket-lab/<name>:<hash>`` for the image built from this tree on ``base_id``
    (``<release>-<hash>`` for a proxy of another release than the default)."""
    if name not in SPECS:
        raise LabError(f"unknown image {name!r}; the lab has: {', '.join(SPECS)}")
    digest = hashlib.sha256(base_id.encode())
    for arcname, path in _context_paths(SPECS[name]):
        stat = path.stat()
        digest.update(arcname.encode() + b"\0" + _file_digest(path, stat.st_size, stat.st_mtime_ns))
    prefix = "" if release == DEFAULT_RELEASE else f"{release}-"
    return f"bitbucket-lab/{name}:{prefix}{digest.hexdigest()[:16]}"


def ensure_images(
    names: tuple[str, ...] | None = None, progress: Progress = SILENT, release: str = DEFAULT_RELEASE
) -> dict[str, str]:
    """Return {name: tag} for ``names`` (default all), building only what is missing; the
    proxies come from Debian ``release`` (its base is made on first use).

    Safe to call from several processes at once (pytest -n): builds are serialised by a
    file lock, and the second process finds the images the first one built.
    """
    wanted = names or tuple(name for name in IMAGE_NAMES if _buildable(name, release))
    for name in wanted:
        if name not in SPECS:
            raise LabError(f"unknown image {name!r}; the lab has: {', '.join(SPECS)}")
        if not _packaged(name, release):
            raise LabError(f"{KINDS[name].label} is not packaged in Debian {release}: choose --proxy-version "
                           + " or ".join(KINDS[name].debian_versions))
        if name in KINDS and KINDS[name].unavailable:
            raise LabError(str(KINDS[name].unavailable))
    check_release(release)
    client = docker_client()
    with _build_lock():
        bases = {DEFAULT_RELEASE: _ensure_base(client, progress)}
        if release != DEFAULT_RELEASE and any(name in PROXY_IMAGES for name in wanted):
            bases[release] = _ensure_base(client, progress, release)
        plan = {name: bases[release] if name in PROXY_IMAGES and release in bases else bases[DEFAULT_RELEASE]
                for name in wanted}
        tags = {name: image_tag(name, client.images.get(base).id,
                                release if name in PROXY_IMAGES else DEFAULT_RELEASE)
                for name, base in plan.items()}
        missing = [name for name, tag in tags.items() if not _image_exists(client, tag)]
        if missing:
            _build_parallel(client, missing, tags, plan, progress)
    return tags


def built_images(names: tuple[str, ...], release: str = DEFAULT_RELEASE) -> dict[str, str]:
    """{name: tag} of the images among ``names`` already built for ``release`` from this tree:
    nothing is built (a report names what exists, not what it would have to make)."""
    client = docker_client()
    bases = {DEFAULT_RELEASE: _existing_base(client, DEFAULT_RELEASE), release: _existing_base(client, release)}
    found: dict[str, str] = {}
    for name in names:
        base = bases[release] if name in PROXY_IMAGES else bases[DEFAULT_RELEASE]
        if base is None or name not in SPECS or not _buildable(name, release):
            continue
        tag = image_tag(name, client.images.get(base).id, release if name in PROXY_IMAGES else DEFAULT_RELEASE)
        if _image_exists(client, tag):
            found[name] = tag
    return found


def _packaged(name: str, release: str) -> bool:
    """Whether Debian ``release`` has the proxy of image ``name`` (Caddy came with bookworm)."""
    return name not in KINDS or release in KINDS[name].debian_versions


def _buildable(name: str, release: str) -> bool:
    """Whether "every image" takes ``name``: its proxy packaged in ``release`` and its files here."""
    return _packaged(name, release) and not (name in KINDS and KINDS[name].unavailable)


def _build_parallel(client: docker.DockerClient, names: list[str], tags: dict[str, str],
                    bases: dict[str, str], progress: Progress) -> None:
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(names)) as pool:
        futures = [pool.submit(_build_one, client, SPECS[n], tags[n], bases[n], progress)
                   for n in names]
        for future in futures:
            future.result()


def _build_one(client: docker.DockerClient, spec: ImageSpec, tag: str, base_ref: str,
               progress: Progress) -> None:
    started = time.monotonic()
    progress.step(f"building image {spec.name} ({tag})")
    log: list[str] = []
    stream = client.api.build(
        fileobj=_context_tar(spec), custom_context=True, tag=tag, rm=True, forcerm=True,
        buildargs={"BASE": base_ref}, labels={LAB_LABEL: "1"}, decode=True,
        timeout=BUILD_TIMEOUT_S,
    )
    for chunk in stream:
        if "error" in chunk:
            tail = " | ".join(line.strip() for line in log[-3:] if line.strip())
            raise LabError(f"building image {spec.name} failed: {chunk['error'].strip()} "
                           f"(last output: {tail})")
        line = chunk.get("stream", "")
        if line.strip():
            log.append(line)
            progress.detail(f"  {spec.name}: {line.strip()}")
    progress.step(f"built image {spec.name} in {time.monotonic() - started:.1f} s")


def _image_exists(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
    except ImageNotFound:
        return False
    return True


def _ensure_base(client: docker.DockerClient, progress: Progress, release: str = DEFAULT_RELEASE) -> str:
    """The base image reference of ``release``: an override (default release only), the
    upstream slim image, or one made locally with debootstrap."""
    override = os.environ.get("LAB_BASE_IMAGE") if release == DEFAULT_RELEASE else None
    if override and not _image_exists(client, override):
        raise LabError(f"LAB_BASE_IMAGE={override} is not a local image")
    existing = _existing_base(client, release)
    if existing is not None:
        return existing
    upstream, local = f"debian:{release}-slim", f"bitbucket-lab/base:{release}"
    try:
        progress.step(f"pulling {upstream}")
        client.images.pull(upstream)
        return upstream
    except APIError:
        progress.step(f"no registry reachable; making {local} with debootstrap")
    _debootstrap_base(client, progress, release)
    return local


def _existing_base(client: docker.DockerClient, release: str) -> str | None:
    """The base image of ``release`` already on this machine (the override, the upstream slim
    image, the debootstrapped one), or None."""
    override = os.environ.get("LAB_BASE_IMAGE") if release == DEFAULT_RELEASE else None
    if override:
        return override if _image_exists(client, override) else None
    return next((ref for ref in (f"debian:{release}-slim", f"bitbucket-lab/base:{release}")
                 if _image_exists(client, ref)), None)


def _debootstrap_base(client: docker.DockerClient, progress: Progress, release: str = DEFAULT_RELEASE) -> None:
    if shutil.which("debootstrap") is None:
        raise LabError(f"cannot pull debian:{release}-slim and debootstrap is not installed "
                       "(apt-get install debootstrap), or set LAB_BASE_IMAGE to a local image")
    if os.geteuid() != 0:
        raise LabError(f"cannot pull debian:{release}-slim; making a base with debootstrap needs root")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lab-base-") as workdir:
        root, tarball = Path(workdir, "root"), Path(workdir, "root.tar")
        command = ["debootstrap", "--variant=minbase", release, str(root), DEBIAN_MIRROR]
        if not Path(DEBOOTSTRAP_SCRIPTS, release).exists():  # an older debootstrap knows no newer suite
            command.append(f"{DEBOOTSTRAP_SCRIPTS}/sid")
        result = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
        if result.returncode != 0:
            last = (result.stdout + result.stderr).strip().splitlines()[-1:]
            raise LabError(f"debootstrap failed: {' '.join(last) or result.returncode}")
        subprocess.run(["tar", "-C", str(root), "-cf", str(tarball), "."], check=True)
        client.api.import_image_from_file(str(tarball), repository="bitbucket-lab/base", tag=release)
    progress.step(f"made bitbucket-lab/base:{release} in {time.monotonic() - started:.1f} s")


def _context_paths(spec: ImageSpec) -> Iterator[tuple[str, Path]]:
    """(path in context, file) for every file of the build context, in a stable order."""
    for arcname, source in sorted(spec.context.items()):
        if source.is_dir():
            for path in sorted(source.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    yield f"{arcname}/{path.relative_to(source).as_posix()}", path
        else:
            yield arcname, source


def _context_files(spec: ImageSpec) -> Iterator[tuple[str, bytes]]:
    """(path in context, bytes) for every file of the build context, in a stable order."""
    for arcname, path in _context_paths(spec):
        yield arcname, path.read_bytes()


@functools.lru_cache(maxsize=1024)
def _file_digest(path: Path, size: int, mtime_ns: int) -> bytes:
    """SHA-256 of a context file, read once per content (size and mtime are the key): an image's
    tag is asked for at every start, and Traefik's binary alone is 185 MB."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.digest()


def _context_tar(spec: ImageSpec) -> io.BytesIO:
    buffer = io.BytesIO()
    # Scripts, and a binary the context names directly (Traefik's), keep their executable bit.
    binaries = {arcname for arcname, source in spec.context.items() if source.is_file() and os.access(source, os.X_OK)}
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for arcname, data in _context_files(spec):
            info = tarfile.TarInfo(arcname)
            info.size, info.mode = len(data), 0o755 if arcname.endswith(".sh") or arcname in binaries else 0o644
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def images_lock_path() -> Path:
    """The one lock file every run on this machine takes to build images (see the module
    docstring); it never depends on ``TMPDIR``."""
    if os.path.lexists(SHARED_LOCK) or os.access(SHARED_LOCK.parent, os.W_OK | os.X_OK):
        return SHARED_LOCK
    return USER_LOCK.expanduser()


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    fd = _open_lock(images_lock_path())
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)    # releases the lock


def _open_lock(path: Path) -> int:
    """An fd of the lock file, created 0644 when missing; never through a link. An existing
    file is opened read-only: another user's lock in sticky ``/var/lock`` can only be opened
    so (``fs.protected_regular``), and ``flock`` needs no more."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(3):
        try:
            return os.open(path, flags)
        except FileNotFoundError:
            pass
        except OSError as error:   # a link planted there (ELOOP), a file no one may read
            raise LabError(f"cannot open the image-build lock {path}: {error.strerror or error}; "
                           "remove it (any run makes it anew)") from None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue        # another run created it in between: open theirs
        except OSError as error:
            raise LabError(f"cannot create the image-build lock {path}: {error.strerror or error}") from None
        os.fchmod(fd, 0o644)    # whatever the umask: every user's runs open it
        return fd
    raise LabError(f"cannot open the image-build lock {path}: it keeps disappearing")
