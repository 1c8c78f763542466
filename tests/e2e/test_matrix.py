"""Issue 5: every catalog topology passes every check that applies to it."""

from __future__ import annotations

import pytest

from lab.topology import catalog, load_topology


@pytest.mark.parametrize("name", catalog())
def test_recommended_topology_passes_every_check_that_applies(lab_topology, lab_checks, name):
    results = lab_checks(lab_topology(name))
    failures = {id_: f"{r.observed} | fix: {r.hint}" for id_, r in results.items() if r.ok is False}
    assert failures == {}
    applicable = set(load_topology(name).checks) - {"git.clone-slow"}
    assert {id_ for id_, r in results.items() if r.ok} == applicable
