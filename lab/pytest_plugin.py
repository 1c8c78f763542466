"""pytest fixtures for topology tests — the lab's own suite and yours.

    def test_my_proxy_keeps_encoded_slashes(lab_topology, lab_checks):
        running = lab_topology("apache-https", proxy_config=Path("my-site.conf"))
        assert lab_checks(running, ["path.encoded-slash"])["path.encoded-slash"].ok

    def test_the_customers_files_push_20_mb(lab_reproduce):
        run = lab_reproduce(Path("bundle"))
        assert run.results_by_id["git.push-large"].ok

Every topology started through these fixtures is removed when the test ends, passed or
failed — or, for ``lab_topology``, kept for the next test of the same worker that asks for
the same topology, which gets it reloaded in place with its own files (a few recent ones per
worker; ``LAB_FRESH_TOPOLOGIES=1`` starts each anew). Runs killed outright are swept by the
next start. Tests of one topology go to one worker under ``pytest -n N --dist loadgroup``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from lab.checks import CheckResult
from lab.errors import LabError
from lab.provision import DropIns
from lab.releases import DEFAULT_RELEASE
from lab.reload import reload_in_place
from lab.runtime import LabOptions, RunningTopology, attach_browser, start
from lab.sharding import in_shard, parse_shard
from lab.targets import check_running
from lab.topology import catalog, load_topology

StartTopology = Callable[..., RunningTopology]
RunChecks = Callable[..., dict[str, CheckResult]]
PoolKey = tuple[str, str | None]
KEPT_PER_WORKER = 3
"""Topologies a worker keeps running between tests (the most recently used)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--lab-shard", metavar="K/N", default=None,
                     help="run only shard K of N: tests parametrized by a topology or customer case are "
                          "split by it, the others by their file")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "docker: needs a Docker engine (real containers)")


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the xdist_group markers into node ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:  # under --dist loadgroup, a topology's tests share a worker (and its kept topology)
        if key := topology_key(item):
            item.add_marker(pytest.mark.xdist_group(key))
    text = config.getoption("--lab-shard")
    if not text:
        return
    try:
        shard = parse_shard(text)
    except LabError as error:
        raise pytest.UsageError(str(error)) from None
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        key = topology_key(item) or f"file:{item.path.name}"  # unbound tests: split by file
        (keep if in_shard(key, shard) else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def topology_key(item: pytest.Item) -> str | None:
    """The topology (or customer case) a parametrized test brings up, if any: a parameter
    that is a catalog name, has a ``topology`` attribute, or is a case directory."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    names = set(catalog())
    for value in params.values():
        if isinstance(value, str) and value in names:
            return value
        if isinstance(getattr(value, "topology", None), str):
            return str(value.topology)
        if isinstance(value, Path) and (value / "case.toml").is_file():
            return f"case:{value.name}"
    return None


class _KeptTopologies:
    """Running topologies a worker keeps for its next tests, by (name, public URL). A test
    that wants the browser node gets it added to a kept topology started without one; for a
    test that does not, the node idles (its options say no browser: the checks leave it be)."""

    def __init__(self) -> None:
        self.kept: OrderedDict[PoolKey, RunningTopology] = OrderedDict()
        self.enabled = os.environ.get("LAB_FRESH_TOPOLOGIES", "") != "1"

    def take(self, key: PoolKey, options: LabOptions) -> RunningTopology | None:
        """The kept topology for ``key`` given ``options`` in place, or None (then start anew).
        When the change is refused (a config the proxy rejects, one that never gets ready),
        the kept topology gets its previous files back and stays kept; the test's own start
        then meets the refusal as a user's start would."""
        running = self.kept.pop(key, None)
        if running is None:
            return None
        previous = running.options
        try:
            reload_in_place(running, dataclasses.replace(options, certs_dir=previous.certs_dir))
            if options.browser:
                attach_browser(running)
        except LabError:
            self._restore(key, running, previous)
            return None
        except Exception:  # noqa: BLE001 — any doubt about a kept topology: start a fresh one
            running.stop()
            return None
        return running

    def _restore(self, key: PoolKey, running: RunningTopology, previous: LabOptions) -> None:
        """Give a kept topology whose change was refused its previous files again (a rejected
        config never left them; one that loaded but never got ready is reloaded back) and
        keep it; stop it when that fails too."""
        try:
            reload_in_place(running, previous)
        except Exception:  # noqa: BLE001 — it cannot be trusted any more
            running.stop()
            return
        self.give_back(key, running)

    def give_back(self, key: PoolKey, running: RunningTopology) -> None:
        if not self.enabled or key in self.kept or running.exited_nodes():
            running.stop()
            return
        self.kept[key] = running
        while len(self.kept) > KEPT_PER_WORKER:
            self.kept.popitem(last=False)[1].stop()

    def stop_all(self) -> None:
        while self.kept:
            self.kept.popitem()[1].stop()


@pytest.fixture(scope="session")
def _lab_kept_topologies() -> Iterator[_KeptTopologies]:
    kept = _KeptTopologies()
    try:
        yield kept
    finally:
        kept.stop_all()


@pytest.fixture
def lab_topology(tmp_path: Path, _lab_kept_topologies: _KeptTopologies) -> Iterator[StartTopology]:
    """``lab_topology(name, *, proxy_config=None, properties=None, public_url=None,
    tls_variant="good", browser=False, http2=False, proxy_release="bookworm") -> RunningTopology``:
    start a catalog topology (``python -m lab list``), with your site file and/or
    ``bitbucket.properties`` used verbatim, users on ``public_url``, a PKI variant, the browser
    node (Chromium on the users' network) for the ``browser.*`` checks, HTTP/2 at a recommended
    TLS front door, and the proxy of another Debian release (``python -m lab list --versions``).
    Each start gets its own PKI under ``tmp_path`` (a kept topology keeps its PKI folder, made
    anew for another TLS variant)."""
    yield from _topologies(tmp_path, _lab_kept_topologies)


@pytest.fixture(scope="module")
def lab_module_topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartTopology]:
    """:func:`lab_topology` for a whole test module: start once, assert many times; the
    topologies are removed when the module's last test ends."""
    yield from _topologies(tmp_path_factory.mktemp("lab"))


