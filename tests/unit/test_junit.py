"""JUnit XML from check results: one case per check, failures carry the fix."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

from lab.checks import CheckResult
from lab.checks.base import Verdict
from lab.junit import junit_xml

RESULTS = [
    CheckResult("reach.status", Verdict(True, "200 RUNNING", "200 RUNNING"), seconds=0.2),
    CheckResult("git.push-large", Verdict(False, "git exited 1: HTTP 413", "push succeeds",
                                          "nginx `client_max_body_size 0;`"), seconds=1.5),
    CheckResult.blocked("git.clone", "tls.chain", "clone"),
    CheckResult("tls.chain", Verdict(None, "the public URL is not https", "")),
]


def test_each_check_is_one_test_case_and_a_failure_carries_observed_expected_and_fix():
    suite = ElementTree.fromstring(junit_xml("nginx-https", "https://git.acme.example", RESULTS)).find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("4", "1", "2")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert list(cases) == ["reach.status", "git.push-large", "git.clone", "tls.chain"]
    failure = cases["git.push-large"].find("failure")
    assert failure is not None and "client_max_body_size" in failure.get("message", "")
    assert "observed: git exited 1: HTTP 413" in (failure.text or "") and "expected: push succeeds" in (failure.text or "")
    assert cases["reach.status"].find("failure") is None and cases["reach.status"].find("skipped") is None


def test_blocked_and_not_applicable_checks_are_skipped_with_their_reason():
    suite = ElementTree.fromstring(junit_xml("x", "http://x", RESULTS)).find("testsuite")
    skipped = {case.get("name"): case.find("skipped") for case in suite.iter("testcase")}
    assert skipped["git.clone"].get("message") == "blocked by tls.chain"
    assert skipped["tls.chain"].get("message") == "the public URL is not https"

