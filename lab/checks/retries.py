"""When a git check makes a transfer once more — and why that hides no failure of the topology.

Two faults that are neither the topology's nor the customer's config cut a transfer now and
then: the Go front doors' (Caddy, Traefik) cutting a response Bitbucket gave whole
(``ProxyKind.cuts_answered_responses``, golang/go#40747), and libcurl before 8.2 stalling the
end of an HTTP/2 upload (:data:`H2_TAIL_STALL_NOTE`). Each retry rests on Bitbucket's own
record of the check's requests (:mod:`lab.checks.records`), never on timing: a transfer goes
again only when that record shows the fault's mark; through at a later try, the check passes
with the fault as its note; failing again, the last failure is judged as itself.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from lab.checks.base import CheckTarget, Verdict, failed
from lab.checks.records import BodyTiming, bitbucket_answered, latest_body
from lab.proxies import KINDS

CUT_SHORT = re.compile(r"expected 'packfile'|expected flush after ref listing|bytes of body are still expected|"
                       r"curl 18 |transfer closed with outstanding read data|unexpected disconnect while reading")
"""What git says when a response it was reading ended early (no HTTP status of its own)."""


def tried_again_if_cut(target: CheckTarget, transfer: Callable[[], Verdict]) -> Verdict:
    """``transfer()``'s verdict. Through a front door whose server has a known fault that
    cuts responses Bitbucket gave (its kind's ``cuts_answered_responses``), a transfer git
    saw cut short while Bitbucket answered every request of it (none with 5xx) is made
    once more: through, it passes with the fault as its note; cut again, the second
    failure is judged as itself — a fault that cuts every time is not that race."""
    fault = KINDS[target.proxy_kind].cuts_answered_responses if target.proxy_kind in KINDS else ""
    started = time.time()
    first = transfer()
    if first.ok or not fault or not CUT_SHORT.search(first.observed) or not bitbucket_answered(target, started):
        return first
    second = transfer()
    if not second.ok:
        return second
    return Verdict(True, f"{second.observed} at try 2 (the first was cut short in the front door although "
                         f"Bitbucket answered it: {first.observed[:160]})", second.expected, note=fault)


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
H2_STALL_TRIES = 3
"""Pushes a check makes while each stalls on its tail. Measured here: about one 20 MB push in
twenty stalls through HAProxy, and two in a row happened in a CI run (HAProxy, HTTP/2, both
cores busy): three in a row says the client or the proxy stalls as a rule, not by chance."""
TAIL_QUIET_S = 2.0
"""A push stalled on its tail with nothing more for this long would sit out git's whole
timeout: it is ended and tried again (measured: a healthy push's bytes never pause that
long here, even under load)."""


def tried_again_if_tail_stalled(target: CheckTarget, size: int, push: Callable[[], Verdict]) -> Verdict:
    """``push()`` of ``size`` bytes. A push whose last bytes never reached Bitbucket (the
    client's HTTP/2 bug) is tried again, up to H2_STALL_TRIES pushes in all: one through
    passes with the note — the topology carried the push; stalled every time, it fails
    naming the bug; another failure on a later try is judged as itself."""
    pushed, stalls = push(), 0
    while not pushed.ok and stalls + 1 < H2_STALL_TRIES and stalled_on_the_tail(target, size) is not None:
        stalls += 1
        pushed = push()
    if stalls == 0:
        return pushed
    if pushed.ok:
        return Verdict(True, f"{pushed.observed} at try {stalls + 1} (the earlier {H2_TAIL_STALL})", pushed.expected,
                       note=H2_TAIL_STALL_NOTE)
    if stalled_on_the_tail(target, size) is None:
        return pushed
    return failed(f"{pushed.observed} — {H2_TAIL_STALL}, {stalls + 1} times in a row", pushed.expected,
                  H2_TAIL_STALL_NOTE)


def stalled_on_the_tail(target: CheckTarget, size: int) -> BodyTiming | None:
    """Bitbucket's record of a push body it got all but the last window (64 KB) of and never
    its end: it still waits for it (the proxy keeps the request open) or saw the connection
    close; None when the push is not stalled so."""
    timing = latest_body(target)
    stalled = timing is not None and timing.complete is not True and timing.size >= size - H2_WINDOW_BYTES
    return timing if stalled else None


def tail_stall_now(target: CheckTarget, size: int) -> str | None:
    """Why a running push of ``size`` bytes will not finish: stalled on its tail; else None."""
    timing = stalled_on_the_tail(target, size)
    if timing is None or time.time() - timing.last_byte_at < TAIL_QUIET_S:
        return None
    return f"ended by the lab: Bitbucket had {timing.size} of {size} bytes and nothing more for {TAIL_QUIET_S:.0f} s"
