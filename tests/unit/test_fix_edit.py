"""The fix editor changes the customer's text minimally and in their style: in place when the
directive already governs Bitbucket, one inserted line otherwise, nothing when it cannot be
done safely — and never touches a line it was not asked to."""

from __future__ import annotations

from lab.fix.edit import (AddFlag, Anchor, SetDirective, SetSetting, Status, StripUriPart, apply_edits,
                          unified_diff)

NGINX_SITE = """server {
\tlisten 443 ssl;
\tserver_name git.example.org;
\tlocation /bitbucket/ {
\t\tproxy_pass http://bitbucket:7990/bitbucket/;
\t}
}
"""


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in unified_diff("f", before, after).splitlines()
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_an_nginx_body_limit_is_inserted_in_the_server_block_with_the_files_own_tabs():
    result = apply_edits(NGINX_SITE, "nginx", [SetDirective("client_max_body_size", "0", "server")], Anchor(5))
    assert result.outcomes[0].status is Status.APPLIED
    assert changed_lines(NGINX_SITE, result.text) == ["+\tclient_max_body_size 0;"]
    assert result.text.splitlines()[3] == "\tclient_max_body_size 0;"  # after server_name, before the location


def test_an_existing_nginx_limit_in_the_location_is_changed_in_place_keeping_its_comment():
    site = NGINX_SITE.replace("\t\tproxy_pass", "\t\tclient_max_body_size 10m;  # uploads\n\t\tproxy_pass")
    result = apply_edits(site, "nginx", [SetDirective("client_max_body_size", "0", "server")], Anchor(6))
    assert changed_lines(site, result.text) == ["-\t\tclient_max_body_size 10m;  # uploads",
                                                "+\t\tclient_max_body_size 0;  # uploads"]


def test_a_limit_already_right_is_satisfied_and_the_text_is_unchanged():
    site = NGINX_SITE.replace("\tserver_name", "\tclient_max_body_size 0;\n\tserver_name")
    result = apply_edits(site, "nginx", [SetDirective("client_max_body_size", "0", "server")], Anchor(6))
    assert result.outcomes[0].status is Status.SATISFIED and result.text == site
    assert not result.applied and result.complete


def test_applying_the_same_edit_twice_changes_nothing_the_second_time():
    edit = SetDirective("client_max_body_size", "0", "server")
    once = apply_edits(NGINX_SITE, "nginx", [edit], Anchor(5))
    twice = apply_edits(once.text, "nginx", [edit], Anchor(6))
    assert once.applied and not twice.applied and twice.text == once.text


def test_crlf_line_endings_and_a_missing_final_newline_are_kept():
    site = NGINX_SITE.rstrip("\n").replace("\n", "\r\n")
    result = apply_edits(site, "nginx", [SetDirective("client_max_body_size", "0", "server")], Anchor(5))
    assert "\tclient_max_body_size 0;\r\n" in result.text
    assert result.text.count("\r\n") == site.count("\r\n") + 1 and not result.text.endswith("\n")


def test_the_uri_part_equal_to_the_location_prefix_is_stripped_from_proxy_pass():
    result = apply_edits(NGINX_SITE, "nginx", [StripUriPart()], Anchor(5))
    assert changed_lines(NGINX_SITE, result.text) == ["-\t\tproxy_pass http://bitbucket:7990/bitbucket/;",
                                                      "+\t\tproxy_pass http://bitbucket:7990;"]


def test_a_uri_part_that_differs_from_the_prefix_is_not_stripped_because_the_path_would_change():
    site = NGINX_SITE.replace("7990/bitbucket/;", "7990/;")
    result = apply_edits(site, "nginx", [StripUriPart()], Anchor(5))
    assert result.outcomes[0].status is Status.NOT_APPLICABLE and result.text == site
    assert "context path" in result.outcomes[0].reason


def test_a_proxy_pass_with_a_variable_is_left_for_a_human():
    site = NGINX_SITE.replace("http://bitbucket:7990/bitbucket/", "$upstream/bitbucket/")
    result = apply_edits(site, "nginx", [StripUriPart()], Anchor(5))
    assert result.outcomes[0].status is Status.NOT_APPLICABLE and result.text == site


