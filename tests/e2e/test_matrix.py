"""Issue 5: every catalog topology passes every check that applies to it."""

from __future__ import annotations

import pytest

from lab.topology import catalog, load_topology


@pytest.mark.parametrize("name", catalog())
def test_recommended_topology_passes_every_check_that_applies(lab_topology, lab_checks, name):
    results = lab_checks(lab_topology(name))
    failures = {id_: f"{r.observed} | fix: {r.hint}" for id_, r in results.items() if r.ok is False}
    assert failures == {}
    not_applicable = {"git.clone-slow"}  # no slow repository is configured in the catalog
    if not load_topology(name).public_url.startswith("https://"):
        not_applicable |= {"tls.chain", "tls.hostname", "tls.protocols", "redirects.http-to-https"}
    assert {id_ for id_, r in results.items() if r.ok is None} == not_applicable
