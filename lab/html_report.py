"""One self-contained HTML file a support engineer attaches to a ticket (``--report``).

It holds, with nothing fetched from anywhere: the topology as an SVG picture (drawn from
the Topology data: nodes, networks, names, ports), every check with what was observed,
what was expected and the fix, the evidence (the proxy's log lines and Bitbucket's view
of each request), the browser's screenshots inline (``data:`` URIs), the effective proxy
config and ``bitbucket.properties`` with line numbers (what was provisioned), the
customer mapping of a reproduced bundle, and the lab's versions. JUnit XML is written
beside it for CI.
"""

from __future__ import annotations

import base64
import datetime
import html
from collections.abc import Mapping as MappingType
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lab.checks import HOPS, REGISTRY, CheckResult
from lab.checks.base import FRONT_DOOR_TO_BITBUCKET, USERS_TO_FRONT_DOOR, Evidence, Outcome
from lab.findings import Finding, findings
from lab.pki import AIA_HOST
from lab.redact import is_key_material, mask_secrets
from lab.report import summary_line
from lab.topology import Node, Topology

if TYPE_CHECKING:
    from lab.fix.verify import FixResult
    from lab.reproduce.labmap import Mapping
    from lab.runtime import RunningTopology

TEXT_SUFFIXES = (".conf", ".cfg", ".properties", ".txt", ".map", "")
SKIPPED_DIRS = ("/etc/lab/tls/",)
"""Certificates and keys are not config: the report names the PKI variant instead."""


CSS_CLASSES = {Outcome.PASS: "pass", Outcome.PASS_WITH_NOTE: "pass", Outcome.FAIL: "fail", Outcome.LAB_FAULT: "fail",
               Outcome.NOT_APPLICABLE: "na", Outcome.BLOCKED: "blocked"}


def verdict_text(result: CheckResult) -> str:
    """The verdict in words, as the report (and its test) shows it."""
    if result.outcome is Outcome.BLOCKED:
        return f"blocked by {result.blocked_by}"
    return "passed" if result.outcome.passed else "failed" if result.outcome.failed else "not applicable"


def html_report(running: RunningTopology, results: Sequence[CheckResult], *, mapping: Sequence[Mapping] = (),
                versions: MappingType[str, str] | None = None, fix: FixResult | None = None) -> str:
    """The whole report as one HTML document."""
    topology = running.topology
    title = f"{topology.name}: {summary_line(results)}"
    found = findings(results)
    sections = [
        f"<h1>{_e(topology.name)}</h1>",
        f"<p class='summary'>{_e(summary_line(results))} — public URL <code>{_e(running.public_url)}</code>, "
        f"TLS variant <code>{_e(running.options.tls_variant)}</code>, proxy release "
        f"<code>{_e(running.options.proxy_release)}</code>, made {_e(_now())}</p>",
        f"<p>{_e(topology.summary)}</p>",
        "<h2>Topology</h2>", topology_svg(topology, results, browser=running.browser is not None),
        *(["<h2>Findings</h2>", _findings_section(found)] if found else []),
        "<h2>Checks</h2>", _checks_table(results, found),
        *(["<h2>Verified fix</h2>", _fix_section(fix)] if fix is not None else []),
        *(["<h2>Customer mapping (customer → lab)</h2>", _mapping_table(mapping)] if mapping else []),
        "<h2>Effective configuration</h2>", _config_section(running),
        "<h2>Lab versions</h2>", _versions_table(versions, running),
    ]
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><meta name='generator' content='bitbucket-lab'>"
            f"<title>{_e(title)}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(sections)}</body></html>")


def write_report(path: Path, running: RunningTopology, results: Sequence[CheckResult], *,
                 mapping: Sequence[Mapping] = (), versions: MappingType[str, str] | None = None,
                 fix: FixResult | None = None) -> Path:
    """Write the report to ``path`` and JUnit XML beside it (``<stem>.xml``); returns the
    JUnit path."""
    from lab.junit import write_junit
    from lab.outputs import write_private

    path.parent.mkdir(parents=True, exist_ok=True)
    # 0600: the report quotes the customer's files
    write_private(path, html_report(running, results, mapping=mapping, versions=versions, fix=fix).encode("utf-8"))
    junit = path.with_suffix(".xml")
    write_junit(junit, [(running.topology.name, running.public_url, results)])
    return junit


def default_report_path(topology: str, directory: Path = Path("reports")) -> Path:
    """``reports/<topology>-<time>.html``."""
    return directory / f"{topology}-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}.html"


# ---------------------------------------------------------------- checks


