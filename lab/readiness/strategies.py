"""Readiness strategies: each is one condition a node must meet, or must not break, before
the lab calls it up; the one loop (:mod:`lab.readiness.loop`) asks them once a round.

A strategy never talks to Docker or the network: it asks the probes it was given (plain
callables) through the round, which runs each probe at most once a round and only when a
strategy asks (so a port is not tried before the server starts, and two strategies that
ask one probe in a round see one answer). Tests drive a strategy with fake probes and a
made-up time. Its answer is typed: :class:`Ready` (why), :class:`NotYet` (why not yet) or
:class:`Failed` (the one line the user will read).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar, cast

from lab.releases import rejection_hint

T = TypeVar("T")

LISTEN_GRACE_S = 5
"""How long a server that shows no workers may take to open its listeners before what it
listens on counts as final."""
WORKERS_EVERY_S = 1.0
"""A proxy's workers are asked at most this often (a docker exec each)."""
ROUTES_SETTLE_S = 8
"""How long a proxy whose routes come after its listeners (``ProxyKind.routes_after_listening``)
may answer 404 or fail the handshake before that counts as its answer (Traefik: ~0.6 s idle)."""
CONFIG_ERROR = "LAB-CONFIG-ERROR:"
"""What a proxy's start script prints, before it exits 2, when the config test refuses the config."""
SEAL_ERROR = "LAB-SEAL-ERROR:"
"""What a node of a sealed lab prints when it will not start unsealed."""


@dataclass(frozen=True)
class Ready:
    """The condition holds."""

    why: str


@dataclass(frozen=True)
class NotYet:
    """The condition does not hold yet; ``why`` says what is missing."""

    why: str


@dataclass(frozen=True)
class Failed:
    """It never will: ``message`` is the one line the user reads (the loop raises it as a LabError)."""

    message: str


Outcome = Ready | NotYet | Failed


class Round:
    """One round of the loop: the seconds since the wait began (read when asked: a probe
    may take a while), and each probe's answer, taken the first time a strategy asks for
    it in this round."""

    def __init__(self, elapsed: Callable[[], float]) -> None:
        self._elapsed = elapsed
        self._seen: dict[Callable[[], object], object] = {}

    @property
    def elapsed(self) -> float:
        return self._elapsed()

    def see(self, probe: Callable[[], T]) -> T:
        if probe not in self._seen:
            self._seen[probe] = probe()
        return cast(T, self._seen[probe])


class Strategy(Protocol):
    def check(self, now: Round) -> Outcome: ...


class AllOf:
    """Ready once every strategy is, asked in order; the first that is not ready answers for
    all, and the ones after it are not asked in that round (their probes do not run)."""

    def __init__(self, *strategies: Strategy) -> None:
        self.strategies = strategies

    def check(self, now: Round) -> Outcome:
        outcome: Outcome = Ready("nothing to wait for")
        for strategy in self.strategies:
            outcome = strategy.check(now)
            if not isinstance(outcome, Ready):
                return outcome
        return outcome


class LogLineSeen:
    """Ready once the container has printed ``line``, and from then on (a printed line stays).

    Why: a proxy's config test (``nginx -t`` and its kin) opens every listener for a moment,
    so its port may accept during the test and refuse just after, before the server binds
    it again: readiness saw the front door accept and the first check found it refusing
    (1 start in ~10 with the config repo's site file; 0 in 65 after). The start scripts
    print LAB-SERVER-STARTS between the test and the server; compose this *before*
    :class:`PortAccepts`, so a port that accepts is the server's. The probe reads the log
    only up to the line: a kept proxy's log grows with every test, and each reload asks again.
    """

    def __init__(self, line: str, printed: Callable[[], bool]) -> None:
        self.line, self.printed, self.seen = line, printed, False

    def check(self, now: Round) -> Outcome:
        self.seen = self.seen or now.see(self.printed)
        return Ready(f"it printed {self.line}") if self.seen else NotYet(f"it has not printed {self.line} yet")