def test_an_edit_without_an_anchor_in_the_file_is_not_applicable():
    result = apply_edits(NGINX_SITE, "nginx", [SetDirective("proxy_read_timeout", "900", "location")], Anchor(99))
    assert result.outcomes[0].status is Status.NOT_APPLICABLE and result.text == NGINX_SITE


APACHE_VHOST = """<VirtualHost *:443>
    ServerName git.example.org
    SSLProxyEngine on
    ProxyPass /bitbucket https://bitbucket:8443/bitbucket
    ProxyPassReverse /bitbucket https://bitbucket:8443/bitbucket
</VirtualHost>
"""


def test_apache_nocanon_goes_right_after_the_url_of_the_routing_proxypass():
    result = apply_edits(APACHE_VHOST, "apache", [AddFlag("nocanon")], Anchor(4))
    assert changed_lines(APACHE_VHOST, result.text)[1] == "+    ProxyPass /bitbucket https://bitbucket:8443/bitbucket nocanon"
    assert apply_edits(result.text, "apache", [AddFlag("nocanon")], Anchor(4)).outcomes[0].status is Status.SATISFIED


def test_an_apache_vhost_directive_is_added_inside_the_virtualhost_beside_its_settings():
    result = apply_edits(APACHE_VHOST, "apache", [SetDirective("AllowEncodedSlashes", "NoDecode", "vhost")], Anchor(4))
    assert changed_lines(APACHE_VHOST, result.text) == ["+    AllowEncodedSlashes NoDecode"]
    assert result.text.splitlines()[3] == "    AllowEncodedSlashes NoDecode"


def test_apache_directive_names_match_case_insensitively_and_change_in_place():
    vhost = APACHE_VHOST.replace("    SSLProxyEngine on\n", "    SSLProxyEngine on\n    sslproxyverifydepth 1\n")
    result = apply_edits(vhost, "apache", [SetDirective("SSLProxyVerifyDepth", "10", "vhost")], Anchor(5))
    assert changed_lines(vhost, result.text) == ["-    sslproxyverifydepth 1", "+    sslproxyverifydepth 10"]


HAPROXY = """defaults
    mode http
    timeout server 30s

frontend www
    bind :443 ssl crt /etc/ssl/site.pem
    use_backend bitbucket

backend bitbucket
    balance roundrobin
    server node1 bitbucket:7990 check
"""


def test_an_haproxy_timeout_in_defaults_is_overridden_in_the_backend_not_changed_for_everyone():
    result = apply_edits(HAPROXY, "haproxy", [SetDirective("timeout server", "10m", "backend")], Anchor(11))
    assert changed_lines(HAPROXY, result.text) == ["+    timeout server 10m"]
    lines = result.text.splitlines()
    assert lines.index("    timeout server 10m") < lines.index("    balance roundrobin")  # before the servers
    assert "    timeout server 30s" in lines  # defaults untouched


def test_an_haproxy_frontend_scope_finds_the_frontend_that_routes_to_the_anchor_backend():
    result = apply_edits(HAPROXY, "haproxy", [SetDirective("timeout client", "10m", "frontend")], Anchor(11))
    lines = result.text.splitlines()
    assert lines.index("    timeout client 10m") < lines.index("backend bitbucket")
    assert lines.index("    timeout client 10m") > lines.index("frontend www")


def test_a_property_is_changed_in_place_or_appended_in_bitbucket_properties():
    text = "# proxy\nserver.proxy-name=git.example.org\nserver.proxy-port = 80\n"
    changed = apply_edits(text, "properties", [SetSetting("server.proxy-port", "443")], None)
    assert changed_lines(text, changed.text) == ["-server.proxy-port = 80", "+server.proxy-port = 443"]
    added = apply_edits(text, "properties", [SetSetting("server.secure", "true")], None)
    assert changed_lines(text, added.text) == ["+server.secure=true"]


def test_an_env_file_takes_the_official_images_variable_name():
    text = "SERVER_PROXY_NAME=git.example.org\nexport SERVER_SCHEME=http\n"
    result = apply_edits(text, "env", [SetSetting("server.scheme", "https")], None)
    assert changed_lines(text, result.text) == ["-export SERVER_SCHEME=http", "+export SERVER_SCHEME=https"]


