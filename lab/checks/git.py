"""Real git over the public URL: the auth challenge, clone, push, a large push, a push held
to see whether the proxy streams it, and a clone of a deliberately slow repository (the
stub's ``lab.slow-repos`` knob). When a transfer goes again: :mod:`lab.checks.retries`;
git over HTTP/2: :mod:`lab.checks.http2`."""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import secrets
import subprocess
import tempfile
from pathlib import Path

from lab.checks.base import FRONT_DOOR_TO_BITBUCKET, THROUGH_FRONT_DOOR, CheckTarget, Verdict, check, failed, passed
from lab.checks.explain import connector_hint
from lab.checks.probe import early_status_for_body
from lab.checks.pushing import Push, push_new_branch, push_verdict
from lab.checks.records import latest_body, receiving_body
from lab.checks.retries import tail_stall_now, tried_again_if_cut, tried_again_if_tail_stalled
from lab.checks.uplink import Hold, held_uplink
from lab.client import request_id
from lab.fix.remedies import BODY_LIMIT, PROXY_TIMEOUT
from lab.proxies import hint_for


LARGE_PUSH_BYTES = 20 * 1024 * 1024
SLOW_REPO = "LAB/slow"
STATUS_HINTS = {
    500: "the proxy answered 500 (see reach.status for what it most often means behind a re-encrypting proxy)",
    403: "the proxy forbids the request (403): look for rules that deny POST …/git-receive-pack or "
         "…/git-upload-pack (nginx `limit_except`/`deny`, Apache `<Limit>`/`Require`, HAProxy `http-request deny`)",
    413: BODY_LIMIT.text,
    502: "the proxy could not talk to Bitbucket (502): check the upstream name, port and scheme",
    504: PROXY_TIMEOUT.text + " (504)",
}
GIT_HINTS = (
    ("unable to get local issuer certificate", "the server sends the leaf without its intermediate: serve "
     "fullchain.pem (leaf + intermediate); git does not fetch missing intermediates like browsers do"),
    ("server certificate verification failed", "git could not verify the served chain against the lab CA "
     "alone — usually the leaf is served without its intermediate: serve fullchain.pem (see tls.chain)"),
    ("certificate has expired", "the server certificate has expired"),
    ("no alternative certificate subject name", "the certificate does not name the public host"),
    ("HTTP/2 stream", "HTTP/2 between git and the proxy breaks big transfers: disable http2 at the proxy, or "
     "`git config http.version HTTP/1.1` on clients (see http2.git)"),
    ("Connection died", "the connection to the proxy died mid-request — with HTTP/2 at the proxy, see http2.git: "
     "`git config http.version HTTP/1.1` is the client-side workaround"),
    ("early EOF", "the proxy cut the transfer: raise nginx `proxy_read_timeout`/`proxy_send_timeout`, Apache "
     "ProxyPass `timeout=` or HAProxy `timeout server`/`timeout client` well above 60 s"),
    ("RPC failed", "the proxy broke the transfer: check its timeouts and body limits"),
    ("Authentication failed", "credentials were refused: is an authentication layer (mod_auth_basic) in front of "
     "Bitbucket? Bitbucket 4.0+ must see the credentials itself"),
    ("Could not resolve", "the public host name does not resolve from the users' network"),
    ("redirect", "git was redirected: the clone URL and Bitbucket's view of its URL differ"),
)
STATUS_CAUSES = {413: BODY_LIMIT.cause, 403: "git-forbidden", 504: PROXY_TIMEOUT.cause}
"""A status that names its cause whatever else fails: the findings it shares (lab.findings)."""
GIT_CAUSES = {"HTTP/2 stream": "http2-transfers", "Connection died": "http2-transfers",
              "early EOF": PROXY_TIMEOUT.cause}
_STATUS = re.compile(r"(?:HTTP |returned error: )(\d{3})")


@check("git.auth-challenge", 'anonymous info/refs → 401 with Basic realm="Atlassian Bitbucket", through the proxy',
       FRONT_DOOR_TO_BITBUCKET, needs=THROUGH_FRONT_DOOR)
