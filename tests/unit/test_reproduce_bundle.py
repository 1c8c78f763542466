"""Collecting a bundle: each file's kind comes from its content, bad input stops with one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme

from lab.errors import LabError
from lab.reproduce import read_bundle
from lab.reproduce.bundle import classify, collect_bundle, proxy_kind

NGINX_SITE = "server {\n    listen 80;\n    location / {\n        proxy_pass http://bb:7990;\n    }\n}\n"
APACHE_VHOST = "<VirtualHost *:80>\n    ServerName git.acme.example\n    ProxyPass / http://bb:7990/\n</VirtualHost>\n"
HAPROXY_CFG = "frontend www\n    bind :80\n    default_backend bb\n\nbackend bb\n    server s1 bb:7990 check\n"
PROPERTIES = "# Bitbucket\nserver.proxy-name=git.acme.example\nserver.proxy-port=443\nserver.scheme=https\n"
NOTES = "Customer says: pushes fail with 413 since Monday.\nThey use nginx on Ubuntu 22.04.\n"


def test_a_site_file_without_extension_is_recognised_as_nginx_by_its_content(tmp_path):
    assert kinds(tmp_path, {"sites-enabled/bitbucket": NGINX_SITE}) == {"sites-enabled/bitbucket": "nginx"}


def test_free_text_that_mentions_nginx_is_text(tmp_path):
    assert kinds(tmp_path, {"nginx.conf": NOTES}) == {"nginx.conf": "text"}


@pytest.mark.parametrize(("text", "kind"), [
    (APACHE_VHOST, "apache"), (HAPROXY_CFG, "haproxy"), (PROPERTIES, "properties"),
    ("nginx version: nginx/1.18.0 (Ubuntu)\n", "version"),
    ("Server version: Apache/2.4.62 (Debian)\nServer built:   2024-07-17T18:57:09\n", "version"),
    ("HAProxy version 2.6.12-1+deb12u1 2023/12/16 - https://haproxy.org/\n", "version"),
    ("upstream bb {\n  server 10.0.0.1:7990;\n}\n", "nginx"),
    ("global\n    daemon\n\ndefaults\n    mode http\n", "haproxy"),
])
def test_each_kind_is_recognised_whatever_the_file_is_called(tmp_path, text, kind):
    assert kinds(tmp_path, {"customer-file.txt": text}) == {"customer-file.txt": kind}


def test_key_value_lines_without_bitbucket_keys_are_not_properties():
    assert classify("color=blue\nsize=large\n") == "text"


def test_a_pem_certificate_is_a_certificate_and_a_private_key_stops_the_reading(tmp_path):
    leaf = trustme.CA().issue_cert("git.acme.example")
    assert kinds(tmp_path / "a", {"git.acme.example.crt": leaf.cert_chain_pems[0].bytes().decode()}) == {
        "git.acme.example.crt": "certificate"}
    write(tmp_path / "b", {"ssl/git.acme.example.key": leaf.private_key_pem.bytes().decode()})
    with pytest.raises(LabError, match=r"^ssl/git.acme.example.key holds a private key: ask the customer for "
                                       r"public certificates only; the lab makes its own keys$"):
        collect_bundle([tmp_path / "b"])


def test_a_binary_file_is_refused_as_not_a_config(tmp_path):
    (tmp_path / "bundle.tar.gz").write_bytes(b"\x1f\x8b\x08\x00\x00\x00")
    with pytest.raises(LabError, match=r"^bundle.tar.gz: binary file, not a config$"):
        collect_bundle([tmp_path])


def test_a_file_that_is_not_utf8_is_refused_naming_its_line_not_called_binary(tmp_path):
    (tmp_path / "site").write_bytes(b"server_name caf\xe9.example;\n")
    with pytest.raises(LabError, match=r"^site: not valid UTF-8 \(line 1\)"):
        collect_bundle([tmp_path])


def test_an_unreadable_file_is_named_in_one_line(tmp_path, monkeypatch):
    write(tmp_path, {"nginx.conf": NGINX_SITE})

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(LabError, match=r"^nginx.conf: cannot read: Permission denied$"):
        collect_bundle([tmp_path])


def test_a_missing_path_is_named(tmp_path):
    with pytest.raises(LabError, match="no such file or directory"):
        collect_bundle([tmp_path / "absent"])


def test_hidden_directories_are_skipped(tmp_path):
    write(tmp_path, {"bitbucket": NGINX_SITE})
    (tmp_path / ".git" / "objects").mkdir(parents=True)
    (tmp_path / ".git" / "objects" / "ab").write_bytes(b"\0binary")
    assert [file.relpath for file in collect_bundle([tmp_path])] == ["bitbucket"]


def test_a_mirrored_bundle_keeps_absolute_paths_even_when_given_its_etc_directory(tmp_path):
    write(tmp_path, {"etc/nginx/nginx.conf": "events {}\nhttp {}\n", "notes.txt": NOTES})
    whole = {file.relpath: file.mirrored_path for file in collect_bundle([tmp_path])}
    only_etc = {file.relpath: file.mirrored_path for file in collect_bundle([tmp_path / "etc"])}
    assert whole == {"etc/nginx/nginx.conf": "/etc/nginx/nginx.conf", "notes.txt": None}
    assert only_etc == {"etc/nginx/nginx.conf": "/etc/nginx/nginx.conf"}


def test_loose_files_are_named_by_their_base_name(tmp_path):
    write(tmp_path, {"a/site": NGINX_SITE, "b/bitbucket.properties": PROPERTIES})
    files = collect_bundle([tmp_path / "a" / "site", tmp_path / "b" / "bitbucket.properties"])
    assert [(file.relpath, file.kind) for file in files] == [("site", "nginx"), ("bitbucket.properties", "properties")]


def test_a_bundle_with_no_proxy_config_and_no_properties_has_nothing_to_reproduce(tmp_path):
    write(tmp_path, {"notes.txt": NOTES})
    with pytest.raises(LabError, match=r"^nothing to reproduce in .*: no nginx, Apache or HAProxy config and none "
                                       r"of Bitbucket's settings \(bitbucket.properties, a compose file, Helm values, "
                                       r"server.xml\)$"):
        read_bundle([tmp_path])


def test_properties_alone_are_something_to_reproduce(tmp_path):
    write(tmp_path, {"bitbucket.properties": PROPERTIES})
    assert proxy_kind(collect_bundle([tmp_path]), "bundle") is None


def test_two_proxy_kinds_in_one_bundle_are_refused(tmp_path):
    write(tmp_path, {"apache/bitbucket.conf": APACHE_VHOST, "nginx/bitbucket": NGINX_SITE})
    with pytest.raises(LabError, match=r"^customer-42 holds both an Apache config \(apache/bitbucket.conf\) and an nginx "
                                       r"config \(nginx/bitbucket\): send one proxy's files per reproduction$"):
        proxy_kind(collect_bundle([tmp_path]), "customer-42")


def test_one_proxy_kind_with_properties_and_notes_is_accepted(tmp_path):
    write(tmp_path, {"nginx/bitbucket": NGINX_SITE, "bitbucket.properties": PROPERTIES, "notes.txt": NOTES})
    assert proxy_kind(collect_bundle([tmp_path]), "customer-42") == "nginx"


def kinds(directory: Path, files: dict[str, str]) -> dict[str, str]:
    write(directory, files)
    return {file.relpath: file.kind for file in collect_bundle([directory])}


def write(directory: Path, files: dict[str, str]) -> None:
    for relpath, text in files.items():
        (directory / relpath).parent.mkdir(parents=True, exist_ok=True)
        (directory / relpath).write_text(text)