def _topologies(certs_root: Path, kept: _KeptTopologies | None = None) -> Iterator[StartTopology]:
    started: list[tuple[PoolKey, RunningTopology]] = []

    def start_topology(name: str, *, proxy_config: Path | None = None, properties: Path | None = None,
                       public_url: str | None = None, tls_variant: str = "good",
                       browser: bool = False, http2: bool = False,
                       proxy_release: str = DEFAULT_RELEASE) -> RunningTopology:
        options = LabOptions(DropIns(proxy_config, properties), tls_variant,
                             certs_dir=certs_root / f"certs-{name}-{len(started)}", browser=browser, http2=http2,
                             proxy_release=proxy_release)
        key: PoolKey = (name, public_url)
        running = kept.take(key, options) if kept is not None else None
        if running is None:
            topology = load_topology(name)
            running = start(topology.with_public_url(public_url) if public_url else topology, options)
        started.append((key, running))
        return running

    try:
        yield start_topology
    finally:
        for key, running in started:
            if kept is not None:
                kept.give_back(key, running)
            else:
                running.stop()


@pytest.fixture(scope="session")
def lab_checks() -> RunChecks:
    """``lab_checks(running, ids=None) -> dict[str, CheckResult]``: run checks (by id,
    default every one) on a running topology; each result has ``ok`` (True, False, or None
    when not applicable or ``blocked_by`` another check), ``outcome`` (the same in words, with
    a pass that carries a note and a failure that is the lab's own told apart), ``observed``,
    ``hint`` (the fix of a failed check, the note of a passed one), ``verdict`` (all the check
    said: ``expected``, ``fix``, ``note``, ``cause``, ``attachments``), and for a failed check
    ``evidence`` (the proxy's and Bitbucket's log lines)."""
    def run(running: RunningTopology, ids: Iterable[str] | None = None) -> dict[str, CheckResult]:
        return {result.id: result for result in check_running(running, ids)}

    return run


@pytest.fixture
def lab_reproduce(tmp_path: Path) -> Iterator[Callable[..., object]]:
    """``lab_reproduce(*paths, public_url=None) -> ReproducedRun``: reproduce a customer's
    bundle (``python -m lab reproduce``) and run every check; the run has ``results``,
    ``results_by_id``, ``mapping`` (what the lab mapped) and ``running``."""
    from lab.reproduce.session import reproduce

    with contextlib.ExitStack() as stack:
        def start_reproduction(*paths: Path, public_url: str | None = None) -> object:
            certs = tmp_path / f"certs-{len(list(tmp_path.glob('certs-*')))}"
            return stack.enter_context(reproduce(list(paths), public_url, certs))

        yield start_reproduction