def _fix_section(fix: FixResult) -> str:
    """The patch, what it proved (each check whose verdict it changed), and the instructions."""
    changed = "".join(f"<tr><td>{_e(check_id)}</td><td>{_e(before)}</td><td>{_e(after)}</td></tr>"
                      for check_id, before, after in fix.changed_verdicts())
    parts = [f"<p class='summary'>{_e(fix.verdict_line())}</p>"]
    if fix.patch:
        parts.append(f"<pre class='patch'>{_e(fix.patch)}</pre>")
    if changed:
        parts.append(f"<table class='mapping'><tr><th>check</th><th>as sent</th><th>patched</th></tr>{changed}</table>")
    if fix.instructions:
        parts.append("<p>Not a file edit (for the customer or their admin):</p><ul>"
                     + "".join(f"<li>{_e(item)}</li>" for item in fix.instructions) + "</ul>")
    return "".join(parts)


def _findings_section(found: Sequence[Finding]) -> str:
    """One block per cause: the fix, what the first check saw, its evidence, what it breaks."""
    items = []
    for finding in found:
        breaks = ", ".join(f"<code>{_e(check_id)}</code>" for check_id in finding.checks)
        blocked = ", ".join(f"<code>{_e(check_id)}</code>" for check_id in finding.blocked)
        items.append(f"<li class='finding'><div class='fix'><b>fix:</b> {_e(finding.fix)}</div>"
                     f"<div><b>seen by {_e(finding.checks[0])}:</b> {_e(finding.observed)}</div>"
                     f"<div><b>breaks:</b> {breaks}{'; <b>blocks:</b> ' + blocked if blocked else ''}</div>"
                     f"{_evidence_block(finding.evidence, meanwhile=False)}</li>")
    return "<ol class='findings'>" + "".join(items) + "</ol>"


def _checks_table(results: Sequence[CheckResult], found: Sequence[Finding] = ()) -> str:
    rows = []
    for result in results:
        words, outcome, verdict = verdict_text(result), result.outcome, result.verdict
        spec = REGISTRY.get(result.id)
        details = [f"<div class='proves'>{_e(spec.proves)}</div>" if spec else "",
                   f"<div><b>observed:</b> {_e(verdict.observed)}</div>"]
        if verdict.expected:
            details.append(f"<div><b>expected:</b> {_e(verdict.expected)}</div>")
        number = next((finding.number for finding in found if result.id in finding.checks), None)
        if outcome.failed and number is not None:
            details.append(f"<div class='fix'><b>cause:</b> finding {number} (above)</div>")
        elif outcome.failed and verdict.fix:
            details.append(f"<div class='fix'><b>fix:</b> {_e(verdict.fix)}</div>")
        elif outcome is Outcome.PASS_WITH_NOTE:
            details.append(f"<div class='fix'><b>note:</b> {_e(verdict.note)}</div>")
        details.append(_evidence(result))
        details += [_image(path) for path in verdict.attachments]
        rows.append(f"<tr class='{CSS_CLASSES[outcome]}'><td class='id'><code>{_e(result.id)}</code></td>"
                    f"<td class='verdict'>{_e(words)}</td><td>{''.join(details)}</td>"
                    f"<td class='secs'>{result.seconds:.1f} s</td></tr>")
    return ("<table class='checks'><tr><th>check</th><th>verdict</th><th>what the lab saw</th><th>time</th></tr>"
            + "".join(rows) + "</table>")


def _evidence(result: CheckResult) -> str:
    return _evidence_block(result.evidence)


def _evidence_block(evidence: Evidence | None, meanwhile: bool = True) -> str:
    """A check's evidence; other errors logged meanwhile folded away (a finding, which lists
    its checks, leaves them out: they are mostly its other checks' own lines)."""
    if evidence is None or not (evidence.proxy or evidence.bitbucket or evidence.note or evidence.meanwhile):
        return ""
    parts = ["<details open><summary>evidence</summary>"]
    if evidence.bitbucket:
        parts.append("<div><b>Bitbucket saw:</b></div><pre>" + _e("\n".join(evidence.bitbucket)) + "</pre>")
    if evidence.proxy:
        parts.append("<div><b>the proxy logged:</b></div><pre>" + _e("\n".join(evidence.proxy)) + "</pre>")
    if evidence.note:
        parts.append(f"<div class='note'>{_e(evidence.note)}</div>")
    if evidence.meanwhile and meanwhile:
        parts.append("<details><summary>other errors logged meanwhile (not this check's requests)</summary>"
                     "<pre class='meanwhile'>" + _e("\n".join(evidence.meanwhile)) + "</pre></details>")
    return "".join(parts) + "</details>"


def _image(path: Path) -> str:
    try:
        data = base64.b64encode(path.read_bytes()).decode()
    except OSError:
        return f"<div class='note'>(screenshot {path} is gone)</div>"
    return (f"<figure><img alt='screenshot {html.escape(path.name)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{_e(path.name)}: where the browser ended</figcaption></figure>")


