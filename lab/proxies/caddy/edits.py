"""How ``--fix`` edits a customer's Caddyfile: blocks opened by a line ending in ``{`` and
closed by a ``}`` line, one directive per line, and Caddy's edit for each cause of
:mod:`lab.fix.remedies`.

The anchor is the ``reverse_proxy`` line that routes Bitbucket, and its block is a scope
(``lb_policy``). The other scopes are blocks *beside* that route rather than around it: the
``request_body`` of the site (or of the ``handle`` around the route), the ``transport http``
inside ``reverse_proxy``. A scope with no such block is "not applicable" — Caddy sets neither
a body limit nor a response timeout of its own, so there is nothing to raise.
"""

from __future__ import annotations

from lab.fix.lines import Lines
from lab.fix.model import SetDirective
from lab.fix.remedies import BODY_LIMIT, PROXY_TIMEOUT, SESSION_AFFINITY
from lab.fix.syntax import Block, ConfigEditor, chain, nearest_named
from lab.proxies.caddy.reader import split_words

BESIDE_THE_ROUTE = ("request_body", "transport")
"""Scopes found among the children of the blocks that hold the anchor, nearest first."""


def blocks(lines: Lines) -> Block:
    """The Caddyfile's blocks and directives by line (``{`` ends the line that opens a block; a
    ``}`` line closes it); ValueError for a brace Caddy would refuse too."""
    top = Block("", (), 0, len(lines))
    current = top
    for number in range(1, len(lines) + 1):
        words = split_words(lines.content(number))
        if words == ["}"]:
            if current.parent is None:
                raise ValueError(f"line {number}: a `}}` closes no block")
            current.last, current = number, current.parent
        elif words and words[-1] == "{":
            block = Block(words[0] if len(words) > 1 else "", tuple(words[1:-1]), number, len(lines), current)
            current.children.append(block)
            current = block
        elif words:
            current.directives.append((words[0], tuple(words[1:]), number, number))
    if current is not top:
        raise ValueError(f"line {current.first}: this block is never closed")
    return top


def governing(top: Block, anchor: int, scope: str) -> list[Block]:
    """The blocks that hold the anchor, innermost first; for a scope beside the route, the
    blocks of that name among their children come first (the nearest route's own first)."""
    held = chain(top, anchor)
    if scope not in BESIDE_THE_ROUTE:
        return held
    beside = [child for block in held for child in block.children if child.name == scope and not child.holds(anchor)]
    return beside + held


def scope_block(governing: list[Block], scope: str) -> Block:
    why = ("Caddy sets no such limit of its own, so the cause is elsewhere" if scope in BESIDE_THE_ROUTE
           else "the route is one line: give it a block by hand")
    return nearest_named(governing, (scope,),
                         f"no `{scope}` block governs the reverse_proxy that routes Bitbucket: {why}")


EDITOR = ConfigEditor(
    blocks=blocks,
    scope_block=scope_block,
    governing=governing,
    edits={
        BODY_LIMIT.cause: (SetDirective("max_size", "0", "request_body"),),
        PROXY_TIMEOUT.cause: (SetDirective("response_header_timeout", "10m", "transport"),),
        SESSION_AFFINITY.cause: (SetDirective("lb_policy", "cookie", "reverse_proxy"),),
    },
)
