"""The lab's SSH keys: Bitbucket's host key and the lab user's key, made per run.

Written under ``certs/<topology>/ssh-<run id>/`` beside the TLS files, one folder per run
(two runs of one topology at once never rewrite each other's: a kept ``up``'s printed
clone command stays valid while another run checks), removed when the run ends, swept
by the next start of that topology when its run was killed (``owner`` names its process);
an exported Compose project has one ``ssh/`` folder:

- ``host_ed25519`` (+``.pub``): Bitbucket's SSH host key (all nodes of a cluster share it,
  as Data Center shares ``shared/config/ssh-server-keys.pem``);
- ``id_ed25519`` (+``.pub``): the lab user's key, registered with Bitbucket;
- ``known_hosts``: the host key pinned for every name — the only key ssh accepts here,
  so a client never needs ``StrictHostKeyChecking=no``.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lab.pki import write_file

SSH_DIR = "ssh"
OWNER_FILE = "owner"
"""In a run's key folder: the owning process (``pid:start-time``) and host, as the run's
Docker labels name them, so a killed run's keys are swept like its containers."""


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


def run_ssh_dir(certs_dir: Path, run_id: str) -> Path:
    """Where one run's keys are: ``certs_dir/ssh-<run id>``."""
    return certs_dir / f"{SSH_DIR}-{run_id}"


def make_ssh_keys(certs_dir: Path, run_id: str | None = None, owner: str = "") -> SshKeys:
    """A fresh host key and user key (private keys 0600) under ``certs_dir/ssh-<run_id>``
    for a run (``owner``: its process and host, for the sweep), or ``certs_dir/ssh`` for an
    exported project."""
    keys = SshKeys(run_ssh_dir(certs_dir, run_id) if run_id else certs_dir / SSH_DIR)
    keys.directory.mkdir(parents=True, exist_ok=True)
    if owner:
        write_file(keys.directory / OWNER_FILE, owner.encode() + b"\n")
    host_public = _write_pair(keys.host_key, "bitbucket-lab-host")
    _write_pair(keys.user_key, "lab-user@bitbucket.lab.test")
    write_file(keys.known_hosts, b"# the lab's Bitbucket host key, pinned for every name of this lab\n* "
               + host_public)
    return keys


def remove_ssh_keys(keys: SshKeys) -> None:
    """Remove a run's key folder (its run has ended); nothing when it is gone already."""
    shutil.rmtree(keys.directory, ignore_errors=True)


def _write_pair(path: Path, comment: str) -> bytes:
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    public += f" {comment}\n".encode()
    write_file(path, private, private=True)
    write_file(path.with_name(path.name + ".pub"), public)
    return public
