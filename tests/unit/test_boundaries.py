"""The checks see Bitbucket as users do: they import nothing of the stub's code (issue 27)."""

from __future__ import annotations

import ast
from pathlib import Path

CHECKS = Path(__file__).resolve().parents[2] / "lab" / "checks"


def test_no_check_module_imports_the_stub():
    imported = {(path.name, node.module) for path in CHECKS.glob("*.py")
                for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ImportFrom)
                and node.module and node.module.startswith("lab.stub")}
    assert imported == set()


def test_the_session_cookie_the_browser_check_looks_for_is_the_one_the_stub_sets():
    from lab.checks.browser import SESSION_COOKIE
    from lab.stub.app import SESSION_COOKIE as STUB_COOKIE

    assert SESSION_COOKIE == STUB_COOKIE == "BITBUCKETSESSIONID"
