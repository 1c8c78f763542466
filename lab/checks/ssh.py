"""Git over SSH as users get it: the clone links Bitbucket hands out, then real ``git``
over ``ssh`` to the ssh link — the lab user's key, Bitbucket's host key pinned, through
the users' gateway (``ssh -o ProxyCommand``), so the link's host and port are judged
exactly where users stand."""

from __future__ import annotations

import secrets
import subprocess
import tempfile
import urllib.parse
from pathlib import Path

import requests

from lab.checks.base import FRONT_DOOR_TO_BITBUCKET, SSH, THROUGH_FRONT_DOOR, CheckTarget, Verdict, check, failed, not_applicable, passed
from lab.checks.explain import connector_hint
from lab.checks.pushing import Push, push_new_branch, push_verdict

REPOSITORY_REST = "/rest/api/1.0/projects/LAB/repos/repo"
TIMEOUT_S = 15
SSH_GIT_TIMEOUT_S = 120
SSH_BASEURL_HINT = ("Bitbucket builds the ssh link from `plugin.ssh.baseurl` (else the base URL's host and "
                    "`plugin.ssh.port`): set `plugin.ssh.baseurl=ssh://git@<host>:<port>` to where users reach "
                    "Bitbucket's SSH — the load balancer's `mode tcp` frontend port, or the port the firewall opens")
IDLE_CUT_HINT = ("the connection was cut while Bitbucket was busy and the line was silent: the load balancer's idle "
                 "timeout on SSH is too short — HAProxy `timeout client` (frontend) and `timeout server` (backend) "
                 "of the `mode tcp` SSH section well above the longest push (Atlassian: hours), nginx stream "
                 "`proxy_timeout`")
SSH_HINTS = (
    ("Host key verification failed", "the ssh link reaches an SSH server with another host key than Bitbucket's: "
     "the host/port in the link lands on the load balancer's own sshd (port 22?), not Bitbucket's SSH (7999)"),
    ("Permission denied (publickey)", "Bitbucket refused the lab user's key: is the key registered, and does the "
     "link reach Bitbucket's SSH server rather than a host's own sshd?"),
    ("Repository not found", "Bitbucket has no repository at the link's path"),
    ("Connection closed by", IDLE_CUT_HINT),
    ("Broken pipe", IDLE_CUT_HINT),
    ("Connection reset", IDLE_CUT_HINT),
    ("closed by remote host", IDLE_CUT_HINT),
    ("unexpected disconnect", IDLE_CUT_HINT),
    ("early EOF", IDLE_CUT_HINT),
    ("timed out", IDLE_CUT_HINT),
    ("cannot reach", "nothing answers at the ssh link's host and port from the users' network: " + SSH_BASEURL_HINT),
)


UNKNOWN_SSH_NOTE = ("the SSH base URL lives in Bitbucket's database (Administration → Server settings), not in the "
                    "files sent; left unset, users get {link}, where {answer} — if users clone over SSH, ask for "
                    "the SSH base URL and whatever serves that port (a stream/tcp block, a firewall rule)")


def _why_no_ssh_keys(target: CheckTarget) -> str | None:
    return None if target.ssh_command else "the lab made no SSH keys for this run"


@check("links.clone", "the repository's clone links are where users can clone: the http link under the public URL, "
       "the ssh link's host and port answer SSH from the users' network", FRONT_DOOR_TO_BITBUCKET,
       needs=THROUGH_FRONT_DOOR)
def links_clone(target: CheckTarget) -> Verdict:
    expected = f"http link under {target.public_url}/; ssh link's host:port answers SSH from users"
    response = target.users.session().get(target.url(REPOSITORY_REST), auth=(target.username, target.password),
                                          allow_redirects=False, timeout=TIMEOUT_S)
    links = _clone_links(response)
    if links is None:
        return failed(f"{REPOSITORY_REST} → {response.status_code}, no clone links", expected, connector_hint(target))
    http_link, ssh_link = links.get("http", ""), links.get("ssh", "")
    problems, hints = [], []
    if not http_link.startswith(target.public_url + "/"):
        problems.append(f"http link {http_link or '(none)'} is not under the public URL")
        hints.append("the http link comes from Bitbucket's base URL: set it to the public URL (setup.baseUrl, or "
                     "Administration → Server settings → Base URL)")
    answer = ssh_answer(target, ssh_link)
    ssh_unknown = not answer.startswith("SSH-") and not target.ssh_base_url_known
    if not answer.startswith("SSH-") and not ssh_unknown:
        problems.append(f"ssh link {ssh_link or '(none)'}: {answer}")
        hints.append(SSH_BASEURL_HINT)
    if problems:
        return failed("; ".join(problems), expected, "; ".join(hints))
    if ssh_unknown:
        return Verdict(True, f"http {http_link}; ssh link unknown", expected, note=UNKNOWN_SSH_NOTE.format(link=ssh_link,
                       answer=answer))
    return passed(f"http {http_link}; ssh {ssh_link} answers {answer}", expected)