class PortAccepts:
    """Ready when one of the node's ports accepts a connection made through the gateway of
    its network, as a user's would be.

    Why through the gateway: Docker's port proxy accepts before the server inside listens,
    so a published port proves nothing. Why one port: every listener of a node opens before
    it serves, and a customer's drop-in config may not listen on all the ports the topology
    names.
    """

    def __init__(self, where: str, accepts: Callable[[], bool]) -> None:
        self.where, self.accepts = where, accepts

    def check(self, now: Round) -> Outcome:
        if now.see(self.accepts):
            return Ready(f"{self.where} accepts through the gateway")
        return NotYet(f"nothing accepts on {self.where} through the gateway")


class ListensOnItsHostsLoopback:
    """Ready when a node that shares its host's network namespace listens on one of its
    ports at all, even on 127.0.0.1 only.

    Why: Bitbucket with ``server.address=127.0.0.1`` beside its proxy is up, but no user
    can reach it through a gateway; waiting for that would only time out. The checks say
    what it means for users.
    """

    def __init__(self, ports: Sequence[int], listening: Callable[[], list[int] | None]) -> None:
        self.ports, self.listening = set(ports), listening

    def check(self, now: Round) -> Outcome:
        if set(now.see(self.listening) or ()) & self.ports:
            return Ready("it listens on its host's network namespace")
        return NotYet("it listens on none of its ports yet")


@dataclass(frozen=True)
class Exit:
    """A container that exited: its exit code and the last lines of its output."""

    code: int | None
    log: str


class StillRunning:
    """NotYet while the container runs (it decides nothing else); Failed, in the node's own
    words, once it has exited.

    Why: a node that exited will never answer, and a timeout would hide its reason. Its
    words, first found first: the proxy's config test refused the customer's config
    (LAB-CONFIG-ERROR from the start script, with the release that would accept it); a
    sealed lab's guard (LAB-SEAL-ERROR); Bitbucket refusing its properties; else the exit
    code and its last three lines. Composed for a guest's host too: a proxy that rejected
    its config takes Bitbucket's network namespace with it, and the proxy's reason is the one.
    """

    def __init__(self, name: str, kind: str, release: str, exit: Callable[[], Exit | None]) -> None:
        self.name, self.kind, self.release, self.exit = name, kind, release, exit

    def check(self, now: Round) -> Outcome:
        exit = now.see(self.exit)
        if exit is None:
            return NotYet(f"{self.name} runs")
        return Failed(exit_message(self.name, self.kind, self.release, exit))


def exit_message(name: str, kind: str, release: str, exit: Exit) -> str:
    """Why ``name`` exited, in the words its log gives (see :class:`StillRunning`)."""
    lines = exit.log.splitlines()
    config_error = next((line.split(CONFIG_ERROR, 1)[1].strip() for line in lines if CONFIG_ERROR in line), None)
    if config_error:
        return f"{kind} rejected the proxy config: {config_error}{rejection_hint(kind, config_error, release)}"
    seal = next((line for line in lines if SEAL_ERROR in line), None)
    if seal:
        return f"{name}: {seal.split(SEAL_ERROR, 1)[1].strip()}"
    refusal = next((line for line in lines if line.startswith("bitbucket.properties:")), None)
    if refusal:
        return f"Bitbucket would not start with these properties: {refusal.split(':', 1)[1].strip()}"
    return f"{name} ({kind}) exited with code {exit.code}: {' | '.join(lines[-3:])}"


