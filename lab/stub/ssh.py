"""Git over SSH on ``plugin.ssh.port`` (7999): OpenSSH's sshd with a forced command.

Bitbucket runs its own SSH server inside the JVM; on the wire it behaves as sshd with a
forced command does: one user (``git``), public keys only, ``git-upload-pack`` and
``git-receive-pack`` of the repositories HTTP serves, nothing else. The keys live in the
shared home, where Bitbucket keeps them (a Data Center cluster shares one host key):

- ``shared/config/ssh-server-keys.pem``: the host key (made per run by the lab, which
  pins it in the client's ``known_hosts``);
- ``shared/config/lab-authorized-keys``: the public keys users registered (the lab user's).

Without a host key the stub serves no SSH, as Bitbucket with SSH disabled.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from lab.stub.config import StubSettings

HOST_KEY = Path("config/ssh-server-keys.pem")
AUTHORIZED_KEYS = Path("config/lab-authorized-keys")
SSH_USER = "git"
RUN_DIR = Path("/run/lab-sshd")


def start_sshd(settings: StubSettings, home: Path) -> subprocess.Popen[bytes] | None:
    """Start sshd in the foreground (its log goes to the stub's stderr), or None when
    this home has no host key or the image has no sshd."""
    host_key, authorized = home / "shared" / HOST_KEY, home / "shared" / AUTHORIZED_KEYS
    sshd = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)
    if sshd is None or not host_key.is_file():
        return None
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    config = RUN_DIR / "sshd_config"
    config.write_text(sshd_config(settings, home, host_key, authorized))
    return subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL)


def sshd_config(settings: StubSettings, home: Path, host_key: Path, authorized: Path) -> str:
    """Public keys only, user ``git`` only, every session the forced git command."""
    command = f"env PYTHONPATH=/opt/lab BITBUCKET_HOME={home} {sys.executable} -m lab.stub.ssh_command"
    return "\n".join([
        f"Port {settings.ssh_port}", f"HostKey {host_key}", f"AuthorizedKeysFile {authorized}",
        "PubkeyAuthentication yes", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "UsePAM no", "PermitRootLogin no", f"AllowUsers {SSH_USER}", "StrictModes no",
        "AllowTcpForwarding no", "X11Forwarding no", "PermitTTY no", "PrintMotd no",
        "AcceptEnv GIT_PROTOCOL", "LogLevel VERBOSE", "PidFile none",
        f"ForceCommand {command}", "",
    ])


def stop_sshd(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def environment_for_git(extra: dict[str, str] | None = None) -> dict[str, str]:
    """git run for an SSH session: the repositories belong to Bitbucket's user, the
    session runs as ``git`` — as one JVM user in Bitbucket, so ownership is not checked."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent", "LC_ALL": "C",
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "safe.directory", "GIT_CONFIG_VALUE_0": "*",
            **(extra or {})}
