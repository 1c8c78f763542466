"""Every proxy kind is one package under lab/proxies/ whose KIND record says all the lab
needs (issue 27): a new kind that forgets a part fails here, not in a topology run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lab.fix.model import SetDirective
from lab.fix.remedies import CONNECTOR, REMEDIES
from lab.fix.syntax import ConfigEditor, edited_kinds, editor_of
from lab.images.build import SPECS
from lab.proxies import HINT_TOPICS, KINDS, PROXIES_DIR, READ_KINDS, ProxyKind, hint_for, resolve
from lab.readiness import SERVER_STARTS
from lab.releases import DEFAULT_RELEASE, RELEASES
from lab.reproduce.bundle import classify
from lab.reproduce.placement import ProxyHost, host_of
from lab.topology import catalog, load_topology

LAB = Path(__file__).resolve().parents[2] / "lab"


@pytest.mark.parametrize("name", list(KINDS))
def test_a_proxy_kind_has_an_image_whose_start_script_tests_its_config_and_says_when_the_server_starts(name):
    kind = KINDS[name]
    assert (kind.image_dir / "Dockerfile").is_file() and (kind.image_dir / "start.sh").is_file()
    start = (kind.image_dir / "start.sh").read_text()
    assert SERVER_STARTS in start and "LAB-CONFIG-ERROR:" in start
    assert SPECS[name].context["start.sh"] == kind.image_dir / "start.sh"


@pytest.mark.parametrize("name", list(KINDS))
def test_a_proxy_kind_names_its_versions_hints_and_main_config(name):
    kind = KINDS[name]
    assert isinstance(kind, ProxyKind) and kind.package == PROXIES_DIR / name
    assert set(kind.debian_versions) <= set(RELEASES) and DEFAULT_RELEASE in kind.debian_versions
    assert re.compile(kind.version_pattern).groups >= 1 and kind.version_command
    assert kind.version_prefix.endswith("/") and kind.label and kind.program and kind.listener_words
    assert set(HINT_TOPICS) <= set(kind.hints) <= {*HINT_TOPICS, "path-rewrite"} and all(kind.hints.values())
    assert kind.base_config is None or (kind.package / kind.base_config[0]).is_file()


def test_a_hint_for_an_unknown_proxy_gives_every_kinds_fix():
    joined = hint_for(None, "affinity")
    assert all(kind.hints["affinity"] in joined for kind in KINDS.values())
    assert hint_for("haproxy", "affinity") == KINDS["haproxy"].hints["affinity"]


def test_every_catalog_proxy_runs_a_kind_of_the_registry_with_a_site_file_of_its_package():
    for name in catalog():
        topology = load_topology(name)
        if topology.proxy is not None:
            assert topology.proxy.kind in KINDS
            assert topology.proxy_site and topology.proxy_site.startswith(f"{topology.proxy.kind}/"), name


def test_outside_the_proxies_packages_no_module_of_the_lab_names_a_proxy_kind():
    # Issue 27's seam: runtime, checks, reproduce and fix ask lab.proxies.KINDS; a kind's name in quotes
    # belongs in its package (and the catalog's TOML files), not beside the code that serves every kind.
    literal = "|".join(re.escape(f'"{name}"') for name in KINDS)
    found = subprocess.run(["grep", "-rnE", literal, str(LAB), "--include=*.py"], capture_output=True, text=True).stdout
    offending = [line for line in found.splitlines() if not line.startswith(str(LAB / "proxies"))]
    assert found and offending == []  # found: the kinds' own packages do name themselves (the grep works)


@pytest.mark.parametrize("name", READ_KINDS)
def test_a_kind_whose_files_reproduce_reads_names_its_reader_signals_and_host(name):
    kind = KINDS[name]
    assert callable(resolve(str(kind.reader)))
    assert kind.file_signals and all(re.compile(signal, re.M) for signal in kind.file_signals)
    assert kind.config_noun.endswith(" config") and kind.main_config_path.startswith("/")
    host = host_of(name)
    assert isinstance(host, ProxyHost) and host.kind is kind
    assert kind.host or kind.config_env, "the generic host starts a kind through its config_env"


@pytest.mark.parametrize("name", READ_KINDS)
def test_the_catalogs_tls_site_file_of_a_kind_is_classified_as_that_kind_by_its_signals(name):
    site = KINDS[name].package / "https.conf"
    assert classify(site.read_text(), "site") == name
    assert classify("just a note about the ticket\n", "site") == "text"  # negative control: no signal, no kind


def test_a_file_whose_lines_fit_several_kinds_equally_is_the_kind_of_the_lowest_tie_rank():
    tie = "listen 80;\nServerName git.example.org\n"  # nginx's listen, Apache's ServerName, HAProxy's `listen NAME`
    assert classify(tie, "site") == min(READ_KINDS, key=lambda name: KINDS[name].tie_rank)
    assert classify("<VirtualHost *:80>\n" + tie, "site") == "apache"  # one more Apache line: no tie
    ranks = {name: KINDS[name].tie_rank for name in ("apache", "haproxy", "nginx")}
    assert sorted(ranks, key=ranks.__getitem__) == ["nginx", "apache", "haproxy"]


@pytest.mark.parametrize("name", [name for name, kind in KINDS.items() if kind.editor])
def test_a_kind_fix_edits_gives_edits_only_for_causes_of_the_one_remedy_table(name):
    editor = editor_of(name)
    assert isinstance(editor, ConfigEditor)
    assert editor.edits and set(editor.edits) <= set(REMEDIES)
    assert all(edits and all(isinstance(edit, (SetDirective, *editor.special)) for edit in edits)
               for edits in editor.edits.values())
    assert all(REMEDIES[cause].edits_for(name) == edits for cause, edits in editor.edits.items())
    assert CONNECTOR.edits_for(name) == ()  # negative control: Bitbucket's settings are no proxy edit
    assert name in edited_kinds()


def test_a_kind_without_an_editor_gets_no_edit_for_any_cause():
    assert not any(remedy.edits_for("properties") for remedy in REMEDIES.values())
    assert editor_of("properties") is None and editor_of("no-such-kind") is None


def test_a_proxy_a_debian_release_does_not_package_is_refused_in_one_line_before_any_build():
    from lab.errors import LabError
    from lab.images import ensure_images

    with pytest.raises(LabError, match=r"^Caddy is not packaged in Debian bullseye: choose --proxy-version bookworm"):
        ensure_images(("caddy",), release="bullseye")


def _lab_without(kind: str, root: Path, keep_topology: str | None = None) -> list[str]:
    """A copy of the lab under ``root`` with ``kind``'s package and the catalog topologies that
    run it taken away (but ``keep_topology``); the names of the topologies taken away."""
    shutil.copytree(LAB, root / "lab", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.rmtree(root / "lab" / "proxies" / kind)
    gone = [name for name in catalog() if any(node.kind == kind for node in load_topology(name).nodes)]
    for name in gone:
        if name != keep_topology:
            (root / "lab" / "topologies" / f"{name}.toml").unlink()
    return gone


def _run_copy(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Python with the copy under ``root`` as its ``lab``; no Docker engine to reach, should a
    command get that far."""
    env = {**os.environ, "PYTHONPATH": str(root), "DOCKER_HOST": f"unix://{root}/no-docker.sock"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=root, timeout=120)