@check("ssh.clone", "real git clones over SSH from the ssh clone link (lab key, pinned host key)", SSH,
       needs=("links.clone",), applies=_why_no_ssh_keys, slow=True)
def ssh_clone(target: CheckTarget) -> Verdict:
    link = ssh_link(target)
    if unknown := _unknown_link(target, link):
        return unknown
    with tempfile.TemporaryDirectory(prefix="lab-ssh-clone-") as work:
        result = _git(target, ["clone", "--quiet", link, str(Path(work) / "repo")])
    return _verdict(result, f"git clone {link} succeeds")


@check("ssh.push", "real git pushes a commit over SSH to the ssh clone link", SSH, needs=("links.clone",),
       applies=_why_no_ssh_keys, slow=True)
def ssh_push(target: CheckTarget) -> Verdict:
    link, branch = ssh_link(target), f"lab-check/ssh-{secrets.token_hex(4)}"
    if unknown := _unknown_link(target, link):
        return unknown
    expected = f"git push to {branch} over {link} succeeds and the remote then holds the pushed commit"
    outcome = push_new_branch(Push(target.users, link, b"pushed over SSH by the lab", branch,
                                   ssh_command=target.ssh_command, timeout=SSH_GIT_TIMEOUT_S))
    return push_verdict(outcome, expected, f"pushed to {branch} over SSH",
                        lambda refused: _verdict(refused, expected),
                        "the push did not land in the repository users clone over HTTP")


def _unknown_link(target: CheckTarget, link: str) -> Verdict | None:
    """Not applicable when the link answers nowhere and the real one may differ (links.clone says why)."""
    if target.ssh_base_url_known or ssh_answer(target, link).startswith("SSH-"):
        return None
    return not_applicable("the SSH base URL was not sent (it lives in Bitbucket's database); see links.clone")


def ssh_link(target: CheckTarget) -> str:
    """The ssh clone link Bitbucket gives users (links.clone passed, so it is there)."""
    response = target.users.session().get(target.url(REPOSITORY_REST), auth=(target.username, target.password),
                                          allow_redirects=False, timeout=TIMEOUT_S)
    return (_clone_links(response) or {}).get("ssh", "")


def ssh_answer(target: CheckTarget, link: str) -> str:
    """The SSH banner at the link's host:port from the users' network, or what went wrong."""
    parts = urllib.parse.urlsplit(link)
    if parts.scheme != "ssh" or not parts.hostname:
        return "not an ssh:// URL"
    port = parts.port or 22
    try:
        with target.users.connect(parts.hostname, port, timeout=5) as sock:
            sock.settimeout(5)
            banner = sock.recv(256).decode("latin-1").strip()
    except OSError as error:
        return f"users cannot reach {parts.hostname}:{port} ({_short(error)})"
    if not banner:
        return f"{parts.hostname}:{port} accepts but sends no SSH banner (closed at once)"
    return banner.splitlines()[0][:80] if banner.startswith("SSH-") else f"{parts.hostname}:{port} is not SSH ({banner[:40]!r})"


def _clone_links(response: requests.Response) -> dict[str, str] | None:
    if response.status_code != 200:
        return None
    try:
        return {str(link["name"]): str(link["href"]) for link in response.json()["links"]["clone"]}
    except (ValueError, KeyError, TypeError):
        return None


def _git(target: CheckTarget, args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return target.users.git(args, cwd=cwd, timeout=SSH_GIT_TIMEOUT_S, ssh_command=target.ssh_command)


def _verdict(result: subprocess.CompletedProcess[str], expected: str) -> Verdict:
    if result.returncode == 0:
        return passed("git exited 0", expected)
    stderr = " ".join(line.strip() for line in result.stderr.splitlines() if line.strip())
    hint = next((text for key, text in SSH_HINTS if key in stderr), "see git's message")
    return failed(f"git exited {result.returncode}: {stderr[:300]}", expected, hint)


def _short(error: OSError) -> str:
    text = str(error)
    if "not allowed by ruleset" in text or "0x02" in text:
        return "the users' network does not let this port through"
    if "refused" in text.lower():
        return "connection refused: nothing listens there"
    if "unreachable" in text.lower():
        return "the name does not resolve or the host is unreachable on the users' network"
    return text[:120]
