"""Issue 26: which edit a finding asks for, in which of the customer's files, and when a fix
may call itself verified — without Docker (the reload-and-check loop runs in tests/e2e)."""

from __future__ import annotations

from pathlib import Path

from lab.checks.base import CheckResult, Verdict
from lab.checks.git import STATUS_HINTS
from lab.findings import findings
from lab.fix.model import SetDirective, SetSetting, StripUriPart
from lab.fix.remedies import BODY_LIMIT, HEADER_LIMIT, LEGACY_TLS, REMEDIES, remedy_for, setting_edits
from lab.fix.verify import FixResult, planned_edits, verify_fix
from lab.logsigs import SIGNATURES
from lab.reproduce import read_bundle

SITE = """server {
    listen 80;
    server_name git.example.org;
    location / {
        proxy_pass http://bitbucket:7990;
    }
}
"""


def failed(check_id: str, cause: str | None, hint: str = "fix it") -> CheckResult:
    return CheckResult(check_id, Verdict(False, "saw", "expected", fix=hint, cause=cause))


def passed(check_id: str) -> CheckResult:
    return CheckResult(check_id, Verdict(True, "ok", "expected"))


def bundle(tmp_path: Path, files: dict[str, str]):
    for relpath, text in files.items():
        (tmp_path / relpath).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relpath).write_text(text)
    return read_bundle([tmp_path])


def test_a_hint_and_its_patch_come_from_one_table_entry():
    assert STATUS_HINTS[413] == BODY_LIMIT.text
    body = next(signature for signature in SIGNATURES if signature.name == "nginx body limit")
    assert remedy_for(f"log:{body.name}") is BODY_LIMIT
    assert remedy_for("log:nginx connect refused") is None  # negative control: no file edit fixes that
    assert all(remedy.cause == cause for cause, remedy in REMEDIES.items())


def test_a_body_limit_finding_edits_the_server_block_that_routes_bitbucket(tmp_path):
    setup = bundle(tmp_path, {"sites-enabled/bitbucket": SITE})
    finding = findings([failed("git.push-large", "body-limit")])[0]

    [(relpath, kind, anchor, edits)] = planned_edits(finding, setup)

    assert (relpath, kind, anchor.line) == ("sites-enabled/bitbucket", "nginx", 4)
    assert edits == (SetDirective("client_max_body_size", "0", "server"),)


def test_a_cause_without_an_nginx_edit_plans_nothing_for_nginx(tmp_path):
    setup = bundle(tmp_path, {"sites-enabled/bitbucket": SITE})
    assert planned_edits(findings([failed("path.encoded-slash", "encoded-slash-refused")])[0], setup) == []
    assert planned_edits(findings([failed("tls.chain", "chain-incomplete")])[0], setup) == []
    assert planned_edits(findings([failed("path.encoded-slash", "proxy-rewrites-path")])[0], setup)[0][3] == (
        StripUriPart(),)


def test_connector_settings_go_to_the_file_they_came_from_or_beside_the_properties(tmp_path):
    setup = bundle(tmp_path, {"sites-enabled/bitbucket": SITE, "bitbucket.properties": "server.proxy-name=old.example\n"})
    fix = "Bitbucket saw scheme=http …; users use https://git.example.org — set server.proxy-name=git.example.org, " \
          "server.scheme=https, server.context-path=(empty)"
    finding = findings([failed("redirects.public", "bitbucket-connector", fix)])[0]

    assert setting_edits(fix) == (SetSetting("server.proxy-name", "git.example.org"),
                                  SetSetting("server.scheme", "https"), SetSetting("server.context-path", ""))
    assert [(relpath, kind) for relpath, kind, _, _ in planned_edits(finding, setup)] == [
        ("bitbucket.properties", "properties")]


def test_settings_the_lab_assumed_have_no_file_to_patch_so_they_stay_an_instruction(tmp_path):
    setup = bundle(tmp_path, {"sites-enabled/bitbucket": SITE})  # no settings anywhere: assumed
    finding = findings([failed("redirects.public", "bitbucket-connector", "set server.proxy-name=x.example")])[0]
    assert planned_edits(finding, setup) == []


def test_a_fix_is_verified_only_when_its_last_run_has_no_failure(tmp_path):
    setup = bundle(tmp_path, {"sites-enabled/bitbucket": SITE})
    before = [failed("git.push-large", "body-limit", BODY_LIMIT.text), passed("git.clone")]
    rounds: list[Path] = []

    def rerun(folder: Path) -> list[CheckResult]:
        rounds.append(folder)
        assert "client_max_body_size 0;" in (folder / "sites-enabled/bitbucket").read_text()
        return [passed("git.push-large"), passed("git.clone")]

    fix = verify_fix(setup, before, tmp_path / "out", rerun)

    assert fix.verified and len(rounds) == 1 and fix.rounds == 1
    assert fix.to_json()["before"] == {"git.push-large": "fail", "git.clone": "pass"}
    assert fix.changed_verdicts() == [("git.push-large", "fail", "pass")]
    assert (tmp_path / "sites-enabled/bitbucket").read_text() == SITE  # the customer's own file is untouched
    still = FixResult(before, [failed("git.push-large", "body-limit"), passed("git.clone")], fix.patches)
    assert not still.verified and "still fail: git.push-large" in still.verdict_line()  # negative control


