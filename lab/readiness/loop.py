"""The one readiness loop: it owns the deadline and the poll interval, and asks the
strategies (:mod:`lab.readiness.strategies`) once a round, in order.

In a round the first decisive answer wins: a :class:`Ready` ends the wait, a
:class:`Failed` ends it with a LabError carrying the strategy's message; when all say
:class:`NotYet`, the loop sleeps one interval and, once past the deadline, either raises
the caller's timeout message (a node: with its log) or returns the last NotYet (a wait
whose timeout is a finding for the checks, not an error).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lab.errors import LabError
from lab.readiness.strategies import Failed, NotYet, Outcome, Ready, Round, Strategy

POLL_S = 0.1


@dataclass(frozen=True)
class Clock:
    """The loop's time: monotonic seconds, and a sleep (a test passes a fake one)."""

    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


SYSTEM_CLOCK = Clock()


def wait(strategies: Sequence[Strategy], deadline: float, poll_s: float = POLL_S, *,
         timed_out: Callable[[NotYet], str] | None = None, clock: Clock = SYSTEM_CLOCK) -> Ready | NotYet:
    """Ask ``strategies`` a round every ``poll_s`` until one decides: its Ready is returned,
    its Failed raised. ``deadline`` is on ``clock.now``'s scale (several waits may share one).
    Past it: LabError(``timed_out(last NotYet)``), or the last NotYet when ``timed_out`` is None.
    Every round runs at least once, and no round starts past the deadline."""
    began = clock.now()
    while True:
        outcome = ask_once(strategies, Round(lambda: clock.now() - began))
        if isinstance(outcome, Ready):
            return outcome
        clock.sleep(poll_s)
        if clock.now() > deadline:
            if timed_out is None:
                return outcome
            raise LabError(timed_out(outcome))


def ask_once(strategies: Sequence[Strategy], now: Round) -> Ready | NotYet:
    """One round: the first Ready or Failed in order decides (a Failed raised as a LabError);
    when none does, the first NotYet says what is missing."""
    first: Outcome | None = None
    for strategy in strategies:
        outcome = strategy.check(now)
        if isinstance(outcome, Failed):
            raise LabError(outcome.message)
        if isinstance(outcome, Ready):
            return outcome
        first = first or outcome
    return first if isinstance(first, NotYet) else NotYet("nothing to wait for")
