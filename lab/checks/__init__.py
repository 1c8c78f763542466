"""Checks that prove a topology works as users experience it, and explain when not.

Every check has a stable id (part of the JSON contract) and yields a CheckResult: its
Verdict (``ok``: True, False, or None when it does not apply; what it observed, what it
expected, the fix of a failure or the note of a pass) and its ``outcome`` (pass, pass with
a note, fail, lab fault, not applicable, or blocked by another check's failure). Use
:func:`run_checks` from Python, the pytest plugin's fixtures from tests, or
``python -m lab check`` from a shell. The registry (:data:`REGISTRY`) is the one list of
checks; :data:`CHECK_IDS` is its order.
"""

from lab.checks import frontdoor, tls, http, git, http2, ssh, cluster, browser  # noqa: F401,I001  (registration order is report order)
from lab.checks.base import HOPS, REGISTRY, CheckResult, CheckSpec, CheckTarget
from lab.checks.runner import run_checks

CHECK_IDS: tuple[str, ...] = tuple(REGISTRY)

__all__ = ["CHECK_IDS", "HOPS", "REGISTRY", "CheckResult", "CheckSpec", "CheckTarget", "run_checks"]
