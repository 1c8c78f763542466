"""Copy-paste commands that reach a running topology from the host as a user would."""

from __future__ import annotations

import base64
import hashlib
import shlex
from pathlib import Path

import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from lab.checks import CheckTarget
from lab.checks.ssh import ssh_link
from lab.runtime import RunningTopology
from lab.targets import check_target


def user_commands(running: RunningTopology) -> str:
    """git clone, curl and Chromium commands through the users' gateway, plus CA and login."""
    target = check_target(running)
    port, proxy = running.gateway_ports["outside"], target.users.proxy_url
    ca = running.tls.ca.resolve()
    tls = target.parts.scheme == "https"
    git_env = f"GIT_SSL_CAINFO={shlex.quote(str(ca))} " if tls else ""
    curl_ca = f" --cacert {shlex.quote(str(ca))}" if tls else ""
    lines = [
        f"  credentials:  {target.username} / {target.password}",
        f"  lab CA:       {ca}" if tls else "  lab CA:       (no TLS on the public URL)",
        f"  SOCKS proxy:  {proxy}",
        "",
        "  # clone through the topology, trusting the lab CA alone",
        f"  {git_env}git -c http.proxy={proxy} -c credential.helper= clone {target.git_url()}",
        *_ssh_lines(running, target),
        "",
        "  # ask Bitbucket for its status",
        f"  curl --proxy {proxy}{curl_ca} {target.url('/status')}",
        "",
        "  # browse it (a throwaway Chromium profile, the lab's leaf key trusted)",
        "  " + chromium_command(running, port),
    ]
    return "\n".join(lines)


def _ssh_lines(running: RunningTopology, target: CheckTarget) -> list[str]:
    """git over SSH to the link Bitbucket gives users, with the run's key and pinned host key."""
    if not running.ssh_keys.host_key.is_file():
        return []
    try:
        link = ssh_link(target)
    except requests.RequestException:
        link = ""
    if not link:
        return ["", "  # (no SSH clone link: Bitbucket's repository page did not answer)"]
    command = running.ssh_keys.ssh_command(running.gateway_ports["outside"])
    return ["", "  # clone over SSH: the lab's key, Bitbucket's host key pinned, through the same gateway",
            f"  GIT_SSH_COMMAND={shlex.quote(command)} git clone {link}"]


def chromium_command(running: RunningTopology, socks_port: int) -> str:
    args = ["chromium", "--user-data-dir=/tmp/bitbucket-lab-chromium", "--no-first-run",
            f"--proxy-server=socks5://127.0.0.1:{socks_port}"]
    if running.public_url.startswith("https://"):
        args.append(f"--ignore-certificate-errors-spki-list={_leaf_spki_hash(running.tls.directory / 'cert.pem')}")
    args.append(running.public_url + "/")
    return " ".join(shlex.quote(arg) for arg in args)


def _leaf_spki_hash(cert_path: Path) -> str:
    """Chromium's pin format: base64(sha256(SubjectPublicKeyInfo))."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()
