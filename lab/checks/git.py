"""Real git over the public URL: the auth challenge, clone, push, a large push, and a
clone of a deliberately slow repository (the stub's ``lab.slow-repos`` knob)."""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import secrets
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from lab.checks.base import FRONT_DOOR_TO_BITBUCKET, THROUGH_FRONT_DOOR, CheckTarget, Verdict, check, failed, not_applicable, passed
from lab.checks.explain import RECORDS_PATH, connector_hint
from lab.checks.probe import early_status_for_body, open_socket
from lab.checks.pushing import Push, push_new_branch, push_verdict
from lab.checks.uplink import Hold, held_uplink
from lab.client import request_id
from lab.fix.remedies import BODY_LIMIT, PROXY_TIMEOUT
from lab.proxies import KINDS, hint_for


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
    return _tried_again_if_cut(target, clone)


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
    return _push(target, b"hello from the lab\n")


@check("git.push-large", "a push of 20 MB of incompressible data goes through", FRONT_DOOR_TO_BITBUCKET,
       needs=THROUGH_FRONT_DOOR, slow=True)
def git_push_large(target: CheckTarget) -> Verdict:
    return _push(target, large_payload())


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
    hold = Hold(HELD_AT, HOLD_S, lambda: _receiving_body(target, tag))
    with held_uplink(target.users.socks_port, hold) as port:
        relayed = dataclasses.replace(target, users=dataclasses.replace(target.users, socks_port=port))
        # HTTP/1.1 chunked is what proxies spool or stream; HTTP/2 has its own check (http2.git).
        pushed = _push(relayed, large_payload()[:STREAMED_PAYLOAD],
                       ["-c", "http.postBuffer=65536", "-c", "http.version=HTTP/1.1"])
    if not pushed.ok:
        return pushed
    return hold if _latest_body(target) is not None else None


def _receiving_body(target: CheckTarget, tag: str | None) -> bool:
    """Whether a Bitbucket node is reading a request body of this check right now (some
    bytes in, not yet all: git's 4-byte auth probe before a big push has ended by then)."""
    response = target.users.session().get(target.url(RECORDS_PATH.format(endpoint="body-timings", tag=tag)), timeout=5)
    return any(record.get("first_byte_at") and record.get("complete") is None
               for record in response.json().get("requests", []))


@dataclasses.dataclass(frozen=True)
class _BodyTiming:
    first_byte_at: float
    last_byte_at: float
    size: int
    complete: bool | None  # None: the stub does not know yet (still reading)


def _latest_body(target: CheckTarget) -> _BodyTiming | None:
    """Bitbucket's record of the latest request body this check sent (by its X-Request-ID):
    the push under way or just ended — git's small auth probe comes before a big push's
    body, and a check that pushes again is judged by its last push, never by an earlier one
    that stalled."""
    try:
        records = [_BodyTiming(float(r["first_byte_at"]), float(r["last_byte_at"]), int(r["bytes"]), r.get("complete"))
                   for r in _bitbucket_records(target, "body-timings", "requests") if r.get("first_byte_at")]
    except (ValueError, KeyError, TypeError):
        return None
    return max(records, key=lambda record: record.first_byte_at, default=None)


def _bitbucket_records(target: CheckTarget, endpoint: str, key: str) -> list[dict[str, object]]:
    """The stub's diagnostics ``/rest/lab/1.0/<endpoint>`` about this check's requests (by its
    X-Request-ID), from every node: each node of a cluster keeps its own records, so the
    proxy is asked until every node has answered."""
    tag, records, nodes_seen = request_id.get(), [], set()
    for _ in range(3 * len(target.bitbucket_nodes)):
        response = target.users.session().get(target.url(RECORDS_PATH.format(endpoint=endpoint, tag=tag)), timeout=15)
        node = response.headers.get("X-Lab-Node", "")
        if node not in nodes_seen:
            nodes_seen.add(node)
            try:
                records += list(response.json().get(key, []))
            except ValueError:
                return []
        if len(nodes_seen) >= len(target.bitbucket_nodes):
            break
    return records


CUT_SHORT = re.compile(r"expected 'packfile'|expected flush after ref listing|bytes of body are still expected|"
                       r"curl 18 |transfer closed with outstanding read data|unexpected disconnect while reading")
"""What git says when a response it was reading ended early (no HTTP status of its own)."""


def _tried_again_if_cut(target: CheckTarget, transfer: Callable[[], Verdict]) -> Verdict:
    """``transfer()``'s verdict. Through a front door whose server has a known fault that
    cuts responses Bitbucket gave (its kind's ``cuts_answered_responses``), a transfer git
    saw cut short while Bitbucket answered every request of it (none with 5xx) is made
    once more: through, it passes with the fault as its note; cut again, the second
    failure is judged as itself — a fault that cuts every time is not that race."""
    fault = KINDS[target.proxy_kind].cuts_answered_responses if target.proxy_kind in KINDS else ""
    started = time.time()
    first = transfer()
    if first.ok or not fault or not CUT_SHORT.search(first.observed) or not _bitbucket_answered(target, started):
        return first
    second = transfer()
    if not second.ok:
        return second
    return Verdict(True, f"{second.observed} at try 2 (the first was cut short in the front door although "
                         f"Bitbucket answered it: {first.observed[:160]})", second.expected, note=fault)


