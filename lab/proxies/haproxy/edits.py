"""How ``--fix`` edits a customer's HAProxy files: sections that end where the next begins,
the ``backend``/``frontend``/``defaults``/``global`` scopes found from Bitbucket's server
line, new lines before the section's routing, and HAProxy's edit for each cause of
:mod:`lab.fix.remedies`."""

from __future__ import annotations

import re

from lab.fix.lines import Lines
from lab.fix.model import SetDirective
from lab.fix.remedies import PROXY_TIMEOUT
from lab.fix.syntax import Block, ConfigEditor, nearest_named

_SECTION = re.compile(r"^\s*(global|defaults|frontend|backend|listen|peers|resolvers|userlist|cache|program|"
                      r"http-errors|ring|mailers)\b(.*)$")


def blocks(lines: Lines) -> Block:
    top = Block("", (), 0, len(lines))
    for number in range(1, len(lines) + 1):
        content = lines.content(number)
        if content.strip().startswith("#") or not content.strip():
            continue
        section = _SECTION.match(content)
        if section:
            if top.children:
                top.children[-1].last = number - 1
            top.children.append(Block(section.group(1), tuple(section.group(2).split()), number, len(lines), top))
        elif top.children:
            words = content.split("#", 1)[0].split()
            if words:
                top.children[-1].directives.append((words[0], tuple(words[1:]), number, number))
    return top


def governing(top: Block, anchor: int, scope: str) -> list[Block]:
    """The anchor's section, then the frontend that routes to it (for frontend scope), then defaults."""
    section = next((block for block in top.children if block.holds(anchor)), None)
    if section is None:
        raise ValueError("the anchor is in no HAProxy section")
    found = [section]
    if scope == "frontend" and section.name == "backend":
        name = section.args[0] if section.args else ""
        found = [block for block in top.children if block.name == "frontend" and any(
            d[0] in ("use_backend", "default_backend") and name in d[1] for d in block.directives)][:1]
        if not found:
            raise ValueError(f"no frontend routes to backend {name}")
    defaults = [block for block in top.children if block.name == "defaults" and block.first < found[0].first]
    return found + defaults[-1:] + [top]


def scope_block(sections: list[Block], scope: str) -> Block:
    wanted = {"backend": ("backend", "listen"), "frontend": ("frontend", "listen")}.get(scope, (scope,))
    return nearest_named(sections, wanted, f"no {scope} section governs the line that routes Bitbucket")


EDITOR = ConfigEditor(
    blocks=blocks,
    scope_block=scope_block,
    governing=governing,
    insert_before=("server", "server-template", "balance", "option", "use_backend", "default_backend"),
    anchor_on_upstream=True,
    edits={
        PROXY_TIMEOUT.cause: (SetDirective("timeout server", "10m", "backend"),
                              SetDirective("timeout client", "10m", "frontend")),
    },
)
