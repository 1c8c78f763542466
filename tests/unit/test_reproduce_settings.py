"""Issue 25: Bitbucket's settings from wherever customers keep them — compose, env files,
docker run lines, Helm values, a pre-5.0 server.xml — and, when nowhere, assumed from the proxy."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.errors import LabError
from lab.reproduce import read_bundle
from lab.reproduce.bundle import collect_bundle
from lab.reproduce.labmap import proxy_rows, reproduction
from lab.reproduce.provisioning import generated_properties, provisioner
from lab.proxies.nginx.reader import WRAPPER_SITE

SITE = """server {
    listen 443 ssl;
    server_name git.example.org;
    ssl_certificate /etc/ssl/certs/git.pem;
    ssl_certificate_key /etc/ssl/private/git.key;
    location /stash {
        proxy_pass http://bitbucket:7990;
        proxy_set_header Host $host;
    }
}
"""
COMPOSE = """services:
  bitbucket:
    image: atlassian/bitbucket:8.19
    env_file: bitbucket.env
    environment:
      SERVER_PROXY_NAME: ${DOMAIN}
      SERVER_PROXY_PORT: "443"
      SERVER_SCHEME: https
  db:
    image: postgres:15
    environment:
      - POSTGRES_PASSWORD=secret
"""


def write(directory: Path, files: dict[str, str]) -> Path:
    for relpath, text in files.items():
        (directory / relpath).parent.mkdir(parents=True, exist_ok=True)
        (directory / relpath).write_text(text)
    return directory


def settings_of(directory: Path) -> dict[str, tuple[str, str]]:
    setup = read_bundle([directory])
    return {setting.key: (setting.value, str(setting.source)) for setting in setup.settings}


def test_compose_environment_env_file_and_dot_env_variables_become_bitbucket_settings_with_their_lines(tmp_path):
    write(tmp_path, {"bitbucket.conf": SITE, "docker-compose.yml": COMPOSE, ".env": "DOMAIN=git.example.org\n",
                     "bitbucket.env": "SERVER_SECURE=true\nSERVER_CONTEXT_PATH=/stash\nJVM_MAXIMUM_MEMORY=2g\n"})

    found = settings_of(tmp_path)

    assert found == {"server.proxy-name": ("git.example.org", "docker-compose.yml:6"),
                     "server.proxy-port": ("443", "docker-compose.yml:7"),
                     "server.scheme": ("https", "docker-compose.yml:8"),
                     "server.secure": ("true", "bitbucket.env:1"),
                     "server.context-path": ("/stash", "bitbucket.env:2")}


def test_the_environment_wins_over_bitbucket_properties_as_in_spring_boot_and_the_mapping_says_where_each_came_from(tmp_path):
    write(tmp_path, {"bitbucket.conf": SITE, "docker-compose.yml": COMPOSE, ".env": "DOMAIN=git.example.org\n",
                     "bitbucket.env": "SERVER_SECURE=true\n",
                     "bitbucket.properties": "server.proxy-name=old.example.org\nserver.context-path=/stash\n"})
    setup = read_bundle([tmp_path])

    rows = [(row.customer, row.lab) for row in reproduction(setup, "t").mapping if row.what == "setting"]
    generated = generated_properties(setup).decode()

    assert setup.properties_values["server.proxy-name"] == "git.example.org"
    assert setup.properties_values["server.context-path"] == "/stash"  # only the properties give it
    assert ("SERVER_PROXY_NAME in the environment of service bitbucket, ${DOMAIN} from .env = git.example.org "
            "(docker-compose.yml:6)", "server.proxy-name=git.example.org in the lab's bitbucket.properties") in rows
    assert generated.index("server.proxy-name=old.example.org") < generated.index("server.proxy-name=git.example.org")


def test_a_compose_variable_without_a_value_is_refused_in_one_line_naming_it(tmp_path):
    write(tmp_path, {"bitbucket.conf": SITE, "docker-compose.yml": COMPOSE, "bitbucket.env": "SERVER_SECURE=true\n"})

    with pytest.raises(LabError, match=r"^docker-compose.yml:6: \$\{DOMAIN\} has no value in the bundle: send the "
                                       r"\.env beside it, or pass --env DOMAIN=VALUE$"):
        read_bundle([tmp_path])


def test_a_default_in_a_compose_variable_is_used_when_the_bundle_has_no_value(tmp_path):
    write(tmp_path, {"bitbucket.conf": SITE,
                     "compose.yaml": "services:\n  bitbucket:\n    image: atlassian/bitbucket\n    environment:\n"
                                     "      SERVER_PROXY_NAME: ${DOMAIN:-git.example.org}\n"})

    assert settings_of(tmp_path) == {"server.proxy-name": ("git.example.org", "compose.yaml:5")}


def test_a_doubled_dollar_in_compose_is_a_literal_dollar_and_no_variable(tmp_path):
    write(tmp_path, {"bitbucket.conf": SITE,
                     "compose.yaml": "services:\n  bitbucket:\n    image: atlassian/bitbucket\n    environment:\n"
                                     "      SERVER_PROXY_NAME: git$$DOMAIN.example.org\n"})

    assert settings_of(tmp_path) == {"server.proxy-name": ("git$DOMAIN.example.org", "compose.yaml:5")}


def test_helm_values_give_what_atlassians_chart_derives_from_the_ingress(tmp_path):
    values = ("bitbucket:\n  additionalEnvironmentVariables:\n    - name: PLUGIN_SSH_BASEURL\n"
              "      value: ssh://git.example.org/\ningress:\n  create: true\n  host: git.example.org\n  path: /bitbucket\n")
    write(tmp_path, {"values.yaml": values, "bitbucket.conf": SITE})

    found = settings_of(tmp_path)

    assert found["server.proxy-name"] == ("git.example.org", "values.yaml:7")
    assert found["server.proxy-port"][0] == "443" and found["server.scheme"][0] == "https"
    assert found["server.secure"][0] == "true" and found["server.context-path"] == ("/bitbucket", "values.yaml:8")
    assert found["plugin.ssh.baseurl"] == ("ssh://git.example.org/", "values.yaml:3")


def test_a_pre_5_server_xml_connector_and_context_map_as_atlassians_migration_guide_says(tmp_path):
    server_xml = """<?xml version='1.0' encoding='utf-8'?>
