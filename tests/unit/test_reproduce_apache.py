"""Apache httpd bundles as customers send them: Debian vhosts, RHEL conf.d, the tokenizer's edges."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.errors import LabError
from lab.proxies.apache.reader import parse_apache, tokenize, unsupported_directives
from lab.reproduce.model import ProxySetup
from tests.unit.reproduceutil import parsed, ports, tls  # noqa: F401

DEBIAN_SITE = """\
<VirtualHost *:80>
    ServerName git.acme.example
    Redirect permanent / https://git.acme.example/
</VirtualHost>

<VirtualHost *:443>
    ServerName git.acme.example
    ServerAlias bitbucket.acme.example *.git.acme.example
    SSLEngine on
    SSLCertificateFile /etc/ssl/certs/git.acme.example.pem
    SSLCertificateKeyFile /etc/ssl/private/git.acme.example.key

    ErrorLog ${APACHE_LOG_DIR}/bitbucket_error.log
    CustomLog ${APACHE_LOG_DIR}/bitbucket_access.log combined

    ProxyRequests Off
    ProxyPreserveHost On
    AllowEncodedSlashes NoDecode
    ProxyPass /bitbucket http://10.0.0.12:7990/bitbucket nocanon timeout=600
    ProxyPassReverse /bitbucket http://10.0.0.12:7990/bitbucket