COMPOSE_LIST = """services:
  db:
    image: postgres:15
    environment:
      - SERVER_SCHEME=ignored-belongs-to-db
  bitbucket:
    image: atlassian/bitbucket:8.19
    environment:
      - SERVER_PROXY_NAME=git.example.org
      - SERVER_SCHEME=http
"""


def test_a_compose_setting_changes_only_the_bitbucket_services_environment():
    result = apply_edits(COMPOSE_LIST, "compose", [SetSetting("server.scheme", "https")], None)
    assert changed_lines(COMPOSE_LIST, result.text) == ["-      - SERVER_SCHEME=http", "+      - SERVER_SCHEME=https"]


def test_a_compose_mapping_environment_gets_a_new_entry_in_mapping_form_with_quotes_kept():
    compose = ('services:\n  bitbucket:\n    image: "atlassian/bitbucket"\n    environment:\n'
               '      SERVER_PROXY_NAME: "git.example.org"\n')
    added = apply_edits(compose, "compose", [SetSetting("server.secure", "true")], None)
    assert changed_lines(compose, added.text) == ["+      SERVER_SECURE: true"]
    changed = apply_edits(compose, "compose", [SetSetting("server.proxy-name", "scm.example.org")], None)
    assert changed_lines(compose, changed.text) == ['-      SERVER_PROXY_NAME: "git.example.org"',
                                                    '+      SERVER_PROXY_NAME: "scm.example.org"']


def test_a_compose_file_without_bitbucket_is_not_edited():
    compose = "services:\n  web:\n    image: nginx\n    environment:\n      - A=1\n"
    result = apply_edits(compose, "compose", [SetSetting("server.secure", "true")], None)
    assert result.outcomes[0].status is Status.NOT_APPLICABLE and result.text == compose


def test_an_nginx_directive_sharing_its_line_with_another_is_changed_and_the_other_kept():
    site = ("server {\n    listen 443 ssl;\n    ssl_protocols TLSv1 TLSv1.2; ssl_ciphers DEFAULT:@SECLEVEL=0;\n"
            "    location / {\n        proxy_pass http://bitbucket:7990;\n    }\n}\n")
    result = apply_edits(site, "nginx", [SetDirective("ssl_protocols", "TLSv1.2 TLSv1.3", "server")], Anchor(5))
    assert result.text == site.replace("ssl_protocols TLSv1 TLSv1.2;", "ssl_protocols TLSv1.2 TLSv1.3;")
    assert result.outcomes[0].status is Status.APPLIED


CADDYFILE = """git.example.org {
\trequest_body {
\t\tmax_size 1MB
\t}
\thandle /bitbucket* {
\t\treverse_proxy bitbucket:7990 {
\t\t\ttransport http {
\t\t\t\tdial_timeout 5s
\t\t\t}
\t\t}
\t}
}

wiki.example.org {
\trequest_body {
\t\tmax_size 5MB
\t}
\treverse_proxy confluence:8090
}
"""


def test_a_caddy_body_limit_beside_the_route_is_lifted_in_place():
    result = apply_edits(CADDYFILE, "caddy", [SetDirective("max_size", "0", "request_body")], Anchor(6))
    assert result.outcomes[0].status is Status.APPLIED
    assert changed_lines(CADDYFILE, result.text) == ["-\t\tmax_size 1MB", "+\t\tmax_size 0"]


def test_a_caddy_timeout_goes_into_the_routes_own_transport_block_indented_as_its_siblings():
    result = apply_edits(CADDYFILE, "caddy", [SetDirective("response_header_timeout", "10m", "transport")], Anchor(6))
    assert changed_lines(CADDYFILE, result.text) == ["+\t\t\t\tresponse_header_timeout 10m"]
    lines = result.text.splitlines()
    assert lines.index("\t\t\t\tresponse_header_timeout 10m") == lines.index("\t\t\t\tdial_timeout 5s") + 1