<Server port="8006" shutdown="SHUTDOWN">
  <Service name="Catalina">
    <Connector port="7990" protocol="HTTP/1.1"
               connectionTimeout="20000"
               proxyName="stash.example.org" proxyPort="443" scheme="https" secure="true"/>
    <Engine name="Catalina" defaultHost="localhost">
      <Host name="localhost" appBase="webapps">
        <Context path="/stash" docBase="${catalina.home}/atlassian-stash" reloadable="false"/>
      </Host>
    </Engine>
  </Service>
</Server>
"""
    write(tmp_path, {"conf/server.xml": server_xml, "bitbucket.conf": SITE})

    found = settings_of(tmp_path)

    assert found == {"server.port": ("7990", "conf/server.xml:4"), "server.proxy-name": ("stash.example.org", "conf/server.xml:6"),
                     "server.proxy-port": ("443", "conf/server.xml:6"), "server.scheme": ("https", "conf/server.xml:6"),
                     "server.secure": ("true", "conf/server.xml:6"), "server.context-path": ("/stash", "conf/server.xml:9")}


def test_docker_run_e_lines_in_a_script_are_settings_and_the_script_is_never_a_proxy_config(tmp_path):
    script = "#!/bin/sh\ndocker run -d -e SERVER_PROXY_NAME=git.example.org -e 'SERVER_SECURE=true' \\\n  atlassian/bitbucket\n"
    write(tmp_path, {"run-bitbucket.sh": script, "bitbucket.conf": SITE})

    kinds = {file.relpath: file.kind for file in collect_bundle([tmp_path])}

    assert kinds["run-bitbucket.sh"] == "script"
    assert settings_of(tmp_path) == {"server.proxy-name": ("git.example.org", "run-bitbucket.sh:2"),
                                     "server.secure": ("true", "run-bitbucket.sh:2")}


def test_a_readme_holding_a_config_snippet_is_a_note_listed_as_not_used(tmp_path):
    readme = "# Our proxy\n\n```\nserver {\n    listen 80;\n    proxy_pass http://x:7990;\n}\n```\n"
    write(tmp_path, {"README.md": readme, "bitbucket.conf": SITE, "bitbucket.properties": "server.secure=true\n"})
    setup = read_bundle([tmp_path])

    rows = {row.customer: row.lab for row in reproduction(setup, "t").mapping if row.what == "ignored file"}

    assert {file.relpath: file.kind for file in setup.bundle}["README.md"] == "text"
    assert rows == {"README.md": "read as free text (a note): not used"}


def test_without_any_settings_the_lab_assumes_what_the_proxy_implies_and_says_so(tmp_path):
    write(tmp_path, {"bitbucket.conf": SITE})
    setup = read_bundle([tmp_path])

    rows = [(row.customer, row.lab) for row in reproduction(setup, "t").mapping if row.what == "setting"]

    assert {key: value for key, value, _ in setup.assumed} == {
        "server.proxy-name": "git.example.org", "server.proxy-port": "443", "server.scheme": "https",
        "server.secure": "true", "server.context-path": "/stash"}
    assert all(customer.startswith("assumed (not in the bundle)") and lab.endswith("confirm with the customer")
               for customer, lab in rows) and len(rows) == 5
    assert "server.context-path=/stash" in generated_properties(setup).decode()


def test_a_bundle_that_names_bitbucket_settings_is_not_given_assumed_ones(tmp_path):
    write(tmp_path, {"bitbucket.conf": SITE, "bitbucket.properties": "server.proxy-name=git.example.org\n"})

    assert read_bundle([tmp_path]).assumed == ()


MULTI_APP = """server {
    listen 443 ssl;
    server_name atlassian.example.org;
    ssl_certificate /etc/nginx/ssl/atlassian.crt;
    ssl_certificate_key /etc/nginx/ssl/atlassian.key;
    location /jira {
        proxy_pass http://jira:8080;
    }
    location /wiki {
        proxy_pass http://10.0.3.16:8090;
    }
    location /bitbucket {
        proxy_pass http://bitbucket:7990;
    }
    location /bamboo {
        proxy_pass http://bitbucket:8085;
    }
}
"""


def test_a_proxy_serving_jira_and_confluence_beside_bitbucket_gets_a_neighbour_node_for_each(tmp_path):
    write(tmp_path, {"atlassian.conf": MULTI_APP})
    setup = read_bundle([tmp_path])
    plan = reproduction(setup, "t")

    nodes = {node.name: node for node in plan.topology.nodes}
    rows = [row.customer for row in plan.mapping if row.what == "neighbour"]

    assert setup.public_url == "https://atlassian.example.org/bitbucket"
    assert [(n.app, n.route_prefix) for n in setup.proxy.neighbours] == [("Jira", "/jira"), ("Confluence", "/wiki"),
                                                                         ("Bamboo", "/bamboo")]
    assert nodes["neighbour-1"].networks == {"inside": ("jira",)} and nodes["neighbour-1"].ports == (8080,)
    assert nodes["neighbour-2"].networks == {"inside": ("confluence-10-0-3-16",)}  # an address, renamed as the mapping says
    assert nodes["neighbour-3"].shares_host_with == "bitbucket"  # Bamboo on Bitbucket's own host, another port
    assert rows[0] == "Jira at /jira: http://jira:8080 (atlassian.conf:7)"
    assert provisioner(plan)(plan.topology, nodes["neighbour-1"], None).environment["LAB_NEIGHBOUR_APP"] == "Jira"  # type: ignore[arg-type]


def test_a_unicode_server_name_is_the_public_host_in_the_form_clients_send_and_a_placeholder_is_named(tmp_path):
    write(tmp_path / "unicode", {"site.conf": SITE.replace("git.example.org", "bücher.example")})
    write(tmp_path / "placeholder", {"site.conf": SITE.replace("git.example.org", "<yourservername.com>")})

    unicode_setup = read_bundle([tmp_path / "unicode"])
    placeholder_setup = read_bundle([tmp_path / "placeholder"])

    assert unicode_setup.public_url == "https://xn--bcher-kva.example/stash"
    assert placeholder_setup.public_url_reason.startswith(
        "server_name <yourservername.com> (site.conf:3) is a placeholder, not a host (pass --public-url")


HAPROXY_TWO_NODES = """frontend www
    bind :80
    mode http
    default_backend bitbucket_nodes