# ---------------------------------------------------------------- configuration, mapping, versions


def _config_section(running: RunningTopology) -> str:
    """Each node's provisioned text files with line numbers; a file whose content is key
    material is never printed (a note says so, whatever its name), and the secrets of a
    ``.properties`` file are masked (lab.redact)."""
    parts = []
    for node_name, setup in running.provisioned.items():
        for item in setup.files:
            if item.path.startswith(SKIPPED_DIRS):
                continue
            if is_key_material(item.data):
                parts.append(f"<p class='note'>{_e(node_name)}: <code>{_e(item.path)}</code> holds key material "
                             "(a private key or keystore): not shown</p>")
                continue
            if Path(item.path).suffix not in TEXT_SUFFIXES:
                continue
            try:
                text = item.data.decode("utf-8")
            except UnicodeDecodeError:
                continue
            if item.path.endswith(".properties"):
                text = mask_secrets(text)
            parts.append(f"<h3>{_e(node_name)}: <code>{_e(item.path)}</code></h3>{numbered(text)}")
    return "".join(parts) or "<p>(no configuration files were provisioned)</p>"


def numbered(text: str) -> str:
    """``text`` as a <pre> with a line number before every line."""
    lines = text.splitlines() or [""]
    width = len(str(len(lines)))
    return "<pre class='config'>" + "\n".join(
        f"<span class='ln'>{number:>{width}}</span> {_e(line)}" for number, line in enumerate(lines, 1)) + "</pre>"


def _mapping_table(mapping: Sequence[Mapping]) -> str:
    rows = "".join(f"<tr><td>{_e(row.what)}</td><td><code>{_e(row.customer)}</code></td>"
                   f"<td><code>{_e(row.lab)}</code></td></tr>" for row in mapping)
    return f"<table class='mapping'><tr><th>what</th><th>customer</th><th>lab</th></tr>{rows}</table>"


def _versions_table(versions: MappingType[str, str] | None, running: RunningTopology) -> str:
    shown = dict(versions or {})
    if running.browser is not None:
        shown.setdefault("chromium", running.browser.version)
    if not shown:
        return "<p>(versions not read)</p>"
    rows = "".join(f"<tr><td>{_e(name)}</td><td><code>{_e(value)}</code></td></tr>" for name, value in shown.items())
    return f"<table class='versions'>{rows}</table>"


# ---------------------------------------------------------------- the picture

BOX_W, BOX_H, GAP, TOP, LANE_H = 210, 96, 40, 20, 56


def topology_svg(topology: Topology, results: Sequence[CheckResult], browser: bool = False) -> str:
    """The topology as SVG: a box per node (name, kind, ports, coloured by the verdicts of
    its hop) above a band per network; a line joins a node to each network it is on, with
    the names it answers to there. Users (the browser node, when there is one) stand on
    ``outside``, with the PKI node that serves the leaf's AIA URL when the browser runs."""
    columns: list[tuple[str, str, str, dict[str, tuple[str, ...]], str]] = []  # title, sub, ports, nets, state
    if "outside" in topology.networks:
        columns.append(("users", "Chromium (browser node)" if browser else "git, browsers", "",
                        {"outside": ()}, "users"))
    hop_state = _hop_states(results)
    guests = {node.shares_host_with: node for node in topology.nodes if node.shares_host_with}
    for node in topology.nodes:
        if node.shares_host_with:
            continue
        sub = node.kind + (f" + {guests[node.name].name} ({guests[node.name].kind}) on localhost"
                           if node.name in guests else "")
        ports = " ".join(f":{port}" for port in (*node.ports, *(guests[node.name].ports if node.name in guests else ())))
        columns.append((node.name, sub, ports, dict(node.networks), _node_state(topology, node, hop_state)))
    if browser and "outside" in topology.networks:
        columns.append(("pki", "the leaf's AIA URL (lab node)", ":80", {"outside": (AIA_HOST,)}, "na"))
    networks = list(topology.networks)
    width = GAP + len(columns) * (BOX_W + GAP)
    height = TOP + BOX_H + 40 + len(networks) * LANE_H
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' class='topology' width='{width}' height='{height}' "
             f"viewBox='0 0 {width} {height}' role='img' aria-label='topology {_e(topology.name)}'>"]
    lines, marks, bands, boxes = [], [], [], []  # drawn in this order: a line passes under a band it is not on
    for index, network in enumerate(networks):
        members = [i for i, column in enumerate(columns) if network in column[3]]
        y = TOP + BOX_H + 40 + index * LANE_H
        left = GAP + min(members, default=0) * (BOX_W + GAP) - 20
        right = GAP + max(members, default=0) * (BOX_W + GAP) + BOX_W + 20
        bands.append(f"<rect x='{left}' y='{y}' width='{right - left}' height='26' rx='6' class='net'/>"
                     f"<text x='{left + 8}' y='{y + 18}' class='netname'>network {_e(network)}</text>")
    for index, (title, sub, ports, nets, state) in enumerate(columns):
        x = GAP + index * (BOX_W + GAP)
        for net, aliases in nets.items():
            lane = networks.index(net)
            y = TOP + BOX_H + 40 + lane * LANE_H
            cx = x + BOX_W // 2 + 14 * lane
            lines.append(f"<line x1='{cx}' y1='{TOP + BOX_H}' x2='{cx}' y2='{y + 2}' class='link'/>")
            marks.append(f"<circle cx='{cx}' cy='{y + 2}' r='4' class='dot'/>")
            if aliases:
                marks.append(f"<text x='{cx + 6}' y='{y - 6}' class='alias'>{_e(', '.join(aliases))}</text>")
        boxes.append(f"<rect x='{x}' y='{TOP}' width='{BOX_W}' height='{BOX_H}' rx='8' class='node {state}'/>"
                     f"<text x='{x + 10}' y='{TOP + 24}' class='nodename'>{_e(title)}</text>"
                     f"<text x='{x + 10}' y='{TOP + 46}' class='kind'>{_e(sub[:34])}</text>"
                     f"<text x='{x + 10}' y='{TOP + 68}' class='kind'>{_e(ports)}</text>")
    parts += lines + bands + marks + boxes
    parts.append("</svg>")
    return "".join(parts)