def test_a_run_with_only_instructions_makes_no_round_and_no_patch(tmp_path):
    setup = bundle(tmp_path, {"sites-enabled/bitbucket": SITE})
    before = [failed("tls.chain", "chain-incomplete", "serve fullchain.pem")]

    fix = verify_fix(setup, before, tmp_path / "out", lambda folder: [])

    assert fix.rounds == 0 and fix.patch == "" and not fix.verified
    assert fix.instructions == ["[1] serve fullchain.pem"]


def test_a_directive_whose_value_the_check_measured_gets_exactly_the_value_its_hint_names(tmp_path):
    setup = bundle(tmp_path, {"sites-enabled/bitbucket": SITE})
    hint = ("the proxy refuses request headers Bitbucket accepts (64 KB): raise nginx "
            "`large_client_header_buffers 4 64k;` (default 4 8k)")
    [(_, _, _, edits)] = planned_edits(findings([failed("headers.large", HEADER_LIMIT.cause, hint)])[0], setup)
    assert edits == (SetDirective("large_client_header_buffers", "4 64k", "server"),)
    legacy = findings([failed("tls.protocols", LEGACY_TLS.cause, f"TLSv1 {LEGACY_TLS.text}")])[0]
    assert planned_edits(legacy, setup)[0][3] == (SetDirective("ssl_protocols", "TLSv1.2 TLSv1.3", "server"),)


def test_a_hint_that_quotes_no_value_for_the_directive_plans_no_edit(tmp_path):
    setup = bundle(tmp_path, {"sites-enabled/bitbucket": SITE})
    vague = findings([failed("headers.large", HEADER_LIMIT.cause, "raise the proxy's header limit")])[0]
    assert planned_edits(vague, setup) == []


def test_a_finding_the_patch_did_not_fix_stays_on_the_list_of_what_is_left(tmp_path):
    setup = bundle(tmp_path, {"sites-enabled/bitbucket": SITE})
    before = [failed("git.push-large", "body-limit", BODY_LIMIT.text)]

    fix = verify_fix(setup, before, tmp_path / "out", lambda folder: before)  # patched, still refused

    assert fix.rounds == 1 and "client_max_body_size 0;" in fix.patch and not fix.verified
    assert fix.instructions == [f"[1] {BODY_LIMIT.text}"]


def test_context_path_and_redirect_loop_findings_set_the_settings_their_hint_names(tmp_path):
    setup = bundle(tmp_path, {"sites-enabled/bitbucket": SITE, "bitbucket.properties": "server.require-ssl=true\n"})
    loop = ("redirect loop at https://git.example.org/status: Tomcat has server.require-ssl=true but does not know "
            "the connection is secure behind the TLS proxy — set server.secure=true and server.scheme=https")
    [(relpath, _, _, edits)] = planned_edits(findings([failed("reach.status", "redirect-loop", loop)])[0], setup)
    assert relpath == "bitbucket.properties"
    assert edits == (SetSetting("server.require-ssl", "true"), SetSetting("server.secure", "true"),
                     SetSetting("server.scheme", "https"))
    context = "the proxy path and Bitbucket's context path must match: … set server.context-path=/bitbucket and route"
    [(_, _, _, edits)] = planned_edits(findings([failed("routing.context-path", "context-path", context)])[0], setup)
    assert edits == (SetSetting("server.context-path", "/bitbucket"),)


def test_a_base_url_in_bitbuckets_database_is_an_instruction_and_never_a_patch(tmp_path):
    setup = bundle(tmp_path, {"sites-enabled/bitbucket": SITE,
                              "bitbucket.properties": "setup.baseUrl=http://old-bitbucket:7990\n"})
    hint = ("Bitbucket's base URL is http://old-bitbucket:7990 but users use https://git.example.org: set it in "
            "Administration → Server settings (or setup.baseUrl=https://git.example.org); clone URLs, mails and "
            "links are built from it")
    before = [failed("baseurl.match", None, hint)]

    fix = verify_fix(setup, before, tmp_path / "out", lambda folder: [])

    assert fix.rounds == 0 and fix.patch == "" and not fix.verified
    assert fix.instructions == [f"[1] {hint}"]
