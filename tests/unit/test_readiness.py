"""Readiness without Docker: each strategy and the one loop, driven by fake probes and a
fake clock (lab.readiness.strategies, lab.readiness.loop, and how lab.readiness composes
them for a node and for the public URL)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import pytest

from lab.errors import LabError
from lab.readiness import (
    READY_TIMEOUT_S, SERVER_STARTS, UPSTREAM_POLL_S, UPSTREAM_UP_TIMEOUT_S, NodeProbes, upstream_strategies,
    wait_for_node)
from lab.readiness.loop import Clock, ask_once, wait
from lab.readiness.strategies import (
    ROUTES_SETTLE_S, AllOf, Exit, Failed, ListenersFinal, ListensOnItsHostsLoopback, ListensWhereExpected,
    LogLineSeen, NotYet, PortAccepts, Ready, RoutesLive, Round, StillRunning, UpstreamUp)
from lab.releases import rejection_hint
from lab.topology import Node

T = TypeVar("T")

BITBUCKET = Node("bitbucket", "stub", {"server": ("bitbucket",)}, (7990,))
PROXY = Node("proxy", "nginx", {"outside": ("bitbucket.lab.test",)}, (443,))
TRAEFIK = Node("proxy", "traefik", {"outside": ("bitbucket.lab.test",)}, (443,))
GUEST = Node("bitbucket", "stub", {}, (7990,), shares_host_with="proxy")


# --- the round ------------------------------------------------------------------------

def test_a_probe_two_strategies_ask_in_one_round_runs_once_and_again_in_the_next_round():
    status = Answers(503)
    strategies = [AllOf(RoutesLive(status), UpstreamUp(status))]
    ask_once(strategies, at(0.0))
    ask_once(strategies, at(0.1))
    assert status.calls == 2


def test_a_port_is_not_tried_before_the_proxy_printed_that_its_server_starts():
    printed, accepts = Answers(False, False, True), Answers(True)
    started_then_port = AllOf(LogLineSeen(SERVER_STARTS, printed), PortAccepts("port 443", accepts))
    outcomes = [started_then_port.check(at(0.0)) for _ in range(3)]
    assert [type(outcome) for outcome in outcomes] == [NotYet, NotYet, Ready]
    assert accepts.calls == 1


# --- each strategy ----------------------------------------------------------------------

def test_a_start_line_once_printed_stays_seen_and_its_log_is_not_read_again():
    printed = Answers(True, False)
    seen = LogLineSeen(SERVER_STARTS, printed)
    assert seen.check(at(0.0)) == seen.check(at(1.0)) == Ready(f"it printed {SERVER_STARTS}")
    assert printed.calls == 1


def test_a_port_that_accepts_is_ready_and_one_that_does_not_is_not_yet():
    assert isinstance(PortAccepts("port 443", Answers(True)).check(at(0.0)), Ready)
    assert PortAccepts("port 443", Answers(False)).check(at(0.0)) == NotYet(
        "nothing accepts on port 443 through the gateway")


@pytest.mark.parametrize("listening,ready", [([7990], True), ([22, 7990], True), ([22], False), ([], False), (None, False)])
def test_a_guest_is_up_when_it_listens_on_one_of_its_ports_on_its_hosts_loopback(listening, ready):
    outcome = ListensOnItsHostsLoopback((7990,), Answers(listening)).check(at(0.0))
    assert isinstance(outcome, Ready) is ready


def test_a_running_container_decides_nothing():
    assert isinstance(StillRunning("proxy", "nginx", "bookworm", Answers(None)).check(at(0.0)), NotYet)


def test_a_refused_config_is_the_proxys_own_words_with_the_release_that_accepts_it():
    error = '[emerg] unknown directive "http2" in /etc/lab/site.conf:3'
    log = f"nginx: the configuration file test failed\nLAB-CONFIG-ERROR: {error}\n"
    hint = rejection_hint("nginx", error, "bookworm")
    assert "--proxy-version trixie" in hint
    assert failure(StillRunning("proxy", "nginx", "bookworm", Answers(Exit(2, log)))) == (
        f"nginx rejected the proxy config: {error}{hint}")
    assert failure(StillRunning("proxy", "nginx", "trixie", Answers(Exit(2, log)))) == (
        f"nginx rejected the proxy config: {error}")


@pytest.mark.parametrize("log,message", [
    ("LAB-SEAL-ERROR: this lab is sealed: no uplink\n", "bitbucket: this lab is sealed: no uplink"),
    ("starting\nbitbucket.properties: server.context-path must start with /\n",
     "Bitbucket would not start with these properties: server.context-path must start with /"),
    ("one\ntwo\nthree\nfour\n", "bitbucket (stub) exited with code 1: two | three | four"),
    ("LAB-CONFIG-ERROR:   \nlast words\n", "bitbucket (stub) exited with code 1: LAB-CONFIG-ERROR:    | last words"),
    ("  bitbucket.properties: not at the start of its line\n",
     "bitbucket (stub) exited with code 1:   bitbucket.properties: not at the start of its line"),
])
def test_an_exited_node_is_reported_in_the_first_words_its_log_gives(log, message):
    assert failure(StillRunning("bitbucket", "stub", "bookworm", Answers(Exit(1, log)))) == message


def test_listeners_are_final_once_the_workers_run_asked_from_one_second_on_at_most_once_a_second():
    has_workers = Answers(False, False, True, False)
    final = ListenersFinal(has_workers)
    outcomes = {t: final.check(at(t)) for t in (0.5, 1.0, 1.05, 1.5, 2.0, 2.1, 2.2, 3.0, 3.2, 3.3)}
    assert has_workers.calls == 3  # at 1.05, 2.1 and 3.2 (1.0 and 2.0 are not past the look)
    assert {t for t, outcome in outcomes.items() if isinstance(outcome, Ready)} == {3.2}  # a look, not a state


def test_listeners_are_final_after_the_grace_without_asking_for_workers():
    has_workers = Answers(False)
    assert isinstance(ListenersFinal(has_workers, grace_s=5).check(at(5.1)), Ready)
    assert isinstance(ListenersFinal(None, grace_s=5).check(at(4.9)), NotYet)
    assert isinstance(ListenersFinal(None, grace_s=5).check(at(5.1)), Ready)
    assert has_workers.calls == 0


def test_a_node_listening_elsewhere_or_nowhere_fails_naming_its_ports_and_one_listening_where_expected_does_not():
    def listens(ports: list[int] | None) -> ListensWhereExpected:
        return ListensWhereExpected("proxy", "nginx", (80, 443), "`listen`", Answers(ports))

    assert failure(listens([8081, 8443])) == "proxy (nginx) listens on 8081, 8443, not on 80/443 where the topology expects it"
    assert failure(listens([])) == ("proxy (nginx) runs but listens on no port: its config opens no listener "
                                    "(`listen`); users need 80/443")
    assert isinstance(listens([443, 8081]).check(at(0.0)), NotYet)
    assert isinstance(listens(None).check(at(0.0)), NotYet)


@pytest.mark.parametrize("status,elapsed,ready", [
    (None, 0.5, False), (404, 0.5, False), (200, 0.5, True), (503, 0.5, True), (302, 0.5, True),
    (404, ROUTES_SETTLE_S + 0.1, True), (None, ROUTES_SETTLE_S + 0.1, True)])
def test_routes_count_as_live_once_the_url_answers_other_than_404_or_a_failed_handshake_or_the_settle_time_passed(
        status, elapsed, ready):
    assert isinstance(RoutesLive(Answers(status)).check(at(elapsed)), Ready) is ready


@pytest.mark.parametrize("placeholder,elapsed,ready", [
    (True, 0.5, False), (False, 0.5, True), (True, ROUTES_SETTLE_S + 0.1, True)])
def test_routes_answering_count_as_live_only_once_the_placeholder_certificate_is_gone_or_the_settle_time_passed(
        placeholder, elapsed, ready):
    routes = RoutesLive(Answers(200), placeholder_served=Answers(placeholder))
    assert isinstance(routes.check(at(elapsed)), Ready) is ready


def test_the_placeholder_probe_names_the_certificate_a_tls_server_presents_and_says_no_without_a_handshake(tmp_path):
    import socket
    import ssl
    import threading

    import trustme

    from lab.readiness.probes import serves_certificate_named
    ca = trustme.CA()
    leaf = ca.issue_cert("placeholder.invalid", common_name="TRAEFIK DEFAULT CERT")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf.configure_cert(context)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        for _ in range(2):
            connection, _ = listener.accept()
            try:
                context.wrap_socket(connection, server_side=True).close()
            except (OSError, ssl.SSLError):
                connection.close()
    threading.Thread(target=serve, daemon=True).start()
    connect = lambda: socket.create_connection(("127.0.0.1", port), timeout=5)  # noqa: E731
    assert serves_certificate_named(connect, "bitbucket.lab.test", "TRAEFIK DEFAULT CERT") is True
    assert serves_certificate_named(connect, "bitbucket.lab.test", "bitbucket.lab.test") is False
    listener.close()
    assert serves_certificate_named(connect, "bitbucket.lab.test", "TRAEFIK DEFAULT CERT") is False


@pytest.mark.parametrize("status,ready", [(503, False), (504, False), (502, True), (200, True), (404, True), (None, True)])
def test_the_upstream_counts_as_up_on_any_answer_but_a_health_checks_503_or_504(status, ready):
    assert isinstance(UpstreamUp(Answers(status)).check(at(0.0)), Ready) is ready


# --- the loop ---------------------------------------------------------------------------

def test_the_loop_raises_the_callers_timeout_message_once_past_the_deadline_and_not_before():
    clock = FakeClock()
    with pytest.raises(LabError, match="^gave up: nothing accepts on port 443 through the gateway$"):
        wait([PortAccepts("port 443", Answers(False))], clock.t + 3, 0.1,
             timed_out=lambda last: f"gave up: {last.why}", clock=clock.clock)
    assert 3.0 < clock.t - FakeClock.START <= 3.2
    assert clock.sleeps == [0.1] * len(clock.sleeps)


def test_the_loop_without_a_timeout_message_returns_its_last_not_yet_at_the_deadline():
    clock = FakeClock()
    assert wait([UpstreamUp(Answers(503))], clock.t + 1, 0.2, clock=clock.clock) == NotYet("the public URL answers 503")


def test_the_loop_asks_once_even_when_a_shared_deadline_has_already_passed():
    clock, accepts = FakeClock(), Answers(True)
    assert isinstance(wait([PortAccepts("port 443", accepts)], clock.t - 1, clock=clock.clock), Ready)
    assert accepts.calls == 1


def test_the_first_decisive_strategy_in_order_wins_a_round():
    ready, failed, not_yet = Fixed(Ready("up")), Fixed(Failed("first")), Fixed(NotYet("later"))
    assert ask_once([not_yet, ready, failed], at(0.0)) == Ready("up")
    with pytest.raises(LabError, match="^first$"):
        ask_once([not_yet, failed, Fixed(Failed("second")), ready], at(0.0))
    assert ask_once([not_yet, Fixed(NotYet("other"))], at(0.0)) == NotYet("later")


def test_strategies_see_the_seconds_since_their_own_wait_began():
    clock, seen = FakeClock(), []
    assert wait([Watch(lambda now: seen.append(now.elapsed) or NotYet("..."))], clock.t + 0.35, 0.1,
                clock=clock.clock) == NotYet("...")
    assert seen == pytest.approx([0.0, 0.1, 0.2, 0.3])


# --- a node, composed -------------------------------------------------------------------

def test_a_node_that_never_answers_times_out_with_its_log_tail_in_one_line():
    clock = FakeClock()
    probes = node_probes(log_tail=Answers("starting\nstill starting"))
    with pytest.raises(LabError) as raised:
        wait_for_node(BITBUCKET, "bitbucket", probes, clock.t + READY_TIMEOUT_S, "bookworm", clock=clock.clock)
    assert str(raised.value) == (f"bitbucket did not answer on bitbucket port 7990 within {READY_TIMEOUT_S} s; "
                                 "its log: starting | still starting")


def test_a_proxy_whose_port_accepts_during_its_config_test_is_ready_only_after_its_server_starts():
    clock = FakeClock()
    printed = Answers(False, False, False, True)
    wait_for_node(PROXY, "bitbucket.lab.test", node_probes(accepts=Answers(True), server_started=printed),
                  clock.t + 60, "bookworm", clock=clock.clock)
    assert printed.calls == 4 and clock.sleeps == [0.1] * 3


def test_a_proxy_that_rejects_its_config_fails_at_once_with_its_error():
    clock = FakeClock()
    refused = Exit(2, "LAB-CONFIG-ERROR: [emerg] invalid parameter \"server_name\" in /etc/lab/site.conf:3\n")
    with pytest.raises(LabError, match=r'^nginx rejected the proxy config: \[emerg\] invalid parameter "server_name"'):
        wait_for_node(PROXY, "bitbucket.lab.test", node_probes(exit=Answers(refused)), clock.t + 60, "bookworm",
                      clock=clock.clock)
    assert clock.sleeps == []


def test_a_guest_whose_host_rejected_its_config_gives_the_hosts_reason():
    clock = FakeClock()
    refused = Exit(2, "LAB-CONFIG-ERROR: unknown keyword 'frobnicate'\n")
    probes = node_probes(listening=Answers(None), host_exit=Answers(refused))
    with pytest.raises(LabError, match="^nginx rejected the proxy config: unknown keyword 'frobnicate'$"):
        wait_for_node(GUEST, "proxy", probes, clock.t + 60, "bookworm", PROXY, clock=clock.clock)


def test_a_guest_listening_only_on_its_hosts_loopback_is_up_though_no_port_accepts_through_the_gateway():
    clock = FakeClock()
    wait_for_node(GUEST, "proxy", node_probes(listening=Answers([7990])), clock.t + 60, "bookworm", PROXY,
                  clock=clock.clock)
    assert clock.sleeps == []


def test_a_proxy_listening_elsewhere_fails_once_its_workers_run_and_a_server_without_workers_after_the_grace():
    for node, has_workers, at_least, at_most in ((PROXY, Answers(True), 1.0, 1.2), (BITBUCKET, None, 5.0, 5.2)):
        clock = FakeClock()
        probes = node_probes(listening=Answers([8081]), has_workers=has_workers, server_started=Answers(True))
        with pytest.raises(LabError, match=r"listens on 8081, not on \d+ where the topology expects it"):
            wait_for_node(node, "x", probes, clock.t + 60, "bookworm", clock=clock.clock)
        assert at_least < clock.t - FakeClock.START <= at_most, node.kind


def test_a_node_whose_port_accepts_is_ready_without_asking_whether_it_exited_or_where_it_listens():
    clock, exit, listening = FakeClock(), Answers(Exit(1, "gone")), Answers([])
    wait_for_node(BITBUCKET, "bitbucket", node_probes(accepts=Answers(True), exit=exit, listening=listening),
                  clock.t + 60, "bookworm", clock=clock.clock)
    assert exit.calls == listening.calls == 0


# --- the public URL, composed -----------------------------------------------------------

def test_traefik_is_waited_for_until_its_routes_answer_then_until_its_health_check_passes():
    clock = FakeClock()
    status = Answers(None, 404, 404, 503, 200)
    outcome = wait(upstream_strategies(TRAEFIK, status), clock.t + UPSTREAM_UP_TIMEOUT_S, UPSTREAM_POLL_S,
                   clock=clock.clock)
    assert outcome == Ready("the public URL answers 200") and status.calls == 5


def test_a_404_that_lasts_is_traefiks_answer_after_the_settle_time_and_nginxs_at_once():
    clock = FakeClock()
    outcome = wait(upstream_strategies(TRAEFIK, Answers(404)), clock.t + UPSTREAM_UP_TIMEOUT_S, UPSTREAM_POLL_S,
                   clock=clock.clock)
    assert outcome == Ready("the public URL answers 404")
    assert ROUTES_SETTLE_S <= clock.t - FakeClock.START <= ROUTES_SETTLE_S + UPSTREAM_POLL_S + 0.01
    assert isinstance(ask_once(upstream_strategies(PROXY, Answers(404)), at(0.0)), Ready)


def test_a_health_check_that_never_passes_ends_the_wait_quietly_at_its_deadline():
    clock = FakeClock()
    outcome = wait(upstream_strategies(PROXY, Answers(503)), clock.t + UPSTREAM_UP_TIMEOUT_S, UPSTREAM_POLL_S,
                   clock=clock.clock)
    assert outcome == NotYet("the public URL answers 503")
    assert UPSTREAM_UP_TIMEOUT_S < clock.t - FakeClock.START <= UPSTREAM_UP_TIMEOUT_S + UPSTREAM_POLL_S + 0.01


# --- helpers ----------------------------------------------------------------------------

class Answers(Generic[T]):
    """A fake probe: its answers in turn, then the last one again; counts its calls."""

    def __init__(self, *answers: T) -> None:
        self.answers, self.calls = answers, 0

    def __call__(self) -> T:
        self.calls += 1
        return self.answers[min(self.calls, len(self.answers)) - 1]


class FakeClock:
    """Time that moves only when the loop sleeps."""

    START = 1000.0

    def __init__(self) -> None:
        self.t, self.sleeps = self.START, list[float]()
        self.clock = Clock(now=lambda: self.t, sleep=self._sleep)

    def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


class Fixed:
    """A strategy that always answers ``outcome``."""

    def __init__(self, outcome: Ready | NotYet | Failed) -> None:
        self.outcome = outcome

    def check(self, now: Round) -> Ready | NotYet | Failed:
        return self.outcome


class Watch:
    """A strategy that answers what ``answer`` makes of the round."""

    def __init__(self, answer: Callable[[Round], Ready | NotYet | Failed]) -> None:
        self.answer = answer

    def check(self, now: Round) -> Ready | NotYet | Failed:
        return self.answer(now)


def at(seconds: float) -> Round:
    return Round(lambda: seconds)


def failure(strategy: StillRunning | ListensWhereExpected) -> str:
    outcome = strategy.check(at(0.0))
    assert isinstance(outcome, Failed), outcome
    return outcome.message


def node_probes(**given: Callable[[], object] | None) -> NodeProbes:
    """Probes of a node that runs, listens where expected and never accepts, but for ``given``."""
    defaults: dict[str, Callable[[], object] | None] = {
        "accepts": Answers(False), "exit": Answers(None), "listening": Answers(None), "log_tail": Answers("")}
    return NodeProbes(**{**defaults, **given})  # type: ignore[arg-type]