def _hop_states(results: Sequence[CheckResult]) -> dict[str, str]:
    states = {}
    for hop in HOPS:
        ids = {spec.id for spec in REGISTRY.values() if spec.hop == hop}
        mine = [r for r in results if r.id in ids]
        states[hop] = ("fail" if any(r.outcome.failed for r in mine) else
                       "blocked" if any(r.outcome is Outcome.BLOCKED for r in mine) else "pass" if mine else "na")
    return states


def _node_state(topology: Topology, node: Node, hop_state: dict[str, str]) -> str:
    """The front door takes the users' hop's colour; Bitbucket the proxy's hop's."""
    if topology.public_host in node.networks.get("outside", ()):
        return hop_state[USERS_TO_FRONT_DOOR]
    if node.kind == "stub":
        return hop_state[FRONT_DOOR_TO_BITBUCKET]
    return "na"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


STYLE = """
body{font-family:system-ui,-apple-system,'DejaVu Sans',sans-serif;margin:24px;color:#172b4d;max-width:1400px}
h1{margin-bottom:4px} h2{border-bottom:1px solid #dfe1e6;padding-bottom:4px;margin-top:32px}
code,pre{font-family:'DejaVu Sans Mono',monospace;font-size:12px}
pre{background:#f4f5f7;padding:8px;overflow-x:auto;white-space:pre-wrap}
table{border-collapse:collapse;width:100%} th,td{border:1px solid #dfe1e6;padding:6px;vertical-align:top;text-align:left;overflow-wrap:anywhere}
tr.pass .verdict{color:#006644;font-weight:bold} tr.fail .verdict{color:#bf2600;font-weight:bold}
tr.fail{background:#ffebe6} tr.na .verdict,tr.blocked .verdict{color:#6b778c}
td.id{white-space:nowrap} td.secs{white-space:nowrap;color:#6b778c} .proves{color:#6b778c;font-size:12px}
.fix{margin-top:4px} .note{color:#6b778c;font-size:12px}
ol.findings li{background:#ffebe6;border-left:4px solid #bf2600;padding:8px;margin-bottom:8px}
pre.meanwhile{color:#6b778c}
img{max-width:560px;border:1px solid #dfe1e6;margin-top:6px} figure{margin:6px 0}
.ln{color:#97a0af;user-select:none}
svg.topology .node{fill:#f4f5f7;stroke:#6b778c;stroke-width:2} svg.topology .pass{fill:#e3fcef;stroke:#006644}
svg.topology .fail{fill:#ffebe6;stroke:#bf2600} svg.topology .blocked{fill:#fffae6;stroke:#ff8b00}
svg.topology .users{fill:#deebff;stroke:#0052cc} svg.topology .net{fill:#eae6ff;stroke:#5243aa}
svg.topology .link{stroke:#5243aa;stroke-width:2} svg.topology .dot{fill:#5243aa}
svg.topology text{font-family:'DejaVu Sans',sans-serif;font-size:12px;fill:#172b4d}
svg.topology .nodename{font-weight:bold;font-size:14px} svg.topology .alias{font-size:11px;fill:#403294}
svg.topology .netname{font-size:12px;fill:#403294}
"""