backend bitbucket_nodes
    mode http
    balance roundrobin
    cookie BBNODE insert indirect nocache
    server node1 10.0.1.11:7990 check cookie node1
    server node2 10.0.1.12:7990 check cookie node2
"""


def test_an_haproxy_backend_of_two_bitbucket_servers_runs_as_two_nodes_with_the_customers_balancing(tmp_path):
    write(tmp_path, {"haproxy.cfg": HAPROXY_TWO_NODES})
    plan = reproduction(read_bundle([tmp_path]), "t")

    nodes = {node.name: node for node in plan.topology.nodes if node.kind == "stub"}
    cluster = [row.lab for row in plan.mapping if row.what == "cluster"]

    assert set(nodes) == {"bitbucket-1", "bitbucket-2"} and plan.topology.clustered
    assert nodes["bitbucket-1"].networks == {"inside": ("bitbucket-10-0-1-11",)}
    assert nodes["bitbucket-2"].networks == {"inside": ("bitbucket-10-0-1-12",)}
    assert cluster and cluster[0].startswith("2 Bitbucket nodes (bitbucket-1, bitbucket-2)")


def test_an_apache_balancer_of_two_members_runs_as_two_nodes(tmp_path):
    vhost = """<VirtualHost *:80>
    ServerName git.example.org
    ProxyRequests Off
    ProxyPreserveHost On
    <Proxy balancer://bitbucket>
        BalancerMember http://bb1.internal:7990 route=1
        BalancerMember http://bb2.internal:7990 route=2
        ProxySet stickysession=ROUTEID
    </Proxy>
    ProxyPass / balancer://bitbucket/
    ProxyPassReverse / balancer://bitbucket/