_IMPORT_ALL = ("import importlib, pkgutil, lab\n"
               "print(lab.__file__)\n"
               "for info in pkgutil.walk_packages(lab.__path__, 'lab.'):\n"
               "    if info.name != 'lab.__main__':\n"
               "        importlib.import_module(info.name)\n"
               "from lab.topology import catalog, load_topology\n"
               "print(*[load_topology(name).name for name in catalog()])\n")


@pytest.mark.parametrize("name", list(KINDS))
def test_a_kind_taken_away_with_its_topologies_leaves_every_other_module_importing_and_the_catalog_listing(
        name, tmp_path):
    # The seam, measured: a kind is its package and its catalog files, nothing else (issue 27).
    gone = _lab_without(name, tmp_path)
    imported = _run_copy(tmp_path, "-c", _IMPORT_ALL)
    assert imported.returncode == 0, imported.stderr[-2000:]
    assert imported.stdout.startswith(str(tmp_path / "lab"))  # the copy was imported, not this checkout
    assert gone and not set(gone) & set(imported.stdout.split()) and "direct-https" in imported.stdout.split()
    listed = _run_copy(tmp_path, "-m", "lab", "list")
    assert listed.returncode == 0 and "direct-https" in listed.stdout, listed.stderr[-2000:]


def test_a_topology_whose_kind_was_taken_away_is_refused_in_one_line(tmp_path):
    # Negative control of the test above: without the kind's package its topology cannot load.
    kept = _lab_without("caddy", tmp_path, keep_topology="caddy-https")
    checked = _run_copy(tmp_path, "-m", "lab", "check", "--topology", "caddy-https", "--no-browser")
    assert kept == ["caddy-https"] and checked.returncode == 2
    assert checked.stderr.strip() == "error: topology caddy-https: node proxy has unknown kind 'caddy'"
