"""Issue 9: every saved customer case reproduces from its bundle, verbatim, with the
public URL, proxy kind and verdicts it records (``tests/cases/*/case.toml``)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from lab.reproduce.cases import verdict
from lab.reproduce.session import reproduce

CASES_DIR = Path(__file__).resolve().parents[1] / "cases"
CASES = sorted(path for path in CASES_DIR.iterdir() if (path / "case.toml").is_file())


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_saved_customer_case_reproduces_with_the_verdicts_it_records(case, tmp_path):
    record = tomllib.loads((case / "case.toml").read_text())
    with reproduce([case / "bundle"], certs_dir=tmp_path / "certs") as run:
        results = {result.id: result for result in run.results}
        assert run.running.public_url == record["public_url"]
        assert (run.proxy_json["kind"] or "none") == record["proxy"]
        served = _files_served_verbatim(run)
    changed = {check_id: f"{want} → {verdict(results[check_id])}: {results[check_id].observed}"
               for check_id, want in record.get("expected", {}).items() if verdict(results[check_id]) != want}
    assert changed == {}
    for check_id, cause in record.get("causes", {}).items():
        assert cause in results[check_id].hint, f"{check_id}: {results[check_id].hint}"
    assert served, "no proxy file was compared"


def test_every_case_records_a_description_a_public_url_and_a_proxy_kind():
    assert len(CASES) >= 8
    for case in CASES:
        record = tomllib.loads((case / "case.toml").read_text())
        assert record["description"] and not record["description"].startswith("TODO"), case.name
        assert record["proxy"] in ("nginx", "apache", "haproxy", "none"), case.name
        assert set(record.get("causes", {})) <= {k for k, v in record.get("expected", {}).items() if v == "fail"}


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
    if setup.properties is not None:
        inside = run.running.containers["bitbucket"].exec_run(
            ["cat", "/var/atlassian/application-data/bitbucket/shared/bitbucket.properties"]).output
        assert inside == setup.properties.path.read_bytes()
        compared.append(setup.properties.relpath)
    return compared
