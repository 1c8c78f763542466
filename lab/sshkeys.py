"""The lab's SSH keys: Bitbucket's host key and the lab user's key, made per run.

Written under ``certs/<topology>/ssh/`` beside the TLS files:

- ``host_ed25519`` (+``.pub``): Bitbucket's SSH host key (all nodes of a cluster share it,
  as Data Center shares ``shared/config/ssh-server-keys.pem``);
- ``id_ed25519`` (+``.pub``): the lab user's key, registered with Bitbucket;
- ``known_hosts``: the host key pinned for every name — the only key ssh accepts here,
  so a client never needs ``StrictHostKeyChecking=no``.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lab.pki import write_file

SSH_DIR = "ssh"


@dataclass(frozen=True)
class SshKeys:
    """Paths of one run's SSH keys."""

    directory: Path

    @property
    def host_key(self) -> Path:
        return self.directory / "host_ed25519"

    @property
    def user_key(self) -> Path:
        return self.directory / "id_ed25519"

    @property
    def user_public_key(self) -> Path:
        return self.directory / "id_ed25519.pub"

    @property
    def known_hosts(self) -> Path:
        return self.directory / "known_hosts"

    def ssh_command(self, socks_port: int | None) -> str:
        """``GIT_SSH_COMMAND`` for git: the lab key only, the pinned host key only, through
        the users' gateway when ``socks_port`` is given."""
        args = ["ssh", "-i", str(self.user_key), "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
                "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
                "-F", "/dev/null"]
        if socks_port is not None:
            args += ["-o", f"ProxyCommand={shlex.quote(sys.executable)} -m lab.socks_connect {socks_port} %h %p"]
        return " ".join(shlex.quote(arg) for arg in args)


def make_ssh_keys(certs_dir: Path) -> SshKeys:
    """A fresh host key and user key under ``certs_dir/ssh`` (private keys 0600)."""
    keys = SshKeys(certs_dir / SSH_DIR)
    keys.directory.mkdir(parents=True, exist_ok=True)
    host_public = _write_pair(keys.host_key, "bitbucket-lab-host")
    _write_pair(keys.user_key, "lab-user@bitbucket.lab.test")
    write_file(keys.known_hosts, b"# the lab's Bitbucket host key, pinned for every name of this lab\n* "
               + host_public)
    return keys


def _write_pair(path: Path, comment: str) -> bytes:
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    public += f" {comment}\n".encode()
    write_file(path, private, private=True)
    write_file(path.with_name(path.name + ".pub"), public)
    return public
