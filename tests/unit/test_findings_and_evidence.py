"""Issue 24: evidence is what is tied to a check's own requests; one finding per cause."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree

from lab import sent
from lab.checks import CheckResult
from lab.checks.base import LAB_FAULT, Outcome, Verdict, failed, not_applicable, passed
from lab.evidence import _apache_threads, _connections, _Line, _Run, _with_evidence
from lab.findings import findings, with_findings
from lab.junit import junit_xml
from lab.report import results_json, results_table
from lab.targets import blame_lab_faults

PUSH_LARGE, STATUS = "lab-git.push-large-aaaa1111", "lab-reach.status-bbbb2222"
STARTED = 1_800_000_000.0
BODY_LIMIT_ERROR = ('2027/01/15 08:00:01 [error] 7#7: *41 client intended to send too large chunked body: '
                    '1048577+32768 bytes, client: 10.0.0.3, server: bitbucket.lab.test, request: '
                    '"POST /bitbucket/scm/LAB/repo.git/git-receive-pack HTTP/1.1", host: "bitbucket.lab.test"')


def at(seconds: float) -> float:
    return STARTED + seconds


def test_a_413_logged_by_one_check_is_not_the_fix_of_another_check_running_at_the_same_time():
    lines = [
        _Line(at(1), BODY_LIMIT_ERROR),
        _Line(at(1), f'10.0.0.3 "POST /bitbucket/scm/LAB/repo.git/git-receive-pack HTTP/1.1" 413 0 rid={PUSH_LARGE} '
                     'upstream=- ustatus=- rt=0.1 conn=41'),
        _Line(at(1), f'10.0.0.3 "GET /bitbucket/status HTTP/1.1" 404 0 rid={STATUS} upstream=10.0.0.5:7990 '
                     'ustatus=404 rt=0.0 conn=42'),
    ]
    run = _Run((PUSH_LARGE, STATUS), _connections(lines))
    status = CheckResult("reach.status", failed("404", "200", "the context path must match"), seconds=2,
                         started=at(0), request_id=STATUS)
    push = CheckResult("git.push-large", failed("413", "pushed", "the proxy refuses large bodies"), seconds=2,
                       started=at(0), request_id=PUSH_LARGE)

    status_after = _with_evidence(status, "nginx", lines, [], run=run)
    push_after = _with_evidence(push, "nginx", lines, [], run=run)

    assert "client_max_body_size" not in status_after.verdict.fix and status_after.verdict.cause is None
    assert BODY_LIMIT_ERROR in status_after.evidence.meanwhile
    assert BODY_LIMIT_ERROR not in status_after.evidence.proxy
    assert "client_max_body_size 0" in push_after.verdict.fix  # tied by its connection (*41 ↔ conn=41 rid=…)
    assert push_after.verdict.cause == "log:nginx body limit" and BODY_LIMIT_ERROR in push_after.evidence.proxy


def test_an_error_line_is_tied_by_its_request_only_when_one_check_alone_sent_that_request():
    slash, chars = "lab-path.encoded-slash-cccc3333", "lab-path.encoded-chars-dddd4444"
    sent.record(slash, "GET", "https://bitbucket.lab.test/bitbucket/rest/api/1.0/projects/LAB/repos/repo/commits/a%2Fb")
    sent.record(chars, "GET", "https://bitbucket.lab.test/bitbucket/status")
    sent.record(slash, "GET", "https://bitbucket.lab.test/bitbucket/status")
    refused = ('2027/01/15 08:00:01 [error] 7#7: *9 connect() failed (111: Connection refused) while connecting to '
               'upstream, client: 10.0.0.3, server: b, request: "GET {} HTTP/1.1", host: "b"')
    own = refused.format("/bitbucket/rest/api/1.0/projects/LAB/repos/repo/commits/a%2Fb")
    shared = refused.format("/bitbucket/status")
    run = _Run((slash, chars), {})

    assert run.tied(own, slash) and not run.tied(own, chars)
    assert not run.tied(shared, slash) and not run.tied(shared, chars)  # both sent it: nobody's evidence


def test_a_line_tied_by_its_request_must_also_fall_in_the_checks_run():
    tag = "lab-path.encoded-slash-eeee5555"
    sent.record(tag, "GET", "/bitbucket/only-this-check")
    line = ('2027/01/15 07:00:00 [error] 7#7: *9 open() failed, client: 10.0.0.3, server: b, '
            'request: "GET /bitbucket/only-this-check HTTP/1.1", host: "b"')
    earlier_run = [_Line(at(-3600), line)]
    result = CheckResult("path.encoded-slash", failed("404", "200", "own hint"), seconds=1, started=at(0),
                         request_id=tag)

    after = _with_evidence(result, "nginx", earlier_run, [], run=_Run((tag,), {}))

    assert after.evidence.proxy == () and after.verdict.fix == "own hint"


def failing(check_id: str, fix: str, cause: str | None = None, observed: str = "bad") -> CheckResult:
    return CheckResult(check_id, failed(observed, "good", fix, cause))


def blocked(check_id: str, by: str) -> CheckResult:
    return CheckResult.blocked(check_id, by, "")


def test_one_root_cause_is_one_finding_listing_every_check_it_breaks():
    verify_depth = "log:AH02040 chain too long"
    results = [CheckResult("reach.front-door", passed("ok", "ok")),
               failing("reach.status", "set SSLProxyVerifyDepth 2 (the proxy logged: AH02040 …1)", verify_depth),
               failing("routing.context-path", "the proxy answered 500"),  # no cause of its own: reach.status explains it
               failing("git.clone", "set SSLProxyVerifyDepth 2 (the proxy logged: AH02040 …2)", verify_depth),
               blocked("ssh.clone", "git.clone")]

    found = findings(results)

    assert len(found) == 1
    assert found[0].fix.startswith("set SSLProxyVerifyDepth 2") and found[0].checks[0] == "reach.status"
    assert set(found[0].checks) == {"reach.status", "routing.context-path", "git.clone"}
    assert found[0].blocked == ("ssh.clone",)


def test_a_check_failing_for_its_own_cause_is_its_own_finding_even_beside_a_root_that_failed():
    results = [failing("reach.status", "the context path must match"),
               failing("git.clone", "404 from the proxy"),
               failing("git.push-large", "client_max_body_size 0", "body-limit"),
               failing("tls.protocols", "ssl_protocols TLSv1.2 TLSv1.3")]

    found = findings(results)

    assert [finding.checks for finding in found] == [("reach.status", "git.clone"), ("git.push-large",),
                                                      ("tls.protocols",)]
    assert [finding.number for finding in found] == [1, 2, 3]


def test_a_chain_without_its_intermediate_is_one_finding_though_the_browser_check_fails_too():
    results = [failing("tls.chain", "serve leaf + intermediate"),
               failing("browser.git-agree", "Chromium fetches the intermediate by Authority Information Access"),
               blocked("git.clone", "tls.chain"), blocked("reach.status", "tls.chain")]

    found = findings(results)

    assert len(found) == 1 and found[0].checks == ("tls.chain", "browser.git-agree")
    assert found[0].blocked == ("git.clone", "reach.status")


def test_a_good_run_has_no_findings_and_prints_none():
    results = [CheckResult("reach.status", passed("200", "200")),
               CheckResult("git.push-streamed", passed("streamed", "streamed", "a note, not a failure"))]

    assert findings(results) == []
    assert "finding" not in results_table(results)
    assert json.loads(results_json("t", "https://x", results))["findings"] == []


def test_the_terminal_json_and_junit_show_the_same_finding_and_the_fix_only_once():
    results = with_findings([failing("reach.status", "set SSLProxyVerifyDepth 2", "log:AH02040"),
                             failing("git.clone", "set SSLProxyVerifyDepth 2", "log:AH02040"),
                             failing("git.push", "set SSLProxyVerifyDepth 2", "log:AH02040")])

    table = results_table(results)
    document = json.loads(results_json("t", "https://x", results))
    suite = ElementTree.fromstring(junit_xml("t", "https://x", results))

    assert table.count("SSLProxyVerifyDepth") == 1 and table.count("→ finding [1]") == 3
    assert [f["checks"] for f in document["findings"]] == [["reach.status", "git.clone", "git.push"]]
    assert {check["finding"] for check in document["checks"]} == {1}
    messages = [failure.get("message") for failure in suite.iter("failure")]
    assert all("finding [1]: set SSLProxyVerifyDepth 2" in message for message in messages)


def test_an_apache_line_about_the_connection_to_bitbucket_is_tied_by_the_worker_thread_that_served_the_request():
    clone, push = "lab-git.clone-ffff6666", "lab-git.push-abab7777"
    chain_too_long = ("[Fri Jan 15 08:00:01.100000 2027] [ssl:error] [pid 15:tid 140] [client 10.0.0.5:8443] AH02040: "
                      "Certificate Verification: Certificate Chain too long (chain has 2 certificates, but maximum "
                      "allowed are only 1)")
    lines = [
        _Line(at(1.1), chain_too_long),
        _Line(at(1.2), "[Fri Jan 15 08:00:01.200000 2027] [proxy:error] [pid 15:tid 141] [client 10.0.0.3:1] AH00898: "
                       f"Error during SSL Handshake with remote server rid={push}"),
        _Line(at(1.3), "[Fri Jan 15 08:00:01.300000 2027] [proxy:error] [pid 15:tid 140] [client 10.0.0.3:2] AH00898: "
                       f"Error during SSL Handshake with remote server rid={clone}"),
    ]
    run = _Run((clone, push), {}, _apache_threads(lines))
    result = CheckResult("git.clone", failed("500", "cloned", "own hint"), seconds=2, started=at(0), request_id=clone)

    after = _with_evidence(result, "apache", lines, [], run=run)

    assert run.tied(chain_too_long, clone) and not run.tied(chain_too_long, push)
    assert "SSLProxyVerifyDepth" in after.verdict.fix and after.verdict.cause == "log:AH02040 chain too long"


def test_a_lab_node_that_stopped_during_the_run_is_one_finding_not_a_list_of_configuration_fixes():
    results = [CheckResult("reach.status", passed("200", "200")),
               failing("git.clone", "early EOF: raise proxy_read_timeout", "proxy-timeout"),
               failing("ssh.push", "the load balancer's idle timeout"),
               failing("git.push", "client_max_body_size 0", "body-limit")]

    found = findings(with_findings(blame_lab_faults(
        results, ["gateway-outside exited with code 137: (the container printed nothing)"])))

    assert len(found) == 1 and found[0].checks == ("git.clone", "ssh.push", "git.push")
    assert found[0].fix.startswith("the lab's own node stopped during the run — gateway-outside")
    assert found[0].evidence.proxy == ("gateway-outside exited with code 137: (the container printed nothing)",)


def test_a_run_whose_nodes_all_kept_running_keeps_its_own_findings():
    results = [failing("git.push", "client_max_body_size 0", "body-limit")]

    assert blame_lab_faults(results, []) == results


def test_a_results_outcome_says_pass_note_fail_blocked_not_applicable_or_lab_fault_once():
    def result(verdict: Verdict) -> CheckResult:
        return CheckResult("x", verdict)
    assert result(passed("", "")).outcome is Outcome.PASS
    assert result(passed("", "", note="Bitbucket allows 8 KB")).outcome is Outcome.PASS_WITH_NOTE
    assert result(failed("", "", "fix")).outcome is Outcome.FAIL
    assert result(failed("", "", "", LAB_FAULT)).outcome is Outcome.LAB_FAULT
    assert CheckResult.blocked("x", "tls.chain", "").outcome is Outcome.BLOCKED
    assert result(not_applicable("no browser")).outcome is Outcome.NOT_APPLICABLE
    assert result(failed("", "", "")).to_json()["outcome"] == "fail"


def test_a_verdict_holds_a_fix_only_when_it_failed_and_a_note_only_when_it_passed():
    for wrong in (lambda: Verdict(True, "200", "200", fix="raise the limit"),
                  lambda: Verdict(None, "n/a", "", fix="raise the limit"),
                  lambda: Verdict(False, "413", "200", note="a limit to know"),
                  lambda: Verdict(None, "n/a", "", note="a limit to know")):
        try:
            wrong()
        except ValueError:
            continue
        raise AssertionError("a fix on a pass (or a note on a failure) was accepted")
    assert Verdict(False, "413", "200", fix="raise the limit").fix == "raise the limit"
    assert Verdict(True, "200", "200", note="a limit to know").note == "a limit to know"


def test_the_json_hint_is_the_fix_of_a_failure_and_the_note_of_a_pass_and_nothing_else():
    fix, note = CheckResult("a", failed("413", "200", "raise it")), CheckResult("b", passed("200", "200", "8 KB"))
    none = CheckResult("c", not_applicable("no https"))
    assert [r.to_json()["hint"] for r in (fix, note, none)] == ["raise it", "8 KB", ""]
    assert list(fix.to_json()) == ["id", "ok", "outcome", "observed", "expected", "hint", "seconds", "blocked_by",
                                   "finding", "evidence", "attachments"]


def test_the_logs_replace_a_failed_checks_fix_and_cause_and_leave_a_passed_checks_note_alone():
    from lab.checks.base import Evidence
    logged = Evidence(("proxy line",))
    failed_after = CheckResult("a", failed("413", "200", "own fix")).explained("the log's fix", "log:x", logged)
    passed_after = CheckResult("b", passed("200", "200", "a note")).explained("the log's fix", "log:x", logged)
    assert (failed_after.verdict.fix, failed_after.verdict.cause, failed_after.evidence) == ("the log's fix", "log:x",
                                                                                             logged)
    assert (passed_after.verdict.note, passed_after.verdict.fix, passed_after.evidence) == ("a note", "", logged)


def test_the_labs_own_question_about_a_checks_records_is_not_evidence_that_its_request_reached_bitbucket():
    # Caddy refused the push with 413; the check then asked Bitbucket for its body timings, with its own id.
    question = f"/bitbucket/rest/lab/1.0/body-timings?id={PUSH_LARGE}"
    proxy = [_Line(at(1), f'10.0.0.3 "POST /bitbucket/scm/LAB/repo.git/git-receive-pack HTTP/1.1" 413 0 '
                          f'rid={PUSH_LARGE} upstream=- ustatus=- rt=0.1 conn=41'),
             _Line(at(2), f'10.0.0.3 "GET {question} HTTP/1.1" 200 40 rid={PUSH_LARGE} upstream=10.0.0.5:7990 '
                          'ustatus=200 rt=0.0 conn=43')]
    stub = [_Line(at(2), "LAB-REQUEST " + json.dumps({"method": "GET", "uri": question, "version": "HTTP/1.1",
                                                       "host": "bitbucket.lab.test", "status": 200, "rid": PUSH_LARGE}))]
    push = CheckResult("git.push-large", failed("413", "pushed", "the proxy refuses large bodies"), seconds=3,
                       started=at(0), request_id=PUSH_LARGE)

    after = _with_evidence(push, "nginx", proxy, stub, run=_Run((PUSH_LARGE,), {}))

    assert after.evidence.bitbucket == ()
    assert "no request of this check reached Bitbucket" in after.evidence.note
    assert [line for line in after.evidence.proxy if "rest/lab" in line] == [] and len(after.evidence.proxy) == 1
    # negative control: the push itself, had it reached Bitbucket, is evidence that it did
    reached = stub + [_Line(at(1), "LAB-REQUEST " + json.dumps({
        "method": "POST", "uri": "/bitbucket/scm/LAB/repo.git/git-receive-pack", "version": "HTTP/1.1",
        "host": "bitbucket.lab.test", "status": 200, "rid": PUSH_LARGE}))]
    assert len(_with_evidence(push, "nginx", proxy, reached, run=_Run((PUSH_LARGE,), {})).evidence.bitbucket) == 1
