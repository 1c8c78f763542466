"""Issue 28, without Docker: a bundle's links, its text encodings, and what --save keeps.

A link is followed only while it stays in the bundle; one that leads out is refused before
anything is opened, naming the link and its target. Each refusal has a control beside it.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.errors import LabError
from lab.hostnames import ascii_host
from lab.reproduce.bundle import collect_bundle, read_text
from lab.reproduce.cases import save_case
from lab.proxies.nginx.reader import parse_file, parse_nginx

SITE = """server {
    listen 80;
    server_name git.acme.example;
    include /etc/nginx/snippets/extra.conf;
    location / { proxy_pass http://bitbucket.corp.acme.example:7990; }
}
"""
SNIPPET = "client_max_body_size 0;\n"


def test_a_link_out_of_the_bundle_is_refused_before_it_is_read(tmp_path, monkeypatch):
    bundle = _bundle(tmp_path, {"etc/nginx/sites-enabled/bitbucket": SITE})
    (bundle / "etc/nginx/snippets").mkdir(parents=True)
    (bundle / "etc/nginx/snippets/extra.conf").symlink_to("/etc/passwd")
    opened = _spy_on_reads(monkeypatch)
    with pytest.raises(LabError, match=r"^etc/nginx/snippets/extra.conf is a link to /etc/passwd, outside the "
                                       r"bundle: the lab reads only the files sent; put the file itself in the "
                                       r"bundle \(tar -h packs files instead of links\)$"):
        collect_bundle([bundle])
    assert opened == []                 # refused while walking: not one file was opened


def test_a_link_that_stays_in_the_bundle_is_read_as_the_file_it_leads_to(tmp_path, monkeypatch):
    bundle = _bundle(tmp_path, {"etc/nginx/sites-enabled/bitbucket": SITE,
                                "etc/nginx/snippets/real-extra.conf": SNIPPET})
    (bundle / "etc/nginx/snippets/extra.conf").symlink_to("real-extra.conf")
    opened = _spy_on_reads(monkeypatch)
    files = {file.relpath: file for file in collect_bundle([bundle])}
    real = (bundle / "etc/nginx/snippets/real-extra.conf").resolve()
    assert files["etc/nginx/snippets/extra.conf"].path == real and str(real) in opened  # the spy sees reads
    monkeypatch.undo()
    setup = parse_nginx(list(files.values()))
    assert "etc/nginx/snippets/extra.conf" in {file.relpath for file in setup.files}


def test_an_absolute_link_means_the_file_the_bundle_mirrors_at_that_path(tmp_path):
    bundle = _bundle(tmp_path, {"etc/nginx/sites-available/bitbucket": SITE,
                                "etc/nginx/snippets/extra.conf": SNIPPET})
    (bundle / "etc/nginx/sites-enabled").mkdir()
    (bundle / "etc/nginx/sites-enabled/bitbucket").symlink_to("/etc/nginx/sites-available/bitbucket")
    files = {file.relpath: file for file in collect_bundle([bundle])}
    assert files["etc/nginx/sites-enabled/bitbucket"].path == (bundle / "etc/nginx/sites-available/bitbucket").resolve()


def test_a_relative_link_that_climbs_out_of_the_bundle_is_refused_naming_where_it_leads(tmp_path):
    outside = tmp_path / "elsewhere" / "secret.conf"
    outside.parent.mkdir()
    outside.write_text(SNIPPET)
    bundle = _bundle(tmp_path, {"site": SITE})
    (bundle / "extra.conf").symlink_to("../elsewhere/secret.conf")
    with pytest.raises(LabError, match=rf"^extra.conf is a link to \.\./elsewhere/secret.conf \({outside}\), "
                                       r"outside the bundle"):
        collect_bundle([bundle])


def test_a_linked_folder_is_read_inside_the_bundle_and_refused_outside_it(tmp_path):
    bundle = _bundle(tmp_path, {"etc/nginx/sites-available/bitbucket": SITE})
    (bundle / "etc/nginx/sites-enabled").symlink_to("sites-available")
    relpaths = {file.relpath for file in collect_bundle([bundle])}
    assert {"etc/nginx/sites-available/bitbucket", "etc/nginx/sites-enabled/bitbucket"} <= relpaths
    (bundle / "etc/ssl").symlink_to("/etc/ssl")
    with pytest.raises(LabError, match=r"^etc/ssl is a link to /etc/ssl, outside the bundle"):
        collect_bundle([bundle])


def test_a_loop_of_links_is_refused_in_one_line(tmp_path):
    bundle = _bundle(tmp_path, {"site": SITE})
    (bundle / "a.conf").symlink_to("b.conf")
    (bundle / "b.conf").symlink_to("a.conf")
    with pytest.raises(LabError, match=r"^a.conf is a link to b.conf, which leads round in a loop of links"):
        collect_bundle([bundle])


def test_a_link_inside_the_bundle_to_a_missing_file_says_it_is_not_in_the_bundle(tmp_path):
    bundle = _bundle(tmp_path, {"site": SITE})
    (bundle / "extra.conf").symlink_to("gone.conf")
    with pytest.raises(LabError, match=r"^extra.conf is a link to gone.conf \(.*\), which is not in the bundle"):
        collect_bundle([bundle])


def test_a_loose_file_that_is_a_link_out_of_its_folder_is_refused_and_a_plain_one_is_read(tmp_path):
    folder = tmp_path / "ticket"
    folder.mkdir()
    (folder / "site").write_text(SITE)
    (folder / "passwd").symlink_to("/etc/passwd")
    assert [file.relpath for file in collect_bundle([folder / "site"])] == ["site"]
    with pytest.raises(LabError, match=r"^passwd is a link to /etc/passwd, outside the bundle"):
        collect_bundle([folder / "site", folder / "passwd"])


def test_reproduce_refuses_a_link_out_of_the_bundle_in_one_line_with_exit_2(tmp_path):
    bundle = _bundle(tmp_path, {"site": SITE.replace("/etc/nginx/snippets/extra.conf", "extra.conf")})
    (bundle / "extra.conf").symlink_to("/etc/passwd")
    result = subprocess.run([sys.executable, "-m", "lab", "reproduce", str(bundle), "--no-keep"],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: extra.conf is a link to /etc/passwd, outside the bundle")


def test_a_saved_case_holds_regular_files_only_with_the_linked_file_s_bytes(tmp_path):
    bundle = _bundle(tmp_path, {"etc/nginx/sites-available/bitbucket": SITE,
                                "etc/nginx/snippets/extra.conf": SNIPPET})
    (bundle / "etc/nginx/sites-enabled").mkdir()
    (bundle / "etc/nginx/sites-enabled/bitbucket").symlink_to("../sites-available/bitbucket")
    case = save_case(tmp_path / "cases", "linked-site", collect_bundle([bundle]), "http://git.acme.example",
                     "nginx", [])
    saved = [path for path in (case / "bundle").rglob("*") if not path.is_dir()]
    assert saved and not any(path.is_symlink() for path in saved)
    assert (case / "bundle/etc/nginx/sites-enabled/bitbucket").read_text() == SITE


def test_a_config_that_is_not_utf8_is_refused_naming_the_line_of_the_first_bad_byte(tmp_path):
    (tmp_path / "site").write_bytes(b"server {\n    server_name caf\xe9.example;\n}\n")
    with pytest.raises(LabError, match=r"^site: not valid UTF-8 \(line 2\): the lab reads configs as UTF-8; "
                                       r"convert it \(iconv -f ISO-8859-1 -t UTF-8\) or leave it out of the bundle$"):
        collect_bundle([tmp_path])


def test_a_file_with_a_nul_byte_is_still_binary(tmp_path):
    (tmp_path / "screenshot.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(LabError, match=r"^screenshot.png: binary file, not a config$"):
        collect_bundle([tmp_path])


def test_a_unicode_server_name_is_read_as_written_and_named_in_ascii_where_a_host_is_needed(tmp_path):
    (tmp_path / "site").write_bytes(SITE.replace("git.acme.example", "bücher.example").encode("utf-8"))
    [file] = collect_bundle([tmp_path])
    assert "server_name bücher.example;" in read_text(file.path, file.relpath)
    names = [d.args for server in parse_file(file) for d in server.block or () if d.name == "server_name"]
    assert names == [("bücher.example",)]       # no mojibake through the nginx parser either
    assert ascii_host("bücher.example") == ascii_host("BÜCHER.example") == "xn--bcher-kva.example"


def _bundle(tmp_path: Path, files: dict[str, str]) -> Path:
    bundle = tmp_path / "bundle"
    for relpath, text in files.items():
        (bundle / relpath).parent.mkdir(parents=True, exist_ok=True)
        (bundle / relpath).write_text(text)
    bundle.mkdir(exist_ok=True)
    return bundle


def _spy_on_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every file the lab opens by any of the ways it reads one."""
    opened: list[str] = []
    real_read_bytes, real_open, real_io_open = Path.read_bytes, os.open, io.open

    def read_bytes(self: Path) -> bytes:
        opened.append(str(self))
        return real_read_bytes(self)

    def os_open(path, *args, **kwargs):
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    def io_open(file, *args, **kwargs):
        opened.append(str(file))
        return real_io_open(file, *args, **kwargs)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(io, "open", io_open)
    return opened