class ListenersFinal:
    """Ready in a round where what the node listens on can be taken as final: its server
    runs worker processes (a master opens every listener its config names before it starts
    a worker), or the grace has passed (a server without workers gives no such sign).

    Why: it lets :class:`ListensWhereExpected` fail fast — a config that listens elsewhere
    was reported after the 5 s grace, and now once the workers exist (the fails-fast tests:
    7.5 → 3.5 s). Workers are asked from 1 s on, at most once a second (a docker exec each).
    """

    def __init__(self, has_workers: Callable[[], bool] | None, grace_s: float = LISTEN_GRACE_S,
                 every_s: float = WORKERS_EVERY_S) -> None:
        self.has_workers, self.grace_s, self.every_s = has_workers, grace_s, every_s
        self.next_look = every_s

    def check(self, now: Round) -> Outcome:
        elapsed = now.elapsed
        if elapsed > self.grace_s:
            return Ready(f"it had {self.grace_s} s to open its listeners")
        if self.has_workers is None or elapsed <= self.next_look:
            return NotYet("its listeners may still be opening")
        self.next_look = elapsed + self.every_s
        return Ready("its workers run") if now.see(self.has_workers) else NotYet("it has no workers yet")


class ListensWhereExpected:
    """Failed when the node listens on none of the ports the topology names (on others, or
    on none); NotYet otherwise: whether users reach the port is :class:`PortAccepts`' call.

    Why: such a node runs and will never become ready; saying so at once, with the ports it
    does listen on, beats a timeout. Meaningful only once its listeners are final: compose
    it after :class:`ListenersFinal`. Unknown listeners (no exec) decide nothing.
    """

    def __init__(self, name: str, kind: str, ports: Sequence[int], listener_words: str,
                 listening: Callable[[], list[int] | None]) -> None:
        self.name, self.kind, self.ports = name, kind, tuple(ports)
        self.listener_words, self.listening = listener_words, listening

    def check(self, now: Round) -> Outcome:
        listening = now.see(self.listening)
        if listening is None or set(listening) & set(self.ports):
            return NotYet("it listens where the topology expects it, or its listeners are unknown")
        wanted = "/".join(str(port) for port in self.ports)
        if not listening:
            return Failed(f"{self.name} ({self.kind}) runs but listens on no port: its config opens no listener "
                          f"({self.listener_words}); users need {wanted}")
        return Failed(f"{self.name} ({self.kind}) listens on {', '.join(map(str, listening))}, "
                      f"not on {wanted} where the topology expects it")


class RoutesLive:
    """NotYet while the public URL gives no HTTP answer (a failed handshake) or answers 404,
    for at most ``settle_s``; Ready after that, whatever it answers.

    Why: Traefik opens its listeners before its file provider applies the routes and
    certificates (about 0.6 s idle): until then users get a failed handshake or a 404 that
    means nothing, and the first check would race it. Bounded, because a 404 or a failed
    handshake that lasts is the proxy's real answer, for the checks to judge.
    """

    def __init__(self, status: Callable[[], int | None], settle_s: float = ROUTES_SETTLE_S,
                 placeholder_served: Callable[[], bool] | None = None) -> None:
        self.status, self.settle_s, self.placeholder_served = status, settle_s, placeholder_served

    def check(self, now: Round) -> Outcome:
        if now.see(self.status) in (None, 404) and now.elapsed < self.settle_s:
            return NotYet("its routes are not applied yet")
        if self.placeholder_served is not None and now.see(self.placeholder_served) and now.elapsed < self.settle_s:
            # Measured under load: Traefik's routes answered while its ACME resolver's
            # certificate (the lab leaf in acme.json) was not served yet, and tls.chain raced it.
            return NotYet("it still serves its placeholder certificate")
        return Ready("its routes are applied")


class UpstreamUp:
    """Ready once the public URL answers anything but 503 or 504 (no HTTP answer at all
    included: the checks will name why).

    Why: a proxy that health-checks Bitbucket (HAProxy's ``check``, Apache's worker retry)
    answers 503 until it has seen Bitbucket up a few times, and the first check must not
    race that. A 502 is not waited on: the proxy tried Bitbucket just now and failed (a
    refused connection, a TLS name that does not match) — a finding, not a passing state.
    """

    def __init__(self, status: Callable[[], int | None]) -> None:
        self.status = status

    def check(self, now: Round) -> Outcome:
        status = now.see(self.status)
        if status in (503, 504):
            return NotYet(f"the public URL answers {status}")
        return Ready(f"the public URL answers {status or 'without HTTP'}")
