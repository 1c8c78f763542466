"""Issue 14: the report a support engineer attaches to a ticket, read back as a person sees
it — rendered by the lab's own browser node, from the file itself (nothing fetched)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.browser import BROWSER_NODE, browser_context
from lab.html_report import verdict_text, write_report
from lab.images.versions import lab_versions, running_kinds
from lab.runtime import RunningTopology, tar_files
from lab.provision import ContainerFile

REPORT_IN_BROWSER = "/tmp/lab-report/report.html"


@pytest.mark.xdist_group("nginx-https")  # shares the kept topology of its group
def test_the_report_rendered_by_the_browser_node_shows_every_check_id_with_its_verdict_and_the_screenshots(
        lab_topology, lab_checks, tmp_path):
    running = lab_topology("nginx-https", tls_variant="no-intermediate", browser=True)  # passes, fails, blocked, n/a
    results = list(lab_checks(running).values())
    report = tmp_path / "report.html"
    junit = write_report(report, running, results, versions=lab_versions(running.options.proxy_release, running_kinds(running)))
    rows, images, text = _rendered(running, report, tmp_path / "rendered.png")
    assert {check_id: verdict for check_id, verdict in rows} == {r.id: verdict_text(r) for r in results}
    assert {"passed", "failed", "blocked by tls.chain", "not applicable"} <= {verdict for _, verdict in rows}
    assert images == 2 and "network outside" in text and "nginx" in text and "Chrome/" in text
    assert 'name="browser.git-agree"' in junit.read_text()


@pytest.mark.xdist_group("nginx-http")  # shares the kept topology of its group
def test_a_verdict_the_report_does_not_hold_is_not_found_in_the_rendered_page(lab_topology, lab_checks, tmp_path):
    """The negative control: reading the page back finds what is there, not what is wanted."""
    running = lab_topology("nginx-http", browser=True)
    results = list(lab_checks(running, ["reach.front-door", "browser.login"]).values())
    report = tmp_path / "report.html"
    write_report(report, running, results)
    rows, images, _ = _rendered(running, report, tmp_path / "rendered.png")
    assert dict(rows) == {"reach.front-door": "passed", "browser.login": "passed"}
    assert "failed" not in dict(rows).values() and images == 1


def _rendered(running: RunningTopology, report: Path, screenshot: Path) -> tuple[list[tuple[str, str]], int, str]:
    """(check id, verdict) per row of the checks table, the number of screenshots that
    decoded, and the page's text — as the browser node renders the file."""
    running.containers[BROWSER_NODE].put_archive("/", tar_files([ContainerFile(REPORT_IN_BROWSER, report.read_bytes())]))
    assert running.browser is not None
    with browser_context(running.browser) as context:
        page = context.new_page()
        page.goto(f"file://{REPORT_IN_BROWSER}", wait_until="load")
        rows = page.eval_on_selector_all("table.checks tr:not(:first-child)",
                                         "rows => rows.map(r => [r.cells[0].innerText.trim(), r.cells[1].innerText.trim()])")
        images = page.eval_on_selector_all("table.checks img", "imgs => imgs.filter(i => i.naturalWidth > 0).length")
        text = page.inner_text("body")
        screenshot.write_bytes(page.screenshot(full_page=True))
    return [(str(a), str(b)) for a, b in rows], int(images), text
