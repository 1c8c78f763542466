"""Checks that prove a topology works as users experience it, and explain when not.

Every check has a stable id (part of the JSON contract) and returns a CheckResult:
``ok`` (True, False, or None when it does not apply), what it observed, what it
expected, and a hint naming the fix. Use :func:`run_checks` from Python, the pytest
plugin's fixtures from tests, or ``python -m lab check`` from a shell.
"""

from lab.checks.base import CHECK_IDS, CheckResult, CheckTarget, run_checks

__all__ = ["CHECK_IDS", "CheckResult", "CheckTarget", "run_checks"]
