"""pytest fixtures for topology tests — the lab's own suite and yours.

    def test_my_proxy_keeps_encoded_slashes(lab_topology, lab_checks):
        running = lab_topology("apache-https", proxy_config=Path("my-site.conf"))
        assert lab_checks(running, ["path.encoded-slash"])["path.encoded-slash"].ok

    def test_the_customers_files_push_20_mb(lab_reproduce):
        run = lab_reproduce(Path("bundle"))
        assert run.results_by_id["git.push-large"].ok

Every topology started through these fixtures is removed when the test ends, passed or
failed; runs killed outright are swept by the next start.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from lab.checks import CheckResult
from lab.errors import LabError
from lab.provision import DropIns
from lab.runtime import LabOptions, RunningTopology, start
from lab.sharding import in_shard, parse_shard
from lab.targets import check_running
from lab.topology import catalog, load_topology

StartTopology = Callable[..., RunningTopology]
RunChecks = Callable[..., dict[str, CheckResult]]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--lab-shard", metavar="K/N", default=None,
                     help="run only shard K of N: tests parametrized by a topology or customer case are "
                          "split by it, the others by their file")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "docker: needs a Docker engine (real containers)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
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


@pytest.fixture
def lab_topology(tmp_path: Path) -> Iterator[StartTopology]:
    """``lab_topology(name, *, proxy_config=None, properties=None, public_url=None,
    tls_variant="good", browser=False) -> RunningTopology``: start a catalog topology
    (``python -m lab list``), with your site file and/or ``bitbucket.properties`` used
    verbatim, users on ``public_url``, a PKI variant, and the browser node (Chromium on the
    users' network) for the ``browser.*`` checks. Each start gets its own PKI under ``tmp_path``;
    every topology is removed when the test ends."""
    yield from _topologies(tmp_path)


@pytest.fixture(scope="module")
def lab_module_topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartTopology]:
    """:func:`lab_topology` for a whole test module: start once, assert many times; the
    topologies are removed when the module's last test ends."""
    yield from _topologies(tmp_path_factory.mktemp("lab"))


def _topologies(certs_root: Path) -> Iterator[StartTopology]:
    started: list[RunningTopology] = []

    def start_topology(name: str, *, proxy_config: Path | None = None, properties: Path | None = None,
                       public_url: str | None = None, tls_variant: str = "good",
                       browser: bool = False) -> RunningTopology:
        options = LabOptions(DropIns(proxy_config, properties), tls_variant,
                             certs_dir=certs_root / f"certs-{name}-{len(started)}", browser=browser)
        topology = load_topology(name)
        running = start(topology.with_public_url(public_url) if public_url else topology, options)
        started.append(running)
        return running

    try:
        yield start_topology
    finally:
        for running in started:
            running.stop()


@pytest.fixture(scope="session")
def lab_checks() -> RunChecks:
    """``lab_checks(running, ids=None) -> dict[str, CheckResult]``: run checks (by id,
    default every one) on a running topology; each result has ``ok`` (True, False, or None
    when not applicable or ``blocked_by`` another check), ``observed``, ``expected``, ``hint``,
    and for a failed check ``evidence`` (the proxy's and Bitbucket's log lines)."""
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
