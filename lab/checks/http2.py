"""HTTP/2 between git and the front door: where it offers h2, git clones and pushes over
HTTP/2 and over HTTP/1.1 (``http2.git``). A front door whose HTTP/2 breaks big transfers
fails here alone, with the client-side workaround; a push stalled on its tail by libcurl's
own HTTP/2 bug is told apart (:data:`lab.checks.retries.H2_TAIL_STALL_NOTE`)."""

from __future__ import annotations

import re
import ssl
import tempfile
from pathlib import Path

from lab.checks.base import FRONT_DOOR_TO_BITBUCKET, THROUGH_FRONT_DOOR, CheckTarget, Verdict, check, failed, not_applicable, passed
from lab.checks.git import GIT_CAUSES, large_payload, push_payload
from lab.checks.probe import open_socket
from lab.checks.retries import H2_TAIL_STALL, H2_TAIL_STALL_NOTE, tried_again_if_cut


def _why_no_h2(target: CheckTarget) -> str | None:
    if not target.https:
        return "the public URL is not https (git speaks HTTP/2 over TLS only)"
    return None


@check("http2.git", "where the front door offers HTTP/2, git clones and pushes over HTTP/2 and over HTTP/1.1",
       FRONT_DOOR_TO_BITBUCKET, needs=THROUGH_FRONT_DOOR, applies=_why_no_h2, slow=True)
def http2_git(target: CheckTarget) -> Verdict:
    if negotiated_protocol(target) != "h2":
        return not_applicable("the front door does not offer HTTP/2 (ALPN: http/1.1 only)")
    expected = "clone and a 20 MB push succeed with git forced to HTTP/2, and with HTTP/1.1"
    outcomes = {version: _over(target, version) for version in ("HTTP/2", "HTTP/1.1")}
    broken = {version: problem for version, (problem, _) in outcomes.items() if problem}
    if not broken:
        note = next((note for _, note in outcomes.values() if note), "")
        return Verdict(True, "HTTP/2 (negotiated h2) and HTTP/1.1 both clone and push", expected, note=note)
    observed = "; ".join(f"over {version}: {problem}" for version, problem in broken.items())
    if H2_TAIL_STALL in broken.get("HTTP/2", "") and set(broken) == {"HTTP/2"}:
        return failed(observed, expected, H2_TAIL_STALL_NOTE)
    if set(broken) == {"HTTP/2"}:
        return failed(observed, expected, "git breaks only over HTTP/2: fix the proxy's HTTP/2 (or turn it off: "
                      "nginx without `http2`, Apache `Protocols http/1.1`, HAProxy `alpn http/1.1`), or have "
                      "clients run `git config --global http.version HTTP/1.1`", GIT_CAUSES["HTTP/2 stream"])
    return failed(observed, expected, "git fails over HTTP/1.1 as well: see git.clone and git.push")


def negotiated_protocol(target: CheckTarget) -> str | None:
    """The protocol the front door picks when offered h2 and http/1.1 (ALPN)."""
    context = ssl.create_default_context(cafile=str(target.users.ca_file)) if target.users.ca_file \
        else ssl.create_default_context()
    context.set_alpn_protocols(["h2", "http/1.1"])
    with open_socket(target, context) as sock:
        return sock.selected_alpn_protocol() if isinstance(sock, ssl.SSLSocket) else None


def _over(target: CheckTarget, version: str) -> tuple[str | None, str]:
    """What went wrong cloning and pushing with git forced to ``version`` (or None), and the
    push's note (a retried stall); GIT_TRACE_CURL proves which protocol curl really used."""
    forced = ["-c", f"http.version={version}"]

    def clone() -> Verdict:
        """Passed, its observed beginning with the protocol curl really used."""
        with tempfile.TemporaryDirectory(prefix="lab-h2-") as work:
            result = target.users.git([*forced, "clone", "--quiet", target.git_url(), str(Path(work) / "repo")],
                                      trace_curl=True)
        if result.returncode != 0:
            return Verdict(False, f"clone: {_last_error(result.stderr)}", version)  # judged by http2_git
        h2 = re.search(r"ALPN[:,] server accepted (to use )?h2|using HTTP/2", result.stderr)
        return passed(f"{'HTTP/2' if h2 else 'HTTP/1.1'} cloned", version)
    cloned = tried_again_if_cut(target, clone)
    if not cloned.ok:
        return cloned.observed, ""
    if (used := cloned.observed.split()[0]) != version:
        return f"curl used {used}, not {version}", ""
    pushed = push_payload(target, large_payload() if version == "HTTP/2" else b"over HTTP/1.1\n", forced)
    return (None, pushed.note or cloned.note) if pushed.ok else (f"push: {pushed.observed}", "")


def _last_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith(("fatal:", "error:"))]
    return (lines[-1] if lines else stderr.strip().splitlines()[-1] if stderr.strip() else "failed")[:200]
