"""A customer's Traefik read for reproduce (issue 27): a static file with the file provider's
dynamic files, or a compose file's ``command:`` flags and Docker labels — each translated into
what the lab runs, shown as rows; a certificate resolver's hosts get the lab leaf in acme.json."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml

from lab.errors import LabError
from lab.pki import make_pki
from lab.proxies.traefik.reader import ACME_DIR, LABELS_FILE, RUN_CONFIG, acme_storage, parse_traefik
from lab.reproduce import read_bundle
from lab.reproduce.bundle import classify, collect_bundle, proxy_kind
from lab.reproduce.labmap import proxy_rows, reproduction
from lab.reproduce.provisioning import provisioner
from tests.unit.reproduceutil import parsed, ports, tls

STATIC = """entryPoints:
  web:
    address: ":80"
    http:
      redirections:
        entryPoint:
          to: websecure
          scheme: https
  websecure:
    address: ":443"
providers:
  file:
    directory: /etc/traefik/dynamic
log:
  level: INFO
  filePath: /var/log/traefik/traefik.log
accessLog:
  filePath: /var/log/traefik/access.log
"""

DYNAMIC = """http:
  routers:
    bitbucket:
      rule: "Host(`git.initech.example`) && PathPrefix(`/bitbucket`)"
      entryPoints: [websecure]
      service: bitbucket
      tls: {}
    jira:
      rule: "Host(`jira.initech.example`)"
      entryPoints: [websecure]
      service: jira
      tls: {}
  services:
    bitbucket:
      loadBalancer:
        servers:
          - url: "http://bitbucket.initech.internal:7990"
    jira:
      loadBalancer:
        servers:
          - url: "http://jira.initech.internal:8080"
tls:
  certificates:
    - certFile: /etc/traefik/certs/initech.crt
      keyFile: /etc/traefik/certs/initech.key
"""

COMPOSE = """services:
  bitbucket:
    image: atlassian/bitbucket:9.4
    labels:
      - "traefik.enable=true"
      - "traefik.http.routers.bitbucket.rule=Host(`git.initech.example`)"
      - "traefik.http.routers.bitbucket.entrypoints=websecure"
      - "traefik.http.routers.bitbucket.tls.certresolver=le"
      - "traefik.http.routers.bitbucket.middlewares=gzip@docker"
      - "traefik.http.middlewares.gzip.compress=true"
      - "traefik.http.services.bitbucket.loadbalancer.server.port=7990"
  wiki:
    image: atlassian/confluence:9
    labels:
      - "traefik.http.routers.wiki.rule=Host(`wiki.initech.example`)"
      - "traefik.http.services.wiki.loadbalancer.server.port=8090"
  traefik:
    image: traefik:v3.4
    command:
      - "--providers.docker=true"
      - "--providers.docker.exposedbydefault=false"
      - "--entrypoints.web.address=:80"
      - "--entrypoints.websecure.address=:443"
      - "--certificatesresolvers.le.acme.tlschallenge=true"
      - "--certificatesresolvers.le.acme.storage=/letsencrypt/acme.json"
