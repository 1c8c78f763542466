"""Our proxy config, proven with real traffic before it ships (bitbucket-topology-lab)."""

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def results(lab_module_topology, lab_checks):
    running = lab_module_topology("nginx-https", proxy_config=HERE / "bitbucket.conf",
                           properties=HERE / "bitbucket.properties")
    return lab_checks(running)


@pytest.mark.parametrize("check_id", ["reach.status", "redirects.public", "redirects.http-to-https",
                                      "tls.chain", "git.clone", "git.push-large", "path.encoded-slash"])
def test_our_proxy_passes(results, check_id):
    result = results[check_id]
    assert result.ok, f"{check_id}: {result.observed} — fix: {result.hint}"


def test_nothing_fails(results):
    failing = {check_id: r.hint for check_id, r in results.items() if r.ok is False}
    assert failing == {}