</VirtualHost>
"""
    write(tmp_path, {"bitbucket.conf": vhost})
    plan = reproduction(read_bundle([tmp_path]), "t")

    assert [node.networks for node in plan.topology.nodes if node.kind == "stub"] == [
        {"inside": ("bb1.internal",)}, {"inside": ("bb2.internal",)}]


def test_an_upstream_that_is_the_public_name_reaches_bitbucket_on_the_proxys_own_host(tmp_path):
    write(tmp_path, {"site.conf": SITE.replace("http://bitbucket:7990", "http://git.example.org:7990")})
    plan = reproduction(read_bundle([tmp_path]), "t")

    stub = next(node for node in plan.topology.nodes if node.kind == "stub")
    row = next(row.lab for row in plan.mapping if row.what == "upstream")

    assert stub.shares_host_with == "proxy" and "the upstream is the public name" in row


HAPROXY_TEMPLATE = """frontend www
    bind :80
    mode http
    default_backend bitbucket

backend bitbucket
    mode http
    server bitbucket bitbucket.${ENV_DOMAIN}:7990 check
"""


def test_a_variable_in_an_haproxy_file_takes_its_value_from_the_bundles_env_in_a_rendered_working_copy(tmp_path):
    write(tmp_path, {"haproxy.cfg": HAPROXY_TEMPLATE, ".env": "ENV_DOMAIN=initech.example\n"})
    setup = read_bundle([tmp_path])

    rows = [(row.customer, row.lab) for row in reproduction(setup, "t").mapping if row.what == "template"]

    assert setup.proxy.upstreams[0].host == "bitbucket.initech.example"
    assert rows == [("haproxy.cfg: ${ENV_DOMAIN}", "rendered into a working copy as envsubst would: "
                                                    "ENV_DOMAIN=initech.example (from .env)")]
    assert "${ENV_DOMAIN}" in (tmp_path / "haproxy.cfg").read_text()  # the customer's file is never touched


def test_an_env_option_wins_over_the_bundle_and_a_variable_without_value_is_refused_naming_it(tmp_path):
    write(tmp_path, {"haproxy.cfg": HAPROXY_TEMPLATE})

    with pytest.raises(LabError, match=r"^haproxy.cfg:8: \$\{ENV_DOMAIN\} has no value in the bundle: .* "
                                       r"--env ENV_DOMAIN=VALUE$"):
        read_bundle([tmp_path])
    assert read_bundle([tmp_path], env={"ENV_DOMAIN": "acme.example"}).proxy.upstreams[0].host == "bitbucket.acme.example"


def test_nginx_variables_of_its_own_are_left_alone(tmp_path):
    write(tmp_path, {"site.conf": SITE.replace("proxy_set_header Host $host;", "proxy_set_header Host ${host};")})

    assert read_bundle([tmp_path]).rendered == ()


def test_helm_values_alone_behind_an_ingress_are_refused_in_one_line_asking_for_the_proxys_files(tmp_path):
    write(tmp_path, {"values.yaml": "ingress:\n  create: true\n  host: bitbucket.example.org\nbitbucket:\n  replicaCount: 2\n"})

    with pytest.raises(LabError, match=r"^values.yaml:3: ingress.host puts Bitbucket behind a proxy, but the bundle "
                                       r"has no proxy config: send the proxy's files too"):
        read_bundle([tmp_path])


def test_an_upstream_named_for_another_product_is_that_neighbour_not_jira_by_its_port(tmp_path):
    write(tmp_path, {"site.conf": SITE.replace("    location /stash {", "    location /artifactory {\n"
                                               "        proxy_pass http://artifactory:8080;\n    }\n    location /stash {")})

    assert [n.app for n in read_bundle([tmp_path]).proxy.neighbours] == ["artifactory"]


GO_GET_SITE = """server {
    listen 80;
    server_name git.example.org;
    if ($args ~* "^go-get=1") { set $condition goget; }
    location / {
        if ($condition = goget) { proxy_pass http://localhost:7991; }
        if ($condition != goget) { proxy_pass http://localhost:7990; }
    }
}
"""
TWO_UNNAMED_APPS = """server {
    listen 80;
    server_name tools.example.org;
    location /a { proxy_pass http://10.0.0.5:8080; }
    location /b { proxy_pass http://10.0.0.6:8081; }
}
"""


def test_of_two_proxy_pass_in_if_blocks_the_one_on_bitbucket_s_port_is_bitbucket_and_the_other_a_neighbour(tmp_path):
    write(tmp_path, {"site.conf": GO_GET_SITE})
    setup = read_bundle([tmp_path])
    assert [(u.host, u.port) for u in setup.proxy.upstreams] == [("localhost", 7990)]
    assert [(n.upstream.port, n.route_prefix) for n in setup.proxy.neighbours] == [(7991, "")]


def test_bitbucket_s_own_port_in_its_settings_picks_its_upstream_over_the_default_port(tmp_path):
    write(tmp_path, {"site.conf": GO_GET_SITE, "bitbucket.properties": "server.port=7991\n"})
    assert [(u.host, u.port) for u in read_bundle([tmp_path]).proxy.upstreams] == [("localhost", 7991)]


def test_two_upstreams_nothing_tells_apart_are_refused_listing_both_and_the_option(tmp_path):
    write(tmp_path, {"site.conf": TWO_UNNAMED_APPS})
    with pytest.raises(LabError) as refused:
        read_bundle([tmp_path])
    message = str(refused.value)
    assert "10.0.0.5:8080 (/a at site.conf:4)" in message and "10.0.0.6:8081 (/b at site.conf:5)" in message
    assert "--bitbucket-upstream HOST:PORT" in message and "\n" not in message


def test_the_bitbucket_upstream_option_settles_the_ambiguity_and_the_other_becomes_a_neighbour(tmp_path):
    write(tmp_path, {"site.conf": TWO_UNNAMED_APPS})
    setup = read_bundle([tmp_path], bitbucket_upstream="10.0.0.6:8081")
    assert setup.public_url == "http://tools.example.org/b"
    assert [(n.upstream.host, n.route_prefix) for n in setup.proxy.neighbours] == [("10.0.0.5", "/a")]
    with pytest.raises(LabError, match="is none of the proxy's upstreams"):  # negative control: a wrong one
        read_bundle([tmp_path], bitbucket_upstream="10.0.0.7:7990")


def test_git_in_a_route_names_bitbucket_but_gitlab_does_not(tmp_path):
    write(tmp_path, {"site.conf": TWO_UNNAMED_APPS.replace("location /a", "location /gitlab")
                     .replace("location /b", "location /git")})
    assert read_bundle([tmp_path]).proxy.route_prefix == "/git"
    write(tmp_path, {"site.conf": TWO_UNNAMED_APPS.replace("location /a", "location /gitlab")})
    with pytest.raises(LabError, match="more than one upstream"):
        read_bundle([tmp_path])


LOCATION_SNIPPET = """location /bitbucket {
    proxy_pass http://bitbucket:7990;
}
"""


def test_a_location_only_snippet_runs_inside_a_server_of_the_lab_s_own_that_listens_where_the_settings_say(tmp_path):
    write(tmp_path, {"etc/nginx/conf.d/bitbucket.conf": LOCATION_SNIPPET,
                     "bitbucket.properties": "server.proxy-name=git.example.org\nserver.proxy-port=443\n"
                                             "server.scheme=https\nserver.secure=true\nserver.context-path=/bitbucket\n"})
    setup = read_bundle([tmp_path])
    plan = reproduction(setup, "t")
    files = {f.path: f.data.decode() for f in provisioner(plan)(plan.topology, next(
        n for n in plan.topology.nodes if n.kind == "nginx"), _lab_tls(tmp_path)).files}

    assert setup.public_url == "https://git.example.org/bitbucket"
    assert "include /etc/nginx/lab-snippets/bitbucket.conf;" in files[WRAPPER_SITE]
    assert "listen 443 ssl;" in files[WRAPPER_SITE] and "server_name git.example.org;" in files[WRAPPER_SITE]
    assert files["/etc/nginx/lab-snippets/bitbucket.conf"] == LOCATION_SNIPPET  # verbatim, out of conf.d's reach
    assert "/etc/nginx/conf.d/bitbucket.conf" not in files
    assert any(row.what == "server block" and "send the real server block" in row.lab for row in proxy_rows(plan))


def test_a_location_only_snippet_without_https_settings_gets_a_plain_http_server(tmp_path):
    write(tmp_path, {"bitbucket.conf": LOCATION_SNIPPET})
    setup = read_bundle([tmp_path])
    assert setup.public_url == "http://bitbucket/bitbucket" and not setup.proxy.listeners[0].tls
    assert [ref.directive for ref in setup.proxy.tls_files] == []


def _lab_tls(directory: Path):
    from lab.pki import make_pki
    return make_pki(directory / "certs", ("git.example.org", "bitbucket"))
