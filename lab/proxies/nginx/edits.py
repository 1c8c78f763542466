"""How ``--fix`` edits a customer's nginx files: ``{…}`` blocks and ``;`` directives, the
``location``/``server``/``http`` scopes, ``proxy_pass`` without its URI part, and nginx's
edit for each cause of :mod:`lab.fix.remedies`."""

from __future__ import annotations

import re

from lab.fix.lines import Lines
from lab.fix.model import Outcome, SetDirective, Status, StripUriPart
from lab.fix.remedies import (BODY_LIMIT, FROM_HINT, HEADER_LIMIT, LEGACY_TLS, PATH_REWRITTEN, PROXY_TIMEOUT,
                              SESSION_AFFINITY)
from lab.fix.syntax import Block, ConfigEditor, chain, nearest_named

SCOPES = {"location": ("location", "if", "limit_except"), "server": ("server",), "http": ("http", "")}
"""The blocks each scope means (``http``: the file's top level too, a site file included in it);
``upstream``: the ``upstream`` block the anchor's ``proxy_pass`` names (:func:`governing`)."""
BALANCING = ("ip_hash", "hash", "least_conn", "least_time", "random", "sticky")
"""An upstream's load-balancing method: one per upstream, nginx refuses a second."""


def blocks(lines: Lines) -> Block:
    """nginx's blocks and directives by line: words up to ``;`` or ``{``, ``}`` closes; quotes and comments respected."""
    top = Block("", (), 0, len(lines))
    current, words, start = top, list[str](), 0
    for number in range(1, len(lines) + 1):
        for token in _tokens(lines.content(number)):
            if token in (";", "{"):
                if not words:
                    raise ValueError(f"line {number}: an empty directive")
                if token == ";":
                    current.directives.append((words[0], tuple(words[1:]), start, number))
                else:
                    block = Block(words[0], tuple(words[1:]), start, len(lines), current)
                    current.children.append(block)
                    current = block
                words = []
            elif token == "}":
                if current.parent is None:
                    raise ValueError(f"line {number}: a `}}` closes no block")
                current.last = number
                current = current.parent
            else:
                if not words:
                    start = number
                words.append(token)
    return top


_TOKEN = re.compile(r"""\s*(?:(#.*)|("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|([;{}])|((?:[^\s;{}"'#\\]|\\.)+))""")


def _tokens(line: str) -> list[str]:
    tokens, position = [], 0
    while position < len(line):
        match = _TOKEN.match(line, position)
        if not match or match.end() == position:
            break
        position = match.end()
        if match.group(1):
            break
        tokens.append(next(group for group in match.groups()[1:] if group is not None))
    return tokens


def governing(top: Block, anchor: int, scope: str) -> list[Block]:
    """The blocks holding the anchor, innermost first; for the ``upstream`` scope, the upstream
    group its location's ``proxy_pass`` names (``proxy_pass http://bitbucket;`` →
    ``upstream bitbucket {…}``), found anywhere in the file."""
    held = chain(top, anchor)
    if scope != "upstream":
        return held
    name = _proxy_pass_host(held)
    groups = [block for block in _all_blocks(top) if block.name == "upstream" and block.args[:1] == (name,)]
    if not groups:
        raise ValueError(f"proxy_pass names {name or 'no host'}, not an upstream group of this file")
    others = [d[0] for d in groups[0].directives if d[0] in BALANCING and d[0] != "ip_hash"]
    if others:
        raise ValueError(f"upstream {name} balances with `{others[0]}`: give it affinity by hand (nginx allows one "
                         "method per upstream)")
    return groups


def _proxy_pass_host(held: list[Block]) -> str:
    location = next((block for block in held if block.name == "location"), None)
    passes = [d for d in location.directives if d[0] == "proxy_pass"] if location else []
    match = re.fullmatch(r"https?://([^/:$]+)(?::\d+)?(/.*)?", passes[0][1][0]) if passes and passes[0][1] else None
    return match.group(1) if match else ""


def _all_blocks(block: Block) -> list[Block]:
    return [block] + [inner for child in block.children for inner in _all_blocks(child)]


def scope_block(governing: list[Block], scope: str) -> Block:
    names = SCOPES.get(scope, (scope,))
    if scope == "http" and not any(block.name in names for block in governing):
        names = ("server",)  # a site file is included inside http {}: its server is the place
    return nearest_named(governing, names, f"no {scope} block holds the line that routes Bitbucket")


def strip_uri_part(text: str, edit: StripUriPart, anchor: int) -> tuple[str, Outcome]:
    """``proxy_pass http://host:7990/bitbucket/;`` in ``location /bitbucket/`` → ``proxy_pass http://host:7990;``."""
    lines = Lines.of(text)
    location = next((block for block in chain(blocks(lines), anchor) if block.name == "location"), None)
    if location is None:
        raise ValueError("the line that routes Bitbucket is in no location")
    passes = [d for d in location.directives if d[0] == "proxy_pass"]
    if len(passes) != 1:
        raise ValueError("the location has no single proxy_pass of its own")
    _, args, line, end = passes[0]
    target = args[0] if args else ""
    match = re.fullmatch(r"(https?://[^/]+)(/.*)?", target)
    if "$" in target or match is None:
        raise ValueError(f"proxy_pass {target}: a variable or another form; change it by hand")
    if not match.group(2):
        return text, Outcome(edit, Status.SATISFIED, f"line {line}: proxy_pass has no URI part", line)
    prefix = location.args[-1] if location.args and location.args[0] in ("^~", location.args[-1]) else None
    if prefix is None or match.group(2).rstrip("/") != prefix.rstrip("/") or end != line:
        raise ValueError(f"line {line}: the URI part {match.group(2)} is not the location's prefix: removing it "
                         "changes the path Bitbucket sees (its context path must change too)")
    content = lines.content(line)
    return (lines.replace(line, content.replace(target, match.group(1), 1)).text,
            Outcome(edit, Status.APPLIED, f"line {line}: proxy_pass without its URI part", line))


EDITOR = ConfigEditor(
    blocks=blocks,
    scope_block=scope_block,
    governing=governing,
    terminator=";",
    special={StripUriPart: strip_uri_part},
    certificate_scope="server",
    edits={
        BODY_LIMIT.cause: (SetDirective("client_max_body_size", "0", "server"),),
        PROXY_TIMEOUT.cause: (SetDirective("proxy_read_timeout", "600s", "location"),
                              SetDirective("proxy_send_timeout", "600s", "location")),
        PATH_REWRITTEN.cause: (StripUriPart(),),
        HEADER_LIMIT.cause: (SetDirective("large_client_header_buffers", FROM_HINT, "server"),),
        LEGACY_TLS.cause: (SetDirective("ssl_protocols", FROM_HINT, "server"),),
        SESSION_AFFINITY.cause: (SetDirective("ip_hash", "", "upstream"),),
    },
)