</VirtualHost>
"""

RHEL_HTTPD_CONF = """\
ServerRoot "/etc/httpd"
Listen 80
Include conf.modules.d/*.conf
User apache
Group apache
ServerAdmin root@localhost
<Directory />
    AllowOverride none
    Require all denied
</Directory>
ErrorLog "logs/error_log"
<IfModule mime_module>
    TypesConfig /etc/mime.types
</IfModule>
IncludeOptional conf.d/*.conf
"""

RHEL_SITE = """\
Listen 443 https
<VirtualHost _default_:443>
    ServerName git.acme.example:443
    SSLEngine on
    SSLCertificateFile /etc/pki/tls/certs/git.acme.example.crt
    SSLCertificateChainFile /etc/pki/tls/certs/acme-intermediate.crt
    SSLCertificateKeyFile /etc/pki/tls/private/git.acme.example.key
    SSLCACertificateFile /etc/pki/tls/certs/acme-root.crt
    ErrorLog logs/ssl_error_log
    TransferLog logs/ssl_access_log
    ProxyPass / http://localhost:7990/ nocanon
    ProxyPassReverse / http://localhost:7990/
</VirtualHost>
"""


def test_a_debian_vhost_file_gives_names_listeners_route_and_upstream(tmp_path):
    setup = apache_setup(tmp_path, {"etc/apache2/sites-enabled/bitbucket.conf": DEBIAN_SITE})
    assert setup.main_file is None
    assert setup.server_names == ("git.acme.example", "bitbucket.acme.example")
    assert ports(setup.listeners) == {443: "tls", 80: "redirect"}
    assert setup.route_prefix == "/bitbucket"
    assert [(u.scheme, u.host, u.port) for u in setup.upstreams] == [("http", "10.0.0.12", 7990)]
    assert setup.directories == ("/var/log/apache2",)


def test_a_certificate_file_without_a_chain_file_must_hold_the_full_chain(tmp_path):
    setup = apache_setup(tmp_path, {"bitbucket.conf": DEBIAN_SITE})
    assert tls(setup) == [("SSLCertificateFile", "/etc/ssl/certs/git.acme.example.pem", "fullchain"),
                          ("SSLCertificateKeyFile", "/etc/ssl/private/git.acme.example.key", "key")]


def test_a_certificate_file_beside_a_chain_file_is_the_leaf_alone(tmp_path):
    setup = apache_setup(tmp_path, {"etc/httpd/conf.d/bitbucket.conf": RHEL_SITE})
    assert tls(setup) == [
        ("SSLCertificateFile", "/etc/pki/tls/certs/git.acme.example.crt", "leaf"),
        ("SSLCertificateChainFile", "/etc/pki/tls/certs/acme-intermediate.crt", "chain"),
        ("SSLCertificateKeyFile", "/etc/pki/tls/private/git.acme.example.key", "key"),
        ("SSLCACertificateFile", "/etc/pki/tls/certs/acme-root.crt", "ca")]


def test_a_rhel_httpd_conf_resolves_includes_and_relative_paths_against_etc_httpd(tmp_path):
    setup = apache_setup(tmp_path, {"etc/httpd/conf/httpd.conf": RHEL_HTTPD_CONF,
                                    "etc/httpd/conf.d/bitbucket.conf": RHEL_SITE})
    assert setup.main_file is not None and setup.main_file.relpath == "etc/httpd/conf/httpd.conf"
    assert setup.includes == {"conf.modules.d/*.conf": "distribution",
                              "conf.d/*.conf": "etc/httpd/conf.d/bitbucket.conf"}
    assert setup.accounts == ("apache",)
    assert setup.directories == ("/etc/httpd/logs",)
    assert setup.server_names == ("git.acme.example",)
    assert setup.route_prefix == "" and setup.upstreams[0].is_local
    assert ports(setup.listeners) == {443: "tls"}     # Listen 80 serves httpd's own pages, not Bitbucket


def test_a_loose_rhel_site_file_is_recognised_as_rhel_by_its_directory(tmp_path):
    setup = apache_setup(tmp_path, {"conf.d/bitbucket.conf": RHEL_SITE})
    assert setup.directories == ("/etc/httpd/logs",)


def test_relative_paths_of_a_debian_bundle_start_at_etc_apache2(tmp_path):
    setup = apache_setup(tmp_path, {"sites-enabled/bitbucket.conf": RHEL_SITE.replace("Listen 443 https\n", "")})
    assert setup.directories == ("/etc/apache2/logs",)


def test_a_debian_apache2_conf_expands_envvars_and_finds_its_site_files(tmp_path):
    apache2_conf = ("DefaultRuntimeDir ${APACHE_RUN_DIR}\nPidFile ${APACHE_PID_FILE}\nUser ${APACHE_RUN_USER}\n"
                    "Group ${APACHE_RUN_GROUP}\nErrorLog ${APACHE_LOG_DIR}/error.log\n"
                    "IncludeOptional mods-enabled/*.load\nIncludeOptional mods-enabled/*.conf\nInclude ports.conf\n"
                    "IncludeOptional conf-enabled/*.conf\nIncludeOptional sites-enabled/*.conf\n")
    envvars = "export APACHE_RUN_USER=bitbucket-www\nexport APACHE_RUN_GROUP=www-data\n"
    setup = apache_setup(tmp_path, {"etc/apache2/apache2.conf": apache2_conf, "etc/apache2/envvars": envvars,
                                    "etc/apache2/sites-enabled/bitbucket.conf": DEBIAN_SITE})
    assert setup.accounts == ("bitbucket-www", "www-data")
    assert setup.includes["ports.conf"] == "distribution"
    assert setup.includes["sites-enabled/*.conf"] == "etc/apache2/sites-enabled/bitbucket.conf"
    assert "/var/run/apache2" in setup.directories


def test_a_missing_include_names_the_file_and_line_but_a_missing_include_optional_is_fine(tmp_path):
    optional = apache_setup(tmp_path / "a", {"b.conf": "IncludeOptional /etc/apache2/acme/proxy.conf\n" + DEBIAN_SITE})
    assert optional.includes == {"/etc/apache2/acme/proxy.conf": "nothing"}
    with pytest.raises(LabError, match=r"^b.conf:1: includes /etc/apache2/acme/proxy.conf, which is not in the bundle"):
        apache_setup(tmp_path / "b", {"b.conf": "Include /etc/apache2/acme/proxy.conf\n" + DEBIAN_SITE})


def test_balancer_members_are_the_upstreams_of_a_cluster(tmp_path):
    cluster = """\
<Proxy balancer://bitbucket>
    BalancerMember http://node1.acme.internal:7990 route=node1
    BalancerMember http://node2.acme.internal:7990 route=node2
    ProxySet stickysession=ROUTEID
</Proxy>
<VirtualHost *:80>
    ServerName git.acme.example
    ProxyPass /status !
    ProxyPass /bitbucket balancer://bitbucket/bitbucket stickysession=ROUTEID
</VirtualHost>
"""
    setup = apache_setup(tmp_path, {"cluster.conf": cluster})
    assert [(u.host, u.port) for u in setup.upstreams] == [("node1.acme.internal", 7990), ("node2.acme.internal", 7990)]
    assert setup.route_prefix == "/bitbucket"


def test_a_proxypass_exclusion_is_not_a_route(tmp_path):
    setup = apache_setup(tmp_path, {"b.conf": "<VirtualHost *:80>\n ServerName a.example\n ProxyPass / !\n</VirtualHost>\n"})
    assert setup.route_prefix == "" and setup.route_source is None and setup.upstreams == ()


def test_a_proxypass_inside_a_location_takes_the_location_as_prefix(tmp_path):
    site = ("<VirtualHost *:80>\n ServerName git.acme.example\n <Location /bitbucket>\n"
            "  ProxyPass http://bb:7990/bitbucket nocanon\n </Location>\n</VirtualHost>\n")
    assert apache_setup(tmp_path, {"b.conf": site}).route_prefix == "/bitbucket"


def test_protocols_h2_turns_on_http2_and_its_absence_does_not(tmp_path):
    with_h2 = apache_setup(tmp_path / "a", {"b.conf": DEBIAN_SITE.replace("SSLEngine on", "SSLEngine on\n Protocols h2 http/1.1")})
    without = apache_setup(tmp_path / "b", {"b.conf": DEBIAN_SITE})
    assert ports(with_h2.listeners)[443] == "tls+h2" and ports(without.listeners)[443] == "tls"


def test_a_rewrite_rule_to_https_with_r_makes_a_redirect_vhost(tmp_path):
    site = DEBIAN_SITE.replace("Redirect permanent / https://git.acme.example/",
                               "RewriteEngine On\n    RewriteRule ^(.*)$ https://%{SERVER_NAME}$1 [R=301,L]")
    assert ports(apache_setup(tmp_path, {"b.conf": site}).listeners)[80] == "redirect"


def test_a_port_80_vhost_that_proxies_is_not_a_redirect(tmp_path):
    site = DEBIAN_SITE.replace("Redirect permanent / https://git.acme.example/",
                               "ProxyPass /bitbucket http://10.0.0.12:7990/bitbucket")
    assert ports(apache_setup(tmp_path, {"b.conf": site}).listeners)[80] == "plain"


def test_the_tokenizer_joins_continuations_keeps_quotes_and_skips_comments():
    text = ('# a comment\n<VirtualHost *:443>\n    ProxyPass /bitbucket \\\n        http://bb:7990/bitbucket \\\n'
            '        nocanon\n    Header set X-Note "two words"\n</VirtualHost>\n')
    (vhost,) = tokenize(text, "b.conf")
    proxy_pass, header = vhost.block or ()
    assert (vhost.name, vhost.args, vhost.source.line) == ("VirtualHost", ("*:443",), 2)
    assert proxy_pass.args == ("/bitbucket", "http://bb:7990/bitbucket", "nocanon") and proxy_pass.source.line == 3
    assert header.args == ("set", "X-Note", "two words")


def test_the_tokenizer_keeps_ifmodule_content_and_drops_a_negated_ifmodule():
    text = "<IfModule mod_ssl.c>\nListen 443\n</IfModule>\n<IfModule !mod_ssl.c>\nListen 8443\n</IfModule>\n"
    assert [(d.name, d.args) for d in tokenize(text, "ports.conf")] == [("Listen", ("443",))]


def test_an_unclosed_section_names_where_it_opens():
    with pytest.raises(LabError, match=r"^b.conf:2: <VirtualHost> is never closed"):
        tokenize("# x\n<VirtualHost *:80>\nServerName a\n", "b.conf")


def test_a_close_without_an_open_section_names_its_line():
    with pytest.raises(LabError, match=r"^b.conf:3: </Location> closes no open <Location> section"):
        tokenize("<VirtualHost *:80>\nServerName a\n</Location>\n</VirtualHost>\n", "b.conf")


def test_directives_of_modules_debian_lacks_are_reported_and_ldap_is_not(tmp_path):
    site = DEBIAN_SITE.replace("    ProxyRequests Off", "    JkMount /bitbucket/* worker1\n    WSGIScriptAlias /x /srv/x.wsgi\n"
                               "    AuthLDAPURL ldap://ldap.acme.example/dc=acme\n    ProxyRequests Off")
    setup = apache_setup(tmp_path, {"b.conf": "LoadModule jk_module modules/mod_jk.so\n" + site})
    found = [(directive, module, str(source)) for directive, module, source in unsupported_directives(setup)]
    assert found == [("LoadModule jk_module", "mod_jk", "b.conf:1"), ("JkMount", "mod_jk", "b.conf:17"),
                     ("WSGIScriptAlias", "mod_wsgi", "b.conf:18")]


def test_a_plain_reverse_proxy_needs_no_module_debian_lacks(tmp_path):
    assert unsupported_directives(apache_setup(tmp_path, {"b.conf": DEBIAN_SITE})) == []


def apache_setup(directory: Path, files: dict[str, str]) -> ProxySetup:
    return parsed(directory, files, parse_apache)


def test_an_include_inside_ifmodule_of_a_file_the_bundle_lacks_is_not_a_refusal(tmp_path):
    from lab.reproduce import read_bundle

    (tmp_path / "bitbucket.conf").write_text(
        "<VirtualHost *:80>\n    ServerName git.example.org\n    <IfModule proxy_html_module>\n"
        "        Include conf/extra/proxy-html.conf\n    </IfModule>\n"
        "    ProxyPass / http://bitbucket:7990/\n</VirtualHost>\n")

    setup = read_bundle([tmp_path])

    assert setup.public_url == "http://git.example.org"


OFFICIAL_CASE = Path(__file__).resolve().parents[1] / "cases" / "sloppycoder-apache-multiapp-stash-prefix" / "bundle"


def test_an_httpd_conf_of_the_official_image_runs_on_the_labs_official_layout_with_its_mpm_preloaded():
    from lab.reproduce import read_bundle
    from lab.reproduce.labmap import reproduction

    plan = reproduction(read_bundle([OFFICIAL_CASE]), "official")
    assert plan.topology.proxy is not None and plan.topology.proxy.image == "apache-official"
    assert plan.proxy_plan is not None and plan.proxy_plan.server_root == "/usr/local/apache2"
    assert plan.proxy_plan.start.environment["LAB_APACHE_CONF"] == "/usr/local/apache2/conf/httpd.conf"
    assert plan.proxy_plan.start.environment["LAB_APACHE_PRELOAD"] == \
        "LoadModule mpm_event_module modules/mod_mpm_event.so"
    assert "/proc/self/fd" not in plan.proxy_plan.start.environment["LAB_DIRS"]  # ErrorLog /proc/self/fd/2
    assert [row.what for row in plan.mapping].count("proxy image") == 1


def test_an_official_layout_config_that_loads_its_mpm_gets_nothing_preloaded(tmp_path):
    from lab.reproduce import read_bundle
    from lab.reproduce.labmap import reproduction

    conf = tmp_path / "usr" / "local" / "apache2" / "conf"
    conf.mkdir(parents=True)
    (conf / "httpd.conf").write_text('ServerRoot "/usr/local/apache2"\nListen 80\n'
                                     "LoadModule mpm_event_module modules/mod_mpm_event.so\n"
                                     "ProxyPass / http://bitbucket:7990/\n")
    plan = reproduction(read_bundle([tmp_path]), "official")
    assert plan.topology.proxy is not None and plan.topology.proxy.image == "apache-official"
    assert plan.proxy_plan is not None and "LAB_APACHE_PRELOAD" not in plan.proxy_plan.start.environment


def test_a_debian_apache_bundle_runs_on_the_debian_image(tmp_path):
    from lab.reproduce import read_bundle
    from lab.reproduce.labmap import reproduction

    site = tmp_path / "etc" / "apache2" / "sites-enabled"
    site.mkdir(parents=True)
    (site / "bitbucket.conf").write_text("<VirtualHost *:80>\nProxyPass / http://bitbucket:7990/\n</VirtualHost>\n")
    plan = reproduction(read_bundle([tmp_path]), "debian")
    assert plan.topology.proxy is not None and plan.topology.proxy.image is None
    assert plan.proxy_plan is not None and "LAB_APACHE_PRELOAD" not in plan.proxy_plan.start.environment
