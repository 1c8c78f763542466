"""Issue 11: a variant applied to a running topology (reload in place) gives the verdicts
of the same variant brought up from scratch — the failure catalog's own variants."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.errors import LabError
from lab.provision import DropIns
from lab.reload import reload_in_place
from lab.runtime import LabOptions, start
from lab.targets import check_running
from lab.topology import PROXIES_DIR, load_topology, properties_text
from tests.e2e.test_failure_catalog import FAILURES

REUSED = {  # one topology per proxy kind, walked through variants of each kind of change
    "nginx-https": ["nginx default body limit answers a big push with 413",
                    "tls proxy without scheme, port and secure redirects to http",
                    "leaf served without its intermediate"],
    "apache-https": ["apache without AllowEncodedSlashes 404s encoded slashes itself",
                     "secure unset gives a session cookie without Secure"],
    "haproxy-https": ["haproxy bind without ssl-min-ver accepts tls 1.0"],
}


@pytest.mark.parametrize("name", list(REUSED))
def test_variants_by_reload_give_the_catalogs_verdicts_and_the_recommended_config_comes_back(name, tmp_path,
                                                                                           lab_topology):
    running = lab_topology(name)  # the worker's kept topology: each variant below is reloaded into it
    for key in REUSED[name]:
        failure = FAILURES[key]
        reload_in_place(running, _options(failure, tmp_path, running.options.certs_dir))
        fails = {i: cause for i, cause in failure.fails.items() if not i.startswith("browser.")}  # no browser here
        passes = [i for i in failure.passes if not i.startswith("browser.")]
        results = {r.id: r for r in check_running(running, [*fails, *failure.blocked, *passes])}
        for check_id, cause in fails.items():
            assert results[check_id].ok is False and cause in results[check_id].hint, (key, results[check_id])
        for check_id in passes:
            assert results[check_id].ok is True, (key, results[check_id])
        reload_in_place(running, LabOptions(certs_dir=running.options.certs_dir))
        back = check_running(running, [*fails, *passes])
        assert [r.id for r in back if r.ok is False] == [], (key, back)


def test_a_config_the_proxy_rejects_on_reload_is_one_line_and_the_old_config_keeps_serving(tmp_path):
    running = start(load_topology("nginx-https"), LabOptions(certs_dir=tmp_path / "certs"))
    try:
        bad = tmp_path / "bad.conf"
        bad.write_text("server { listen 443 ssl; bogus_directive on; }\n")
        with pytest.raises(LabError, match='unknown directive "bogus_directive"'):
            reload_in_place(running, LabOptions(DropIns(bad, None), certs_dir=running.options.certs_dir))
        assert check_running(running, ["reach.front-door", "tls.chain", "tls.hostname", "reach.status"])[-1].ok
    finally:
        running.stop()


def _options(failure, tmp_path: Path, certs: Path | None) -> LabOptions:
    topology = load_topology(failure.topology)
    site = _site(topology.proxy_site, failure.site_edits, tmp_path) if failure.site_edits else None
    properties = None
    if failure.properties is not None:
        merged = {k: v for k, v in {**topology.properties, **failure.properties}.items() if v is not None}
        properties = tmp_path / "bitbucket.properties"
        properties.write_text(properties_text(merged))
    return LabOptions(DropIns(site, properties), failure.tls_variant, certs_dir=certs)


def _site(proxy_site: str | None, edits: dict[str, str], tmp_path: Path) -> Path:
    text = (PROXIES_DIR / str(proxy_site)).read_text()
    for old, new in edits.items():
        text = text.replace(old, new)
    path = tmp_path / f"site-{abs(hash(text))}.conf"
    path.write_text(text)
    return path


@pytest.mark.xdist_group("nginx-http")
def test_a_kept_topology_gets_the_browser_node_for_a_test_that_wants_it_and_hides_it_from_one_that_does_not(
        tmp_path):
    from lab.pytest_plugin import _KeptTopologies

    kept, key = _KeptTopologies(), ("nginx-http", None)
    kept.enabled = True
    try:
        kept.give_back(key, start(load_topology("nginx-http"), LabOptions(certs_dir=tmp_path / "certs")))
        with_browser = kept.take(key, LabOptions(certs_dir=tmp_path / "certs", browser=True))
        assert with_browser is not None and "browser" in with_browser.containers
        login = {r.id: r for r in check_running(with_browser, ["reach.front-door", "browser.login"])}
        assert login["browser.login"].ok is True, login["browser.login"]
        kept.give_back(key, with_browser)
        without = kept.take(key, LabOptions(certs_dir=tmp_path / "certs"))
        assert without is with_browser
        hidden = {r.id: r for r in check_running(without, ["reach.front-door", "browser.login"])}
        assert hidden["browser.login"].ok is None and "no browser node" in hidden["browser.login"].observed
        kept.give_back(key, without)
        again = kept.take(key, LabOptions(certs_dir=tmp_path / "certs", browser=True))
        assert again is with_browser and again.browser is not None
        kept.give_back(key, again)
    finally:
        kept.stop_all()
