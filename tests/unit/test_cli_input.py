"""The CLI's answers to bad input: one line, exit 2, JSON when asked — before any Docker."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lab.topology import catalog


def lab(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env})


@pytest.mark.parametrize("args,message", [
    (["check", "--proxy-config", "/nonexistent/site.conf"], "--proxy-config /nonexistent/site.conf: no such file"),
    (["check", "--topology", "direct-http", "--proxy-config", __file__], "topology direct-http has no proxy"),
    (["check", "--topology", "nowhere"], "unknown topology 'nowhere'"),
    (["check", "--topology", "../lab/topologies/nginx-https"], "unknown topology '../lab/topologies/nginx-https'"),
    (["export", "--topology", "/tmp/x"], "unknown topology '/tmp/x'"),
    (["check", "--public-url", "notaurl"], "public URL 'notaurl' is not an http:// or https:// URL"),
    (["check", "--public-url", "ftp://x"], "public URL 'ftp://x' is not an http:// or https:// URL"),
    (["check", "--public-url", "https://"], "public URL 'https://' has no usable host name"),
    (["check", "--topology-file", "/nonexistent.toml"], "--topology-file /nonexistent.toml: cannot read it"),
    (["images", "build", "nope"], "unknown image 'nope'"),
    (["check", "--all", "--report", "x.html"], "--report writes one topology's report"),
    (["check", "--fix"], "--fix patches the files you pass: give --proxy-config and/or --properties"),
    (["check", "--fix-out", "/tmp/x"], "--fix-out goes with --fix"),
    (["check", "--topology", "traefik-https", "--proxy-config", __file__, "--fix"],
     "--fix reads the files of nginx, apache, haproxy, caddy; traefik-https runs traefik"),
])
def test_bad_input_gives_one_line_and_exit_2(args, message):
    result = lab(*args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == "" and result.stderr.strip().count("\n") == 0
    assert message in result.stderr


def test_bad_input_with_json_still_prints_a_json_object_with_the_error():
    result = lab("check", "--json", "--topology", "nowhere")
    assert result.returncode == 2
    assert "unknown topology 'nowhere'" in json.loads(result.stdout)["error"]


def test_the_cli_without_docker_says_so_in_one_line_and_exits_2():
    result = lab("check", "--topology", "direct-http", DOCKER_HOST="unix:///nonexistent/docker.sock")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "no Docker engine answers" in result.stderr


def test_list_prints_the_catalog_one_line_each():
    lines = lab("list").stdout.splitlines()
    assert [line.split()[0] for line in lines] == catalog()


def test_up_help_lists_the_options():
    text = lab("up", "--help").stdout
    for option in ("--topology", "--topology-file", "--proxy-config", "--properties", "--public-url",
                   "--tls-variant", "--keep", "--no-keep"):
        assert option in text


def test_every_positive_check_has_a_failing_twin_in_the_failure_catalog():
    from lab.checks import CHECK_IDS
    from tests.e2e.test_failure_catalog import FAILURES

    caught = {check_id for failure in FAILURES.values() for check_id in failure.fails}
    assert set(CHECK_IDS) - caught == set()