def git_auth_challenge(target: CheckTarget) -> Verdict:
    url = target.url("/scm/LAB/repo.git/info/refs?service=git-upload-pack")
    expected = f'{url} → 401 WWW-Authenticate: Basic realm="Atlassian Bitbucket"'
    response = target.users.session().get(url, allow_redirects=False, timeout=15)
    challenge = response.headers.get("WWW-Authenticate", "")
    if response.status_code == 401 and challenge == 'Basic realm="Atlassian Bitbucket"':
        return passed(f"401 {challenge}", expected)
    if response.status_code == 401:
        return failed(f"401 {challenge}", expected,
                      "the challenge comes from the proxy, not Bitbucket (mod_auth_basic in front?): Bitbucket "
                      "4.0+ does not support authentication by the proxy; remove it")
    return failed(f"{response.status_code} {response.headers.get('Location', '')}".strip(),
                  expected, connector_hint(target))


@check("git.clone", "real git clones over the public URL with credentials", FRONT_DOOR_TO_BITBUCKET,
       needs=THROUGH_FRONT_DOOR, slow=True)
def git_clone(target: CheckTarget) -> Verdict:
    def clone() -> Verdict:
        with tempfile.TemporaryDirectory(prefix="lab-clone-") as work:
            result = _clone(target, Path(work) / "repo")
        return _git_verdict(result, f"git clone {target.git_url(password='***')} succeeds", target)
    return tried_again_if_cut(target, clone)


def _why_no_slow_repo(target: CheckTarget) -> str | None:
    """Decided from the topology's own configuration, never by asking the proxy under test."""
    if SLOW_REPO in target.slow_repos:
        return None
    return f"no slow repository {SLOW_REPO} configured (stub property lab.slow-repos={SLOW_REPO}:SECONDS)"


@check("git.clone-slow", "a clone of a repository Bitbucket is slow to pack survives the proxy's timeouts",
       FRONT_DOOR_TO_BITBUCKET, needs=THROUGH_FRONT_DOOR, applies=_why_no_slow_repo, slow=True)
def git_clone_slow(target: CheckTarget) -> Verdict:
    with tempfile.TemporaryDirectory(prefix="lab-clone-") as work:
        result = _clone(target, Path(work) / "slow", SLOW_REPO)
    return _git_verdict(result, f"git clone of {SLOW_REPO} succeeds", target)


@check("git.push", "real git pushes a commit over the public URL", FRONT_DOOR_TO_BITBUCKET, needs=THROUGH_FRONT_DOOR, slow=True)
def git_push(target: CheckTarget) -> Verdict:
    return push_payload(target, b"hello from the lab\n")


@check("git.push-large", "a push of 20 MB of incompressible data goes through", FRONT_DOOR_TO_BITBUCKET,
       needs=THROUGH_FRONT_DOOR, slow=True)
def git_push_large(target: CheckTarget) -> Verdict:
    return push_payload(target, large_payload())


@functools.cache
def large_payload() -> bytes:
    """20 MB of random (incompressible) bytes, made once per process; each push ends it with
    its own branch name (:mod:`lab.checks.pushing`), so no two pushes share a blob."""
    return os.urandom(LARGE_PUSH_BYTES)


STREAMED_PAYLOAD = 4 << 20
HELD_AT = 1 << 20
HOLD_S = 2.0
"""git.push-streamed holds git's 4 MB push at its first megabyte (:mod:`lab.checks.uplink`)
and asks Bitbucket whether the body is arriving. A proxy that streams has passed the first
bytes on within milliseconds, so the hold ends at once; one that spools waits for the end of
a body git is not allowed to send, and the hold runs out after 2 s — however busy the
machine is, a streaming proxy has that long to pass on its first byte, so one push decides."""


@check("git.push-streamed", "a big push reaches Bitbucket while git is still sending: the proxy streams the "
       "request body instead of spooling it first (a finding, not a failure, unless the push fails)",
       FRONT_DOOR_TO_BITBUCKET, needs=THROUGH_FRONT_DOOR, slow=True)
def git_push_streamed(target: CheckTarget) -> Verdict:
    expected = (f"Bitbucket receives the body of a {STREAMED_PAYLOAD >> 20} MB push while git is held at its "
                f"first {HELD_AT >> 20} MB")
    held = _held_push(target)
    if isinstance(held, Verdict):
        return dataclasses.replace(held, expected=expected)
    if held is None or held.released_by_arrival is None:
        return passed("pushed; whether it streamed is unknown: Bitbucket's body records could not be read "
                      "(diagnostics endpoint)", expected)
    if held.released_by_arrival:
        return passed(f"Bitbucket was receiving the body {held.seconds:.2f} s after git was held at "
                      f"{HELD_AT >> 20} MB of {STREAMED_PAYLOAD >> 20} MB (streamed)", expected)
    return Verdict(True, f"Bitbucket had none of the body while git was held at {HELD_AT >> 20} MB of "
                   f"{STREAMED_PAYLOAD >> 20} MB for {held.seconds:.1f} s — spooled by the proxy",
                   expected, note="the proxy buffers the whole push first (slow big pushes, disk use, timeouts): "
                   + hint_for(target.proxy_kind, "spooling"))


