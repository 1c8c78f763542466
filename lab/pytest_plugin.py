"""pytest fixtures for topology tests — the lab's own suite and yours.

    def test_my_proxy_keeps_encoded_slashes(lab_topology, lab_checks):
        running = lab_topology("apache-https", proxy_config=Path("my-site.conf"))
        assert lab_checks(running, ["path.encoded-slash"])["path.encoded-slash"].ok

Every topology started through ``lab_topology`` is removed when the test ends, passed or
failed; runs killed outright are swept by the next start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from lab.checks import CheckResult, run_checks
from lab.provision import DropIns
from lab.runtime import LabOptions, RunningTopology, start
from lab.targets import check_target
from lab.topology import load_topology

StartTopology = Callable[..., RunningTopology]
RunChecks = Callable[[RunningTopology, Iterable[str] | None], dict[str, CheckResult]]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "docker: needs a Docker engine (real containers)")


@pytest.fixture
def lab_topology(tmp_path: Path) -> Iterator[StartTopology]:
    """Start catalog topologies by name; keyword options as the CLI's: ``proxy_config``,
    ``properties``, ``public_url``, ``tls_variant``. Each gets its own PKI in tmp_path."""
    started: list[RunningTopology] = []

    def start_topology(name: str, *, proxy_config: Path | None = None, properties: Path | None = None,
                       public_url: str | None = None, tls_variant: str = "good") -> RunningTopology:
        options = LabOptions(DropIns(proxy_config, properties), tls_variant,
                             certs_dir=tmp_path / f"certs-{name}-{len(started)}")
        topology = load_topology(name)
        running = start(topology.with_public_url(public_url) if public_url else topology, options)
        started.append(running)
        return running

    yield start_topology
    for running in started:
        running.stop()


@pytest.fixture
def lab_checks() -> RunChecks:
    """Run checks (by id, default all that apply) on a running topology → {id: result}."""
    def run(running: RunningTopology, ids: Iterable[str] | None = None) -> dict[str, CheckResult]:
        return {result.id: result for result in run_checks(check_target(running), ids)}

    return run
