"""Run registered checks: roots first, the rest concurrently (slow ones first), results in
registry order.

A check whose ``needs`` failed is not run: it is reported as blocked by that root cause.
A network or TLS error inside a check is a finding named in the user's terms
(:mod:`lab.checks.network`); only a real bug in a check says "the check crashed", with
its traceback saved to a file.
"""

from __future__ import annotations

import concurrent.futures
import secrets
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable

from lab.checks.base import (FRONT_DOOR, GATEWAY_GONE_HINT, REGISTRY, CheckResult, CheckSpec, CheckTarget, Verdict, failed,
                             not_applicable)
from lab.checks.network import describe, gateway_answers, is_network_error
from lab.client import request_id

MAX_PARALLEL_CHECKS = 8
"""Every slow check of a run (git, ssh, the browser) at once; the quick ones fill in as they end."""


def run_checks(target: CheckTarget, ids: Iterable[str] | None = None,
               on_start: Callable[[str], None] | None = None) -> list[CheckResult]:
    """Run checks (default: all, in registry order) and return their results in that
    order; never raises for a check's sake. ``on_start(id)`` is called as each starts.
    A root (a check another wanted check needs) runs first; a root that is not wanted is
    not consulted. When the lab's own gateway is gone, that is the one finding."""
    wanted = [REGISTRY[check_id] for check_id in (ids if ids is not None else REGISTRY)]
    if not gateway_answers(target.users):
        return _all_blocked_by_the_gateway(target, wanted)
    results: dict[str, CheckResult] = {}
    roots = [spec for spec in wanted if _is_root(spec, wanted)]
    for spec in roots:  # roots in order: each may block the next (front door, then TLS)
        results[spec.id] = _run_or_skip(spec, target, results, on_start)
    rest = [spec for spec in wanted if spec.id not in results and not spec.disruptive]
    rest.sort(key=lambda spec: not spec.slow)  # the slow ones first (stable: registry order within each)
    with concurrent.futures.ThreadPoolExecutor(max_workers=MAX_PARALLEL_CHECKS) as pool:
        futures = {spec.id: pool.submit(_run_or_skip, spec, target, results, on_start) for spec in rest}
        for check_id, future in futures.items():
            results[check_id] = future.result()
    for spec in wanted:  # alone, last: they stop part of the topology for a while
        if spec.id not in results:
            results[spec.id] = _run_or_skip(spec, target, results, on_start)
    return [results[spec.id] for spec in wanted]


def _all_blocked_by_the_gateway(target: CheckTarget, wanted: list[CheckSpec]) -> list[CheckResult]:
    finding = CheckResult(FRONT_DOOR, failed(f"the lab's users' gateway on 127.0.0.1:{target.users.socks_port} "
                                             "does not answer", REGISTRY[FRONT_DOOR].proves, GATEWAY_GONE_HINT))
    blocked = [CheckResult.blocked(spec.id, FRONT_DOOR, spec.proves) for spec in wanted if spec.id != FRONT_DOOR]
    return [finding, *blocked] if any(spec.id == FRONT_DOOR for spec in wanted) else blocked


def _is_root(spec: CheckSpec, wanted: list[CheckSpec]) -> bool:
    """A check some other wanted check needs."""
    return any(spec.id in other.needs for other in wanted)


def _root_cause(spec: CheckSpec, results: dict[str, CheckResult]) -> str | None:
    """The failed check that makes ``spec`` pointless: a need that failed, or the root cause
    that blocked a need (so a chain of blocked checks names the one real failure)."""
    for need in spec.needs:
        result = results.get(need)
        if result is not None and result.outcome.failed:
            return need
        if result is not None and result.blocked_by:
            return result.blocked_by
    return None


def _run_or_skip(spec: CheckSpec, target: CheckTarget, results: dict[str, CheckResult],
                 on_start: Callable[[str], None] | None) -> CheckResult:
    why_not = _not_applicable(spec, target)
    if why_not:
        return CheckResult(spec.id, not_applicable(why_not))
    cause = _root_cause(spec, results)
    if cause is not None:
        return CheckResult.blocked(spec.id, cause, spec.proves)
    if on_start is not None:
        on_start(spec.id)
    tag = f"lab-{spec.id}-{secrets.token_hex(4)}"
    token = request_id.set(tag)  # every request of this check carries it (X-Request-ID)
    started, wall = time.monotonic(), time.time()
    try:
        verdict = _call(spec, target)
    finally:
        request_id.reset(token)
    return CheckResult(spec.id, verdict, seconds=time.monotonic() - started, started=wall, request_id=tag)


def _not_applicable(spec: CheckSpec, target: CheckTarget) -> str | None:
    if target.applicable is not None and spec.id not in target.applicable:
        return "not among this topology's checks"
    return spec.applies(target)


def _call(spec: CheckSpec, target: CheckTarget) -> Verdict:
    try:
        return spec.function(target)
    except Exception as error:  # a check must always report
        if is_network_error(error):
            observed, hint = describe(error, target)
            return failed(observed, spec.proves, hint)
        return failed(f"the check crashed: {type(error).__name__}: {error}", spec.proves,
                      f"a bug in the lab, not in the topology; traceback in {_save_traceback(spec.id, error)}")


def _save_traceback(check_id: str, error: BaseException) -> str:
    handle, path = tempfile.mkstemp(prefix=f"bitbucket-lab-{check_id}-", suffix=".txt")
    with open(handle, "w") as out:
        out.write("".join(traceback.format_exception(error)))
    return path
