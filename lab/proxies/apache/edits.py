"""How ``--fix`` edits a customer's Apache files: ``<Section>`` nesting, case-insensitive
directive names, the ``vhost``/``server`` scopes, ``nocanon`` on the ProxyPass line, and
Apache's edit for each cause of :mod:`lab.fix.remedies`."""

from __future__ import annotations

from lab.fix.lines import Lines
from lab.fix.model import AddFlag, Outcome, SetDirective, Status
from lab.fix.remedies import (APACHE_VERIFY_DEPTH, BODY_LIMIT, ENCODED_SLASH_REFUSED, FROM_HINT, HEADER_LIMIT, LEGACY_TLS,
                              PATH_REWRITTEN, PROXY_TIMEOUT)
from lab.fix.syntax import Block, ConfigEditor, chain


def blocks(lines: Lines) -> Block:
    """Sections (names lower-cased) and directives by line; a ``\\`` line continues on the next."""
    top = Block("", (), 0, len(lines))
    current = top
    for number in range(1, len(lines) + 1):
        content = lines.content(number).strip()
        if not content or content.startswith("#"):
            continue
        if content.startswith("</"):
            if current.parent is None:
                raise ValueError(f"line {number}: {content} closes no section")
            current.last = number
            current = current.parent
        elif content.startswith("<"):
            words = content.strip("<>").split()
            block = Block(words[0].lower(), tuple(words[1:]), number, len(lines), current)
            current.children.append(block)
            current = block
        else:
            words = content.split()
            continued = content.endswith("\\")
            current.directives.append((words[0].lower(), tuple(words[1:]), number, number + 1 if continued else number))
    return top


def scope_block(governing: list[Block], scope: str) -> Block:
    """``vhost``: the ``<VirtualHost>`` holding the anchor, or the file's top level; else the top level."""
    if scope == "vhost":
        return next((block for block in governing if block.name == "virtualhost"), governing[-1])
    return governing[-1]


def add_flag(text: str, edit: AddFlag, anchor: int) -> tuple[str, Outcome]:
    """The flag right after the URL of the anchor's ProxyPass line."""
    lines = Lines.of(text)
    governing = chain(blocks(lines), anchor)
    candidates = [d for d in governing[0].directives
                  if d[0] == "proxypass" and (d[2] == anchor or governing[0].first == anchor)]
    if not candidates:
        candidates = [d for d in governing[0].directives if d[0] == "proxypass" and d[2] == anchor]
    if len(candidates) != 1:
        raise ValueError("no single ProxyPass on the line that routes Bitbucket")
    _, args, line, end = candidates[0]
    if edit.flag.lower() in (arg.lower() for arg in args):
        return text, Outcome(edit, Status.SATISFIED, f"line {line} already has {edit.flag}", line)
    url_index = next((i for i, arg in enumerate(args) if "://" in arg), None)
    if url_index is None or end != line:
        raise ValueError(f"line {line}: no URL on the ProxyPass line; change it by hand")
    content = lines.content(line)
    position = content.index(args[url_index]) + len(args[url_index])
    return (lines.replace(line, content[:position] + " " + edit.flag + content[position:]).text,
            Outcome(edit, Status.APPLIED, f"line {line}: {edit.flag} added to ProxyPass", line))


EDITOR = ConfigEditor(
    blocks=blocks,
    scope_block=scope_block,
    names_fold_case=True,
    special={AddFlag: add_flag},
    certificate_scope="vhost",
    edits={
        BODY_LIMIT.cause: (SetDirective("LimitRequestBody", "0", "vhost"),),
        PROXY_TIMEOUT.cause: (SetDirective("ProxyTimeout", "600", "vhost"),),
        PATH_REWRITTEN.cause: (AddFlag("nocanon"), SetDirective("AllowEncodedSlashes", "NoDecode", "vhost")),
        ENCODED_SLASH_REFUSED.cause: (SetDirective("AllowEncodedSlashes", "NoDecode", "vhost"), AddFlag("nocanon")),
        APACHE_VERIFY_DEPTH.cause: (SetDirective("SSLProxyVerifyDepth", "2", "vhost"),),
        HEADER_LIMIT.cause: (SetDirective("LimitRequestFieldSize", FROM_HINT, "vhost"),),
        LEGACY_TLS.cause: (SetDirective("SSLProtocol", FROM_HINT, "vhost"),),
    },
)
