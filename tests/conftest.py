"""Everything under tests/e2e needs Docker and is marked so; unit tests never do. Tests that
move git traffic through a Go front door (Caddy, Traefik) are marked ``go_front_door``: with
several clones at once about three in a hundred are cut there (Go closes its own connection to
Bitbucket after the response headers; README, "Known fault"), not found yet, so the default
suite leaves them out (``nox -s tests -- -m go_front_door`` runs them)."""

from __future__ import annotations

from pathlib import Path

import pytest

E2E_DIR = Path(__file__).parent / "e2e"
GO_FRONT_DOORS = ("caddy", "traefik")
"""Proxy kinds written in Go: the topologies and bundles named after them are ``go_front_door``
in the modules whose checks move git traffic (a rejected config or an export moves none)."""
GIT_MODULES = ("test_matrix.py", "test_failure_catalog.py", "test_versions.py", "test_reproduce_shapes.py",
               "test_cases.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in Path(item.fspath).parents:
            item.add_marker(pytest.mark.docker)
            if Path(item.fspath).name in GIT_MODULES and any(kind in item.name.lower() for kind in GO_FRONT_DOORS):
                item.add_marker(pytest.mark.go_front_door)
