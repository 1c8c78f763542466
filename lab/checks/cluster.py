"""Data Center shapes: a logged-in user stays on one node (session affinity), and the
public URL keeps answering when a node dies (the load balancer's health check).

Every Bitbucket node names itself in ``X-Lab-Node``; each keeps its own HTTP sessions, as
nodes without a shared session store do, so a request that lands on the other node is
logged out — what users see as "logged out at random".
"""

from __future__ import annotations

import time
import urllib.parse

import requests

from lab.checks.base import CLUSTER, THROUGH_FRONT_DOOR, CheckTarget, Verdict, check, failed, passed
from lab.checks.http import BROWSER_HEADERS, TIMEOUT_S, form_action
from lab.fix.remedies import SESSION_AFFINITY
from lab.proxies import hint_for

NODE_HEADER = "X-Lab-Node"
FOLLOW_UPS = 20
FAILOVER_WAIT_S = 15
"""HAProxy's defaults (`check` every 2 s, 3 failures) take a dead node out in about 6 s; the
lab's recommended `inter 1s fall 2` in about 2 s."""
FAILOVER_STREAK = 5
def _why_not_clustered(target: CheckTarget) -> str | None:
    return None if target.clustered else "one Bitbucket node (not a Data Center cluster)"


def _why_nodes_cannot_stop(target: CheckTarget) -> str | None:
    return _why_not_clustered(target) or (None if target.stop_node else "the lab cannot stop nodes of this run")


@check("session.affinity", f"after a browser-like login, {FOLLOW_UPS} requests stay on one Bitbucket node and "
       "stay logged in", CLUSTER, needs=THROUGH_FRONT_DOOR, applies=_why_not_clustered)
def session_affinity(target: CheckTarget) -> Verdict:
    expected = f"{FOLLOW_UPS} requests after login: one node, logged in every time"
    session = _logged_in(target, expected)
    if isinstance(session, Verdict):
        return session
    answers = [_dashboard(session, target) for _ in range(FOLLOW_UPS)]
    nodes = [node for node, _ in answers]
    logged_out = sum(1 for _, logged_in in answers if not logged_in)
    observed = f"nodes {_counts(nodes)}; logged out on {logged_out} of {FOLLOW_UPS}"
    if len(set(nodes)) == 1 and not logged_out:
        return passed(f"all {FOLLOW_UPS} on {nodes[0]}, logged in", expected)
    return failed(observed, expected, "requests of one session alternate between nodes, and each node knows only "
                  "its own sessions: give the load balancer session affinity — " + _affinity_hint(target),
                  SESSION_AFFINITY.cause)


@check("cluster.failover", "with the node serving users stopped, the public URL keeps answering /status "
       "(the load balancer's health check takes the node out)", CLUSTER, needs=THROUGH_FRONT_DOOR,
       applies=_why_nodes_cannot_stop, disruptive=True)
def cluster_failover(target: CheckTarget) -> Verdict:
    assert target.stop_node is not None
    expected = f"{FAILOVER_STREAK} answers 200 in a row from a live node within {FAILOVER_WAIT_S} s of the stop"
    session = target.users.session()
    victim = _node_of(session.get(target.url("/status"), timeout=TIMEOUT_S)) or target.bitbucket_nodes[0]
    restore = target.stop_node(victim)
    try:
        streak, seen, started = 0, [], time.monotonic()
        while streak < FAILOVER_STREAK and time.monotonic() - started < FAILOVER_WAIT_S:
            answer = _status(session, target)
            seen.append(answer)
            streak = streak + 1 if answer.startswith("200") else 0
            time.sleep(0.2)
        took = time.monotonic() - started
    finally:
        restore()
    failures = [answer for answer in seen if not answer.startswith("200")]
    if streak >= FAILOVER_STREAK:
        return passed(f"{victim} stopped; answered again after {took:.1f} s"
                      + (f" ({_counts(failures)} first)" if failures else ""), expected)
    return failed(f"{victim} stopped; in {FAILOVER_WAIT_S} s: {_counts(seen)}", expected,
                  "the load balancer keeps sending users to the dead node: " + hint_for(target.proxy_kind, "failover"))


def _logged_in(target: CheckTarget, expected: str) -> requests.Session | Verdict:
    """A browser-like session after the login form; or the failure: a login that landed logged
    out on another node is affinity's (the node that issued the cookie is not the one that read it)."""
    session = target.users.session()
    session.headers.update(BROWSER_HEADERS)
    form_page = session.get(target.url("/dashboard"), timeout=TIMEOUT_S)
    action = form_action(form_page.text)
    if form_page.status_code != 200 or action is None:
        return failed(f"{form_page.url} → {form_page.status_code}, no login form", expected, _affinity_hint(target))
    landed = session.post(urllib.parse.urljoin(form_page.url, action), timeout=TIMEOUT_S,
                          data={"j_username": target.username, "j_password": target.password, "next": "/dashboard"})
    if "Logged in as" not in landed.text:
        return failed(f"the login POST landed on {landed.url} ({_node_of(landed)}) logged out: the session cookie was "
                      "issued by one node and the redirect after login went to another", expected,
                      _affinity_hint(target), SESSION_AFFINITY.cause)
    return session


def _dashboard(session: requests.Session, target: CheckTarget) -> tuple[str, bool]:
    response = session.get(target.url("/dashboard"), allow_redirects=False, timeout=TIMEOUT_S)
    return _node_of(response), response.status_code == 200 and "Logged in as" in response.text


def _status(session: requests.Session, target: CheckTarget) -> str:
    try:
        response = session.get(target.url("/status"), allow_redirects=False, timeout=10)
    except requests.RequestException as error:
        return f"error {type(error).__name__}"
    return f"{response.status_code} {_node_of(response)}".strip()


def _node_of(response: requests.Response) -> str:
    return response.headers.get(NODE_HEADER, "no node header")


def _counts(items: list[str]) -> str:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return ", ".join(f"{item} ×{count}" for item, count in counts.items())


def _affinity_hint(target: CheckTarget) -> str:
    return hint_for(target.proxy_kind, "affinity")
