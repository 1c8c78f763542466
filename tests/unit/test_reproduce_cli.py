"""`reproduce` refuses what it cannot reproduce in one line, exit 2, before any container."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SITE = """server {
    listen 443 ssl;
    server_name git.acme.example;
    ssl_certificate /etc/nginx/ssl/git.acme.example.crt;
    ssl_certificate_key /etc/nginx/ssl/git.acme.example.key;
    location / { proxy_pass http://bitbucket.corp.acme.example:7990; }
}
"""
VHOST = """<VirtualHost *:443>
    ServerName git.acme.example
    SSLEngine on
    SSLCertificateFile /etc/ssl/certs/git.pem
    SSLCertificateKeyFile /etc/ssl/private/git.key
    ProxyPass / http://bitbucket.corp.acme.example:7990/
</VirtualHost>
"""


def reproduce(*paths: Path, json_output: bool = False) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "lab", "reproduce", *map(str, paths), "--no-keep"]
    return subprocess.run(args + (["--json"] if json_output else []), capture_output=True, text=True, timeout=60,
                          env={**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"})


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    return result.stderr


def test_a_bundle_with_neither_proxy_config_nor_properties_is_refused(tmp_path):
    (tmp_path / "README.txt").write_text("Hi, we get 413 on push. Regards, Acme\n")
    assert "nothing to reproduce" in one_line_error(reproduce(tmp_path))


def test_two_proxies_of_different_kinds_are_refused(tmp_path):
    (tmp_path / "bitbucket.conf").write_text(SITE)
    (tmp_path / "bitbucket-ssl.conf").write_text(VHOST)
    message = one_line_error(reproduce(tmp_path))
    assert "nginx" in message and "Apache" in message


def test_a_directive_whose_module_debian_lacks_is_named_with_its_module(tmp_path):
    (tmp_path / "bitbucket-ssl.conf").write_text(VHOST.replace("    ProxyPass", "    JkMount /* worker1\n    ProxyPass"))
    message = one_line_error(reproduce(tmp_path))
    assert "JkMount" in message and "mod_jk" in message and "bitbucket-ssl.conf:6" in message


def test_a_binary_file_is_refused_naming_it(tmp_path):
    (tmp_path / "bitbucket.conf").write_text(SITE)
    (tmp_path / "screenshot.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    assert "screenshot.png" in one_line_error(reproduce(tmp_path))


def test_a_private_key_in_the_bundle_is_refused(tmp_path):
    (tmp_path / "bitbucket.conf").write_text(SITE)
    (tmp_path / "git.key").write_text("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n")
    assert "private key" in one_line_error(reproduce(tmp_path))


def test_a_missing_path_is_refused(tmp_path):
    assert str(tmp_path / "nope") in one_line_error(reproduce(tmp_path / "nope"))


def test_an_error_with_json_is_a_json_object_too(tmp_path):
    (tmp_path / "README.txt").write_text("nothing here\n")
    result = reproduce(tmp_path, json_output=True)
    assert result.returncode == 2
    assert "nothing to reproduce" in json.loads(result.stdout)["error"]


def test_a_proxy_with_two_equally_likely_bitbucket_upstreams_is_refused_naming_them_and_the_option(tmp_path):
    (tmp_path / "tools.conf").write_text("server {\n    listen 80;\n    location /a { proxy_pass http://10.0.0.5:8080; }\n"
                                         "    location /b { proxy_pass http://10.0.0.6:8081; }\n}\n")
    message = one_line_error(reproduce(tmp_path))
    assert "10.0.0.5:8080" in message and "10.0.0.6:8081" in message and "--bitbucket-upstream" in message


def test_a_malformed_bitbucket_upstream_option_is_refused_before_anything_starts(tmp_path):
    (tmp_path / "site.conf").write_text("server {\n    listen 80;\n    location / { proxy_pass http://b:7990; }\n}\n")
    args = [sys.executable, "-m", "lab", "reproduce", str(tmp_path), "--no-keep", "--bitbucket-upstream", "b"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert "give HOST:PORT" in one_line_error(result)