"""


def traefik(tmp_path: Path, files: dict[str, str]):
    return parsed(tmp_path, files, parse_traefik)


def generated(setup, path: str) -> dict:
    return yaml.safe_load(dict(setup.generated)[path])


def rows(setup) -> dict[str, str]:
    return {what: f"{customer} → {lab}" for what, customer, lab in setup.translations}


def test_a_static_file_and_its_file_provider_directory_give_names_routes_and_the_files_paths(tmp_path):
    setup = traefik(tmp_path, {"traefik.yml": STATIC, "dynamic/bitbucket.yml": DYNAMIC})

    assert setup.server_names == ("git.initech.example",)
    assert ports(setup.listeners) == {443: "tls+h2", 80: "redirect"}
    assert setup.route_prefix == "/bitbucket"
    assert [(u.host, u.port, str(u.source)) for u in setup.upstreams] == [
        ("bitbucket.initech.internal", 7990, "dynamic/bitbucket.yml:16")]
    assert [(n.app, n.upstream.port) for n in setup.neighbours] == [("Jira", 8080)]
    assert tls(setup) == [("tls certFile", "/etc/traefik/certs/initech.crt", "fullchain"),
                          ("tls keyFile", "/etc/traefik/certs/initech.key", "key")]
    assert setup.includes == {"/etc/traefik/traefik.yml": "traefik.yml", "/etc/traefik/dynamic/*": "dynamic/bitbucket.yml"}


def test_the_lab_runs_the_static_settings_as_written_but_logs_where_it_reads_them_and_says_so(tmp_path):
    setup = traefik(tmp_path, {"traefik.yml": STATIC, "dynamic/bitbucket.yml": DYNAMIC})
    run = generated(setup, RUN_CONFIG)

    assert run["entryPoints"] == yaml.safe_load(STATIC)["entryPoints"]
    assert run["providers"] == {"file": {"directory": "/etc/traefik/dynamic"}}  # their dynamic files, verbatim
    assert run["accessLog"]["format"] == "json" and "filePath" not in run["accessLog"]
    assert run["log"] == {"level": "INFO"}
    assert "accessLog (traefik.yml:17)" in rows(setup)["access log"]
    assert "log.filePath /var/log/traefik/traefik.log (traefik.yml:16)" in rows(setup)["log file"]
    assert list(dict(setup.generated)) == [RUN_CONFIG]


def test_compose_labels_become_a_file_provider_file_and_the_docker_provider_is_left_out(tmp_path):
    setup = traefik(tmp_path, {"docker-compose.yml": COMPOSE})
    labels = generated(setup, LABELS_FILE)
    run = generated(setup, RUN_CONFIG)

    assert run["providers"] == {"file": {"filename": LABELS_FILE}}
    assert run["entrypoints"]["websecure"] == {"address": ":443"}
    assert labels["http"]["services"] == {"bitbucket": {"loadbalancer": {"servers": [{"url": "http://bitbucket:7990"}]}}}
    assert labels["http"]["routers"]["bitbucket"]["middlewares"] == ["gzip@file"]
    assert labels["http"]["middlewares"] == {"gzip": {"compress": True}}
    assert "providers.docker (docker-compose.yml:20)" in rows(setup)["provider"]
    assert "server.port 7990 → url http://bitbucket:7990" in rows(setup)["Docker labels"]
    assert setup.server_names == ("git.initech.example",) and [(u.host, u.port) for u in setup.upstreams] == [
        ("bitbucket", 7990)]


def test_with_exposed_by_default_off_a_service_without_traefik_enable_is_not_routed(tmp_path):
    setup = traefik(tmp_path, {"docker-compose.yml": COMPOSE})
    assert "wiki" not in generated(setup, LABELS_FILE)["http"]["routers"]
    assert setup.neighbours == ()

    exposed = traefik(tmp_path / "exposed", {"docker-compose.yml": COMPOSE.replace("exposedbydefault=false", "exposedbydefault=true")})
    assert [(n.app, n.upstream.host, n.upstream.port) for n in exposed.neighbours] == [("Confluence", "wiki", 8090)]


def test_a_certificate_resolver_puts_the_lab_leaf_for_each_router_host_in_its_acme_storage(tmp_path):
    setup = traefik(tmp_path, {"docker-compose.yml": COMPOSE})
    crt, key = f"{ACME_DIR}/le/git.initech.example.crt", f"{ACME_DIR}/le/git.initech.example.key"
    assert tls(setup) == [("certresolver le (ACME storage /letsencrypt/acme.json)", crt, "fullchain"),
                          ("certresolver le (ACME storage /letsencrypt/acme.json)", crt[:-4] + ".key", "key")]

    stored = json.loads(acme_storage(setup.tls_files, {crt: b"CHAIN PEM", key: b"KEY PEM"})["/letsencrypt/acme.json"])

    assert stored == {"le": {"Account": None, "Certificates": [{
        "domain": {"main": "git.initech.example"}, "certificate": base64.b64encode(b"CHAIN PEM").decode(),
        "key": base64.b64encode(b"KEY PEM").decode(), "Store": "default"}]}}


def test_certificates_from_files_write_no_acme_storage(tmp_path):
    setup = traefik(tmp_path, {"traefik.yml": STATIC, "dynamic/bitbucket.yml": DYNAMIC})
    assert acme_storage(setup.tls_files, {}) == {}


def test_a_provisioned_traefik_gets_acme_json_readable_by_root_alone_and_a_row_for_each_translation(tmp_path):
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "docker-compose.yml").write_text(COMPOSE)
    plan = reproduction(read_bundle([tmp_path / "bundle"]), "t")
    node = next(n for n in plan.topology.nodes if n.kind == "traefik")
    files = {f.path: f for f in provisioner(plan)(plan.topology, node, make_pki(tmp_path / "pki", plan.topology.tls_names)).files}

    acme = files["/letsencrypt/acme.json"]
    assert acme.mode == 0o600  # Traefik 3.7 skips a resolver whose storage others can read (measured)
    stored = json.loads(acme.data)["le"]["Certificates"][0]
    assert base64.b64decode(stored["certificate"]) == files[f"{ACME_DIR}/le/git.initech.example.crt"].data
    assert yaml.safe_load(files[RUN_CONFIG].data) == generated(plan.setup.proxy, RUN_CONFIG)
    shown = {row.what for row in proxy_rows(plan)}
    assert {"static configuration", "provider", "Docker labels", "access log", "TLS file", "lab file"} <= shown
    assert "main config" not in shown


def test_a_toml_static_file_keeps_its_lines_for_the_mapping(tmp_path):
    static = ('[entryPoints]\n  [entryPoints.websecure]\n    address = ":443"\n\n'
              '[providers.file]\n  filename = "/etc/traefik/bitbucket.toml"\n')
    dynamic = ('[http.routers.bitbucket]\n  rule = "Host(`git.initech.example`)"\n  service = "bitbucket"\n'
               '  [http.routers.bitbucket.tls]\n\n'
               '[[http.services.bitbucket.loadBalancer.servers]]\n  url = "http://127.0.0.1:7990"\n')
    setup = traefik(tmp_path, {"traefik.toml": static, "bitbucket.toml": dynamic})

    assert ports(setup.listeners) == {443: "tls+h2"}
    assert [(u.host, str(u.source)) for u in setup.upstreams] == [("127.0.0.1", "bitbucket.toml:6")]
    assert setup.includes["/etc/traefik/bitbucket.toml"] == "bitbucket.toml"
    assert "providers.file.filename /etc/traefik/bitbucket.toml (traefik.toml:5)" in rows(setup)["file provider"]


def test_a_router_on_an_entry_point_the_static_config_lacks_is_refused_naming_its_line(tmp_path):
    with pytest.raises(LabError, match=r"dynamic/bitbucket.yml:3: router bitbucket uses entry point https"):
        traefik(tmp_path, {"traefik.yml": STATIC, "dynamic/bitbucket.yml": DYNAMIC.replace("[websecure]", "[https]", 1)})


def test_a_labelled_router_without_a_service_among_two_is_refused_as_traefik_refuses_it(tmp_path):
    two = COMPOSE.replace('      - "traefik.http.services.bitbucket.loadbalancer.server.port=7990"\n',
                          '      - "traefik.http.services.web.loadbalancer.server.port=7990"\n'
                          '      - "traefik.http.services.ssh.loadbalancer.server.port=7999"\n')
    with pytest.raises(LabError, match="router bitbucket names no service and its container's labels define 2"):
        traefik(tmp_path, {"docker-compose.yml": two})


def test_dynamic_config_without_a_static_one_is_refused_asking_for_it(tmp_path):
    with pytest.raises(LabError, match="not its static one: send traefik.yml"):
        traefik(tmp_path, {"dynamic.yml": DYNAMIC})


def test_traefik_files_are_told_by_content_and_a_compose_file_by_its_labels(tmp_path):
    assert classify(DYNAMIC, "bitbucket-routes.yml") == "traefik"
    assert classify("[entryPoints]\n  [entryPoints.web]\n    address = \":80\"\n", "static.toml") == "traefik"
    assert classify(COMPOSE, "docker-compose.yml") == "compose"
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "docker-compose.yml").write_text(COMPOSE)
    assert proxy_kind(collect_bundle([tmp_path / "a"]), "a") == "traefik"
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "docker-compose.yml").write_text(
        "services:\n  bitbucket:\n    image: atlassian/bitbucket:9.4\n    environment:\n      SERVER_PROXY_PORT: 443\n")
    assert proxy_kind(collect_bundle([tmp_path / "b"]), "b") is None  # Bitbucket's settings only


def test_one_file_that_is_both_static_and_dynamic_is_read_as_both(tmp_path):
    catalog = (Path(__file__).resolve().parents[2] / "lab" / "proxies" / "traefik" / "https.conf").read_text()
    setup = traefik(tmp_path, {"traefik.yml": catalog.replace("/etc/lab/traefik.yml", "/etc/traefik/traefik.yml")})

    assert setup.server_names == ("bitbucket.lab.test",) and setup.route_prefix == "/bitbucket"
    assert ports(setup.listeners) == {443: "tls+h2", 80: "redirect"}


def test_labels_beside_a_file_provider_filename_share_one_directory_holding_a_copy_of_that_file(tmp_path):
    static = STATIC.replace("  file:\n    directory: /etc/traefik/dynamic",
                            "  docker:\n    exposedByDefault: false\n  file:\n    filename: /etc/traefik/dynamic.yml")
    compose = COMPOSE.replace("bitbucket", "jira").replace("7990", "8080")
    setup = traefik(tmp_path, {"traefik.yml": static, "dynamic.yml": DYNAMIC.replace(
        DYNAMIC[DYNAMIC.index("    jira:"):DYNAMIC.index("  services:")], ""), "docker-compose.yml": compose})
    files = dict(setup.generated)

    assert generated(setup, RUN_CONFIG)["providers"] == {"file": {"directory": "/etc/lab/traefik-dynamic"}}
    assert files["/etc/lab/traefik-dynamic/dynamic.yml"] == (tmp_path / "dynamic.yml").read_bytes()
    assert "jira" in yaml.safe_load(files["/etc/lab/traefik-dynamic/lab-docker-labels.yml"])["http"]["routers"]
    assert setup.includes["/etc/traefik/dynamic.yml"] == "dynamic.yml"  # the original stays where it was, too
    assert [(n.app, n.upstream.port) for n in setup.neighbours] == [("Jira", 8080)]


def test_labels_are_not_routed_when_the_static_file_has_no_docker_provider(tmp_path):
    setup = traefik(tmp_path, {"traefik.yml": STATIC, "dynamic/bitbucket.yml": DYNAMIC,
                               "docker-compose.yml": COMPOSE.replace("bitbucket", "bamboo")})
    assert LABELS_FILE not in dict(setup.generated) and "Docker labels" not in rows(setup)
    assert [n.app for n in setup.neighbours] == ["Jira"]