def _bitbucket_answered(target: CheckTarget, since: float) -> bool:
    """Whether Bitbucket answered this check's requests since ``since`` — a POST among them
    (git's transfer) — and none with a server error: the response git lost was given."""
    try:
        answers = [(str(a["method"]), int(str(a["status"]))) for a in _bitbucket_records(target, "answers", "answers")
                   if float(str(a["at"])) >= since]
    except (KeyError, TypeError, ValueError):
        return False
    return any(method == "POST" for method, _ in answers) and all(status < 500 for _, status in answers)


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


H2_WINDOW_BYTES = 65536
H2_TAIL_STALL = "stalled on its last bytes (Bitbucket got all but the end of the body)"
H2_TAIL_STALL_NOTE = (
    "an HTTP/2 push stalled with Bitbucket waiting for its last bytes and the client still sending: libcurl before "
    "8.2 can stall the end of an HTTP/2 upload when the connection pushes back (curl PR #11342; Debian bookworm has "
    "7.88) — seen through HAProxy, whose flow control pushes back more than nginx or Apache. Users on such git "
    "builds: upgrade git/libcurl, or `git config --global http.version HTTP/1.1`")
"""Measured here: about one 20 MB push in twenty, four at a time, through HAProxy 2.6 and 3.0
with ``alpn h2,http/1.1``; the stub had every byte but the last 2 KB, curl's trace never
said the upload was complete; the same client never stalled through nginx or Apache."""


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
    cloned = _tried_again_if_cut(target, clone)
    if not cloned.ok:
        return cloned.observed, ""
    if (used := cloned.observed.split()[0]) != version:
        return f"curl used {used}, not {version}", ""
    pushed = _push(target, large_payload() if version == "HTTP/2" else b"over HTTP/1.1\n", forced)
    return (None, pushed.note or cloned.note) if pushed.ok else (f"push: {pushed.observed}", "")


def _last_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith(("fatal:", "error:"))]
    return (lines[-1] if lines else stderr.strip().splitlines()[-1] if stderr.strip() else "failed")[:200]


def _push(target: CheckTarget, payload: bytes, git_options: list[str] | None = None) -> Verdict:
    """Push ``payload`` on a new branch. A push whose last bytes never reached Bitbucket (the
    client's HTTP/2 bug, see H2_TAIL_STALL_NOTE) is tried again, up to H2_STALL_TRIES pushes in
    all: one through passes with the note — the topology carried the push; stalled every time,
    it fails naming the bug; another failure on a later try is judged as itself."""
    pushed, stalls = _tried_again_if_cut(target, lambda: _push_once(target, payload, git_options)), 0
    while not pushed.ok and stalls + 1 < H2_STALL_TRIES and _stalled_on_the_tail(target, len(payload)) is not None:
        stalls += 1
        pushed = _push_once(target, payload, git_options)
    if stalls == 0:
        return pushed
    if pushed.ok:
        return Verdict(True, f"{pushed.observed} at try {stalls + 1} (the earlier {H2_TAIL_STALL})", pushed.expected,
                       note=H2_TAIL_STALL_NOTE)
    if _stalled_on_the_tail(target, len(payload)) is None:
        return pushed
    return failed(f"{pushed.observed} — {H2_TAIL_STALL}, {stalls + 1} times in a row", pushed.expected,
                  H2_TAIL_STALL_NOTE)


H2_STALL_TRIES = 3
"""Pushes a check makes while each stalls on its tail. Measured here: about one 20 MB push in
twenty stalls through HAProxy, and two in a row happened in a CI run (HAProxy, HTTP/2, both
cores busy): three in a row says the client or the proxy stalls as a rule, not by chance."""


def _stalled_on_the_tail(target: CheckTarget, size: int) -> _BodyTiming | None:
    """Bitbucket's record of a push body it got all but the last window (64 KB) of and never
    its end: it still waits for it (the proxy keeps the request open) or saw the connection
    close; None when the push is not stalled so."""
    timing = _latest_body(target)
    stalled = timing is not None and timing.complete is not True and timing.size >= size - H2_WINDOW_BYTES
    return timing if stalled else None


TAIL_QUIET_S = 2.0
"""A push stalled on its tail with nothing more for this long would sit out git's whole
timeout: it is ended and tried again (measured: a healthy push's bytes never pause that
long here, even under load)."""


def _tail_stall_now(target: CheckTarget, size: int) -> str | None:
    """Why a running push of ``size`` bytes will not finish: stalled on its tail; else None."""
    timing = _stalled_on_the_tail(target, size)
    if timing is None or time.time() - timing.last_byte_at < TAIL_QUIET_S:
        return None
    return f"ended by the lab: Bitbucket had {timing.size} of {size} bytes and nothing more for {TAIL_QUIET_S:.0f} s"


def _push_once(target: CheckTarget, payload: bytes, git_options: list[str] | None = None) -> Verdict:
    branch = f"lab-check/{secrets.token_hex(4)}"
    size = f"{len(payload) / 1024 / 1024:.0f} MB" if len(payload) > 1 << 20 else f"{len(payload)} bytes"
    expected = f"git push of {size} to {branch} succeeds and the remote then holds the pushed commit"
    outcome = push_new_branch(Push(target.users, target.git_url(), payload, branch, tuple(git_options or ()),
                                   stalled=lambda: _tail_stall_now(target, len(payload))))
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
