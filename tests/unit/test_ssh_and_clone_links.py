"""Issue 12: clone links as Bitbucket builds them, the SSH forced command, the lab's SSH
keys and the users' firewall — each next to the case that must be refused."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys

import pytest
import requests

from lab.sshkeys import make_ssh_keys
from lab.stub.config import ConfigError, settings_from_properties
from lab.stub.ssh import sshd_config
from lab.topology import load_topology
from tests.unit.stubutil import running_stub

REPO_REST = "/rest/api/1.0/projects/LAB/repos/repo"


def clone_links(stub, path: str = REPO_REST, base: str = "") -> dict[str, str]:
    response = requests.get(f"http://127.0.0.1:{stub.ports[0]}{base}{path}", auth=("admin", "admin"), timeout=10)
    assert response.status_code == 200, response.text
    return {link["name"]: link["href"] for link in response.json()["links"]["clone"]}


def test_clone_links_follow_the_base_url_and_plugin_ssh_port_when_no_ssh_base_url_is_set(tmp_path):
    properties = ("server.port=0\nserver.context-path=/bitbucket\nplugin.ssh.port=7997\n"
                  "setup.baseUrl=https://git.acme.example/bitbucket\n")
    with running_stub(tmp_path, properties) as stub:
        links = clone_links(stub, base="/bitbucket")
    assert links == {"http": "https://git.acme.example/bitbucket/scm/lab/repo.git",
                     "ssh": "ssh://git@git.acme.example:7997/lab/repo.git"}


def test_clone_links_use_plugin_ssh_baseurl_when_it_is_set(tmp_path):
    properties = "server.port=0\nsetup.baseUrl=https://git.acme.example\nplugin.ssh.baseurl=ssh://git@ssh.acme.example\n"
    with running_stub(tmp_path, properties) as stub:
        assert clone_links(stub)["ssh"] == "ssh://git@ssh.acme.example/lab/repo.git"


def test_without_a_base_url_the_links_use_what_the_connector_implies(tmp_path):
    with running_stub(tmp_path, "server.port=0\nserver.proxy-name=bitbucket.lab.test\nserver.proxy-port=443\n"
                      "server.scheme=https\n") as stub:
        links = clone_links(stub)
    assert links == {"http": "https://bitbucket.lab.test/scm/lab/repo.git",
                     "ssh": "ssh://git@bitbucket.lab.test:7999/lab/repo.git"}


def test_the_repository_rest_needs_credentials_and_an_existing_repository(tmp_path):
    with running_stub(tmp_path, "server.port=0\n") as stub:
        base = f"http://127.0.0.1:{stub.ports[0]}/rest/api/1.0/projects"
        assert requests.get(f"{base}/LAB/repos/repo", timeout=10).status_code == 401
        assert requests.get(f"{base}/LAB/repos/nope", auth=("admin", "admin"), timeout=10).status_code == 404


def test_every_answer_names_the_node_that_gave_it(tmp_path):
    with running_stub(tmp_path, "server.port=0\n") as stub:
        response = requests.get(f"http://127.0.0.1:{stub.ports[0]}/status", timeout=10)
    assert response.headers["X-Lab-Node"] == socket.gethostname()


@pytest.mark.parametrize("value", ["git@host:7999", "http://host", "ssh://host:port"])
def test_an_ssh_base_url_that_is_not_ssh_stops_the_stub_naming_the_key(tmp_path, value):
    with pytest.raises(ConfigError, match="plugin.ssh.baseurl"):
        settings_from_properties({"plugin.ssh.baseurl": value}, tmp_path)


def test_sshd_allows_public_keys_of_git_only_and_forces_the_git_command(tmp_path):
    settings = settings_from_properties({"plugin.ssh.port": "7999"}, tmp_path)
    config = sshd_config(settings, tmp_path, tmp_path / "host", tmp_path / "keys")
    assert "Port 7999" in config and "AllowUsers git" in config
    assert "PasswordAuthentication no" in config and "KbdInteractiveAuthentication no" in config
    assert "ForceCommand " in config and "lab.stub.ssh_command" in config


def run_forced_command(home, original: str) -> subprocess.CompletedProcess[bytes]:
    """As sshd runs it; the client's first line is a flush packet (it wants nothing)."""
    env = {"PATH": os.environ["PATH"], "BITBUCKET_HOME": str(home), "SSH_ORIGINAL_COMMAND": original,
           "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-m", "lab.stub.ssh_command"], env=env, input=b"0000",
                          capture_output=True, timeout=30)


def test_the_forced_command_serves_git_upload_pack_for_a_repository_http_serves(tmp_path):
    with running_stub(tmp_path, "server.port=0\n"):  # seeds the repositories
        pass
    served = run_forced_command(tmp_path, "git-upload-pack '/lab/repo.git'")
    assert served.returncode == 0, served.stderr
    assert b"refs/heads/main" in served.stdout and b"refs/heads/feature/x" in served.stdout


@pytest.mark.parametrize("original, refusal", [
    ("", b"shell access is not supported"),
    ("bash -c id", b"shell access is not supported"),
    ("git-upload-pack '/lab/nope.git'", b"Repository not found"),
    ("git-upload-pack '/lab/../../etc'", b"Repository not found"),
])
def test_the_forced_command_refuses_shells_and_unknown_repositories(tmp_path, original, refusal):
    with running_stub(tmp_path, "server.port=0\n"):
        pass
    refused = run_forced_command(tmp_path, original)
    assert refused.returncode == 1 and refusal in refused.stderr


def test_the_lab_pins_bitbucket_host_key_and_keeps_private_keys_private(tmp_path):
    keys = make_ssh_keys(tmp_path)
    host_public = (keys.directory / "host_ed25519.pub").read_text().split()[:2]
    pinned = [line.split()[1:3] for line in keys.known_hosts.read_text().splitlines() if not line.startswith("#")]
    assert pinned == [host_public]
    for private in (keys.host_key, keys.user_key):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
        assert private.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    command = keys.ssh_command(12345)
    assert "StrictHostKeyChecking=yes" in command and "lab.socks_connect 12345 %h %p" in command
    assert "StrictHostKeyChecking=no" not in command


def test_behind_a_proxy_users_reach_bitbucket_on_its_ssh_port_only():
    allowed = load_topology("nginx-https").gateway_allows("outside")
    assert "ssh.bitbucket.lab.test:7999" in allowed and "bitbucket.lab.test" in allowed
    assert not any(name.startswith("bitbucket:") or name == "bitbucket" for name in allowed)
    assert "ssh.bitbucket.lab.test" not in allowed  # only its port, never the whole host


def test_a_cluster_has_two_bitbucket_nodes_and_one_front_door():
    topology = load_topology("haproxy-https-cluster")
    assert topology.clustered and [node.name for node in topology.bitbucket_nodes] == ["bitbucket-1", "bitbucket-2"]
    assert not load_topology("haproxy-https").clustered


def test_socks_connect_without_its_arguments_says_how_in_one_line():
    result = subprocess.run([sys.executable, "-m", "lab.socks_connect"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0 and "usage" in result.stderr