def _held_push(target: CheckTarget) -> Hold | Verdict | None:
    """Push through the holding relay: the hold (did the body arrive while git was held?),
    the failed push's verdict, or None when Bitbucket's records cannot be read."""
    assert target.users.socks_port is not None
    tag = request_id.get()
    hold = Hold(HELD_AT, HOLD_S, lambda: receiving_body(target, tag))
    with held_uplink(target.users.socks_port, hold) as port:
        relayed = dataclasses.replace(target, users=dataclasses.replace(target.users, socks_port=port))
        # HTTP/1.1 chunked is what proxies spool or stream; HTTP/2 has its own check (http2.git).
        pushed = push_payload(relayed, large_payload()[:STREAMED_PAYLOAD],
                       ["-c", "http.postBuffer=65536", "-c", "http.version=HTTP/1.1"])
    if not pushed.ok:
        return pushed
    return hold if latest_body(target) is not None else None


def push_payload(target: CheckTarget, payload: bytes, git_options: list[str] | None = None) -> Verdict:
    """Push ``payload`` on a new branch; a try cut or stalled by a known fault that is not the
    topology's goes again (:mod:`lab.checks.retries`)."""
    return tried_again_if_tail_stalled(target, len(payload), lambda: tried_again_if_cut(
        target, lambda: _push_once(target, payload, git_options)))


def _push_once(target: CheckTarget, payload: bytes, git_options: list[str] | None = None) -> Verdict:
    branch = f"lab-check/{secrets.token_hex(4)}"
    size = f"{len(payload) / 1024 / 1024:.0f} MB" if len(payload) > 1 << 20 else f"{len(payload)} bytes"
    expected = f"git push of {size} to {branch} succeeds and the remote then holds the pushed commit"
    outcome = push_new_branch(Push(target.users, target.git_url(), payload, branch, tuple(git_options or ()),
                                   stalled=lambda: tail_stall_now(target, len(payload))))
    return push_verdict(outcome, expected, f"pushed {size} to {branch}",
                        lambda refused: _push_verdict(refused, expected, target, len(payload)),
                        "the push did not land: check the proxy routes POST …/git-receive-pack")


def _push_verdict(result: subprocess.CompletedProcess[str], expected: str,
                  target: CheckTarget, size: int) -> Verdict:
    """A failed push; when git only saw the connection drop (no HTTP status), ask the proxy
    about its body limit."""
    verdict = _git_verdict(result, expected, target)
    if re.search(r"HTTP \d{3}|returned error: \d{3}", result.stderr):
        return verdict  # an answer git got (413 included) says what it says; no probe to wait on
    status = early_status_for_body(target, "/scm/LAB/repo.git/git-receive-pack", size)
    if status != 413:
        return verdict
    return failed(f"{verdict.observed}; the proxy answers a {size // (1 << 20)} MB body with 413",
                  expected, STATUS_HINTS[413], STATUS_CAUSES[413])


def _clone(target: CheckTarget, destination: Path, repo: str = "LAB/repo") -> subprocess.CompletedProcess[str]:
    return target.users.git(["clone", "--quiet", target.git_url(repo), str(destination)])


def _git_verdict(result: subprocess.CompletedProcess[str], expected: str,
                 target: CheckTarget) -> Verdict:
    if result.returncode == 0:
        return passed("git exited 0", expected)
    stderr = " ".join(line.strip() for line in result.stderr.splitlines() if line.strip())
    stderr = stderr.replace(target.password, "***") if target.password else stderr
    status = _STATUS.search(stderr)
    code = int(status.group(1)) if status else None
    hint = STATUS_HINTS.get(code) if code else None
    hint = hint or next((text for key, text in GIT_HINTS if key in stderr), None) or connector_hint(target)
    cause = STATUS_CAUSES.get(code) if code else next((name for key, name in GIT_CAUSES.items() if key in stderr), None)
    return failed(f"git exited {result.returncode}: {stderr[:300]}", expected, hint, cause)
