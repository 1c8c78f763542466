"""Issue 5: every catalog topology passes every check that applies to it."""

from __future__ import annotations

import pytest

from lab.proxies import KINDS
from lab.topology import catalog, load_topology


def _known_server_fault(name: str) -> str:
    """The note a check passing at its second try names for this topology's front door ("": none)."""
    proxy = load_topology(name).proxy
    return KINDS[proxy.kind].cuts_answered_responses if proxy and proxy.kind in KINDS else ""


@pytest.mark.parametrize("name", catalog())
def test_recommended_topology_passes_every_check_that_applies_and_a_real_browser_logs_in(lab_topology, lab_checks,
                                                                                        name):
    results = lab_checks(lab_topology(name, browser=True))
    failures = {id_: f"{r.observed} | fix: {r.hint}" for id_, r in results.items() if r.ok is False}
    assert failures == {}
    # No findings on the recommended. A transfer its own server cut once (a Go front door, README
    # "Known fault") passes at its second try with that fault as its note: no finding of the config.
    known = _known_server_fault(name)
    assert {id_: r.hint for id_, r in results.items() if r.ok and r.hint and r.hint != known} == {}
    not_applicable = {"git.clone-slow", "http2.git"}  # no slow repository; HTTP/2 is off unless --http2
    if not load_topology(name).clustered:
        not_applicable |= {"session.affinity", "cluster.failover"}  # one Bitbucket node
    if load_topology(name).proxy is None:
        not_applicable |= {"headers.large"}  # nothing between users and Bitbucket to compare with
    if not load_topology(name).public_url.startswith("https://"):
        not_applicable |= {"tls.chain", "tls.hostname", "tls.protocols", "redirects.http-to-https",
                           "browser.git-agree"}
    assert {id_ for id_, r in results.items() if r.ok is None} == not_applicable
    assert results["browser.login"].ok and results["browser.login"].verdict.attachments[0].read_bytes()[:4] == b"\x89PNG"


# Every TLS front door. This machine's libcurl 7.88 can stall the last bytes of an HTTP/2 push
# (H2_TAIL_STALL_NOTE; through HAProxy about one push in twenty, four at a time): the lab
# pushes once more and passes with a note when the retry goes through (a newer client,
# libcurl 8.22, pushed 48 of 48 through HAProxy — see the closing note of issue 13).
HTTP2_FRONT_DOORS = [name for name in catalog()
                     if load_topology(name).proxy is not None
                     and load_topology(name).public_url.startswith("https://")
                     and not load_topology(name).clustered]  # the clusters' front doors are the same files


@pytest.mark.parametrize("name", HTTP2_FRONT_DOORS)
def test_recommended_tls_front_doors_with_http2_pass_every_check_and_git_uses_h2(lab_topology, lab_checks, name):
    results = lab_checks(lab_topology(name, http2=True))
    assert {i: f"{r.observed} | {r.hint}" for i, r in results.items() if r.ok is False} == {}
    assert results["http2.git"].ok is True and "negotiated h2" in results["http2.git"].observed
