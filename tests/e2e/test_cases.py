"""Issue 9: every saved customer case reproduces from its bundle, verbatim, with the
public URL, proxy kind and verdicts it records (``tests/cases/*/case.toml``)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from lab.reproduce.bundle import PARSED_KINDS
from lab.reproduce.cases import verdict
from tests.e2e.findingsutil import assert_every_fix_rests_on_its_own_evidence, fix_shown
from lab.reproduce.session import reproduce

CASES_DIR = Path(__file__).resolve().parents[1] / "cases"
CASES = sorted(path for path in CASES_DIR.iterdir() if (path / "case.toml").is_file())
REFUSED = [case for case in CASES if "refused" in tomllib.loads((case / "case.toml").read_text())]
REPRODUCED = [case for case in CASES if case not in REFUSED]


@pytest.mark.parametrize("case", REPRODUCED, ids=[case.name for case in REPRODUCED])
def test_a_saved_customer_case_reproduces_with_the_verdicts_it_records(case, tmp_path):
    record = tomllib.loads((case / "case.toml").read_text())
    browser = any(check_id.startswith("browser.") for check_id in record.get("expected", {}))
    with reproduce([case / "bundle"], certs_dir=tmp_path / "certs", browser=browser) as run:
        results = {result.id: result for result in run.results}
        assert run.running.public_url == record["public_url"]
        assert (run.proxy_json["kind"] or "none") == record["proxy"]
        served = _files_served_verbatim(run)
    changed = {check_id: f"{want} → {verdict(results[check_id])}: {results[check_id].observed}"
               for check_id, want in record.get("expected", {}).items() if verdict(results[check_id]) != want}
    assert changed == {}
    for check_id, cause in record.get("causes", {}).items():
        assert cause in fix_shown(results[check_id], run.results), f"{check_id}: {fix_shown(results[check_id], run.results)}"
    assert_every_fix_rests_on_its_own_evidence(run.results)
    assert served, "no proxy file was compared"


def test_every_case_records_a_description_a_public_url_and_a_proxy_kind():
    assert len(CASES) >= 8
    for case in CASES:
        record = tomllib.loads((case / "case.toml").read_text())
        assert record["description"] and not record["description"].startswith("TODO"), case.name
        assert record["proxy"] in (*PARSED_KINDS, "none"), case.name
        if case in REFUSED:  # nothing runs: no URL is inferred and no verdict exists to record
            assert record["refused"].strip(), case.name
            assert not {"public_url", "expected", "causes"} & set(record), case.name
            continue
        assert record["public_url"].startswith(("http://", "https://")), case.name
        assert set(record.get("causes", {})) <= {k for k, v in record.get("expected", {}).items() if v == "fail"}
    published = [case for case in CASES if (case / "PROVENANCE.md").is_file()]
    assert all("licen" in (case / "PROVENANCE.md").read_text().lower() for case in published)


@pytest.mark.parametrize("case", REFUSED, ids=[case.name for case in REFUSED])
def test_a_saved_case_the_lab_cannot_reproduce_is_refused_in_one_line_naming_its_file_and_line(case, tmp_path):
    import re
    import subprocess
    import sys

    from lab.docker_env import RUN_LABEL, docker_client
    from lab.runtime import TOPOLOGY_LABEL

    record = tomllib.loads((case / "case.toml").read_text())
    result = subprocess.run([sys.executable, "-m", "lab", "reproduce", str(case / "bundle"), "--no-keep",
                             "--certs", str(tmp_path / "certs")], capture_output=True, text=True, timeout=600)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and errors[0] == lines[-1], result.stderr
    assert record["refused"] in errors[0]
    # Before the refusal only the progress line naming the run may appear.
    assert all(re.match(r"starting \S+ \(run \S+\)$", line) for line in lines[:-1]), result.stderr
    client = docker_client()
    run = re.search(r"\(run (\S+)\)", result.stderr)
    if run:
        assert client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run.group(1)}"},
                                      ignore_removed=True) == []
    assert client.containers.list(filters={"label": f"{TOPOLOGY_LABEL}=reproduce-{case.name}"},
                                  ignore_removed=True) == []


def _files_served_verbatim(run) -> list[str]:
    """Each proxy file in the container equals the bundle's bytes, except an upstream
    address the mapping says was rewritten; returns the files compared (for properties-only
    cases, bitbucket.properties)."""
    setup = run.reproduction.setup
    rewritten = {row.customer.rsplit("(", 1)[-1].split(":")[0] for row in run.mapping
                 if row.what == "upstream" and "working copy" in row.lab}
    compared = []
    node, rows = ("proxy", [r for r in run.mapping if r.what == "proxy file"]) if setup.proxy else ("bitbucket", [])
    for row in rows:
        path = row.lab.split(" (", 1)[0]
        inside = run.running.containers[node].exec_run(["cat", path]).output
        original = (next(f for f in setup.bundle if f.relpath == row.customer)).path.read_bytes()
        if row.customer in rewritten:
            assert inside != original  # the one allowed change, and it is listed
        else:
            assert inside == original, f"{row.customer} changed on its way to {path}"
        compared.append(row.customer)
    for path, data in setup.proxy.generated if setup.proxy and not rows else ():
        # Only the lab's translation runs (Traefik's labels and flags): it is in the container as the mapping shows.
        assert run.running.containers[node].exec_run(["cat", path]).output == data, path
        compared.append(path)
    if setup.properties is not None:
        inside = run.running.containers["bitbucket"].exec_run(
            ["cat", "/var/atlassian/application-data/bitbucket/shared/bitbucket.properties"]).output
        assert inside == setup.properties.path.read_bytes()
        compared.append(setup.properties.relpath)
    return compared


def test_a_config_the_customers_proxy_would_reject_is_one_line_naming_their_file_and_line(tmp_path):
    import subprocess
    import sys

    bundle = tmp_path / "acme"
    bundle.mkdir()
    (bundle / "bitbucket.conf").write_text(
        "server {\n    listen 80;\n    server_name git.acme.example;\n    location / {\n"
        "        proxy_pass http://bb.corp.acme.example:7990;\n        proxy_frobnicate on;\n    }\n}\n")
    result = subprocess.run([sys.executable, "-m", "lab", "reproduce", str(bundle), "--no-keep", "--certs",
                             str(tmp_path / "certs")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: nginx rejected the proxy config:")
    assert 'unknown directive "proxy_frobnicate" in bitbucket.conf (at /etc/nginx/sites-enabled/bitbucket.conf):6' in last
    from lab.docker_env import docker_client
    from lab.runtime import TOPOLOGY_LABEL

    assert docker_client().containers.list(all=True, filters={"label": f"{TOPOLOGY_LABEL}=reproduce-acme"}) == []


def test_save_keeps_the_bundle_byte_for_byte_and_drafts_its_verdicts(tmp_path):
    import json
    import shutil
    import subprocess
    import sys

    source = CASES_DIR / "nginx-debian-site-413-on-push" / "bundle"
    bundle = tmp_path / "from-customer"
    shutil.copytree(source, bundle)
    result = subprocess.run([sys.executable, "-m", "lab", "reproduce", str(bundle), "--no-keep", "--json",
                             "--save", "umbrella-413", "--cases-dir", str(tmp_path / "cases"),
                             "--certs", str(tmp_path / "certs")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr  # the customer's 413 is a failing check
    document = json.loads(result.stdout)
    assert document["proxy"] == {"kind": "nginx", "version": "nginx/1.22.1"}
    assert {"what", "customer", "lab"} == set(document["mapping"][0])
    saved = tmp_path / "cases" / "umbrella-413"
    for original in source.rglob("*"):
        if original.is_file():
            assert (saved / "bundle" / original.relative_to(source)).read_bytes() == original.read_bytes()
    record = tomllib.loads((saved / "case.toml").read_text())
    assert record["public_url"] == "https://git.umbrella.example" and record["proxy"] == "nginx"
    assert record["expected"]["git.push-large"] == "fail" and record["expected"]["git.push"] == "pass"
    assert "client_max_body_size" in record["causes"]["git.push-large"]