def test_a_caddy_site_without_a_body_limit_of_its_own_is_not_applicable_and_another_sites_limit_is_left_alone():
    site = CADDYFILE.replace("\trequest_body {\n\t\tmax_size 1MB\n\t}\n", "", 1)
    result = apply_edits(site, "caddy", [SetDirective("max_size", "0", "request_body")], Anchor(3))
    assert result.outcomes[0].status is Status.NOT_APPLICABLE and result.text == site
    assert "no `request_body` block governs" in result.outcomes[0].reason


def test_a_caddy_route_without_a_transport_block_gets_no_timeout_invented():
    site = CADDYFILE.replace("\t\treverse_proxy bitbucket:7990 {\n\t\t\ttransport http {\n\t\t\t\tdial_timeout 5s\n"
                             "\t\t\t}\n\t\t}\n", "\t\treverse_proxy bitbucket:7990\n")
    result = apply_edits(site, "caddy", [SetDirective("response_header_timeout", "10m", "transport")], Anchor(6))
    assert result.outcomes[0].status is Status.NOT_APPLICABLE and result.text == site


def test_a_caddyfile_with_a_brace_left_open_is_not_edited():
    broken = CADDYFILE.rsplit("}", 1)[0]
    result = apply_edits(broken, "caddy", [SetDirective("max_size", "0", "request_body")], Anchor(6))
    assert result.outcomes[0].status is Status.NOT_APPLICABLE and "never closed" in result.outcomes[0].reason


NGINX_CLUSTER = """upstream jira {
    server jira-1:8080;
}
upstream bitbucket {
    server bitbucket-1:7990 max_fails=1;
    server bitbucket-2:7990 max_fails=1;
}
server {
    listen 443 ssl;
    location / {
        proxy_pass http://bitbucket;
    }
}
"""


def test_nginx_affinity_goes_into_the_upstream_group_the_routes_proxy_pass_names():
    result = apply_edits(NGINX_CLUSTER, "nginx", [SetDirective("ip_hash", "", "upstream")], Anchor(11))
    assert changed_lines(NGINX_CLUSTER, result.text) == ["+    ip_hash;"]
    lines = result.text.splitlines()
    assert lines.index("    ip_hash;") == lines.index("upstream bitbucket {") + 3  # after its servers, not Jira's
    again = apply_edits(result.text, "nginx", [SetDirective("ip_hash", "", "upstream")], Anchor(12))
    assert again.outcomes[0].status is Status.SATISFIED and again.text == result.text


def test_nginx_affinity_is_left_for_a_human_when_the_upstream_balances_otherwise_or_there_is_no_group():
    least = NGINX_CLUSTER.replace("upstream bitbucket {\n", "upstream bitbucket {\n    least_conn;\n")
    refused = apply_edits(least, "nginx", [SetDirective("ip_hash", "", "upstream")], Anchor(12))
    assert refused.outcomes[0].status is Status.NOT_APPLICABLE and "least_conn" in refused.outcomes[0].reason
    direct = NGINX_CLUSTER.replace("http://bitbucket;", "http://bitbucket-1:7990;")
    alone = apply_edits(direct, "nginx", [SetDirective("ip_hash", "", "upstream")], Anchor(11))
    assert alone.outcomes[0].status is Status.NOT_APPLICABLE and alone.text == direct


def test_caddy_affinity_is_a_cookie_policy_in_the_routes_own_block_and_a_one_line_route_is_left_alone():
    site = "git.example.org {\n\treverse_proxy bitbucket-1:7990 bitbucket-2:7990 {\n\t\tlb_policy round_robin\n\t}\n}\n"
    result = apply_edits(site, "caddy", [SetDirective("lb_policy", "cookie", "reverse_proxy")], Anchor(2))
    assert changed_lines(site, result.text) == ["-\t\tlb_policy round_robin", "+\t\tlb_policy cookie"]
    one_line = "git.example.org {\n\treverse_proxy bitbucket-1:7990 bitbucket-2:7990\n}\n"
    alone = apply_edits(one_line, "caddy", [SetDirective("lb_policy", "cookie", "reverse_proxy")], Anchor(2))
    assert alone.outcomes[0].status is Status.NOT_APPLICABLE and "give it a block by hand" in alone.outcomes[0].reason
