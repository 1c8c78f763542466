"""Edit a copy of a customer's file with the smallest change in the customer's own style.

Every edit works on lines (:class:`lab.fix.lines.Lines`): an existing directive that
governs Bitbucket's traffic is changed in place (its indentation, spacing and comment
kept); otherwise one line is added in the block the directive belongs in, beside that
block's own settings, indented as its siblings are. Nothing is reformatted or reordered.
A shape the editor cannot change safely (a directive spread over lines, a variable in
``proxy_pass``, no block of the scope asked) is "not applicable", with a reason — never a
guess. The anchor is the line that routes Bitbucket (:class:`Anchor`); every scope is
found from it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from lab.fix.lines import Lines, indent_unit, indentation
from lab.fix.model import (AddFlag, Anchor, Edit, EditResult, Outcome, SetDirective, SetSetting, Status,
                           StripUriPart)

__all__ = ["Anchor", "AddFlag", "Edit", "EditResult", "Outcome", "SetDirective", "SetSetting", "Status",
           "StripUriPart", "apply_edits", "unified_diff"]


@dataclass
class Block:
    """A block of a config: nginx ``server {…}``, an Apache ``<VirtualHost>``, an HAProxy
    section; ``first``/``last`` are its opening and closing lines (a section ends where the next begins)."""

    name: str
    args: tuple[str, ...]
    first: int
    last: int
    parent: Block | None = None
    directives: list[tuple[str, tuple[str, ...], int, int]] = field(default_factory=list)  # name, args, line, end line
    children: list[Block] = field(default_factory=list)

    def holds(self, line: int) -> bool:
        return self.first <= line <= self.last


def apply_edits(text: str, kind: str, edits: Sequence[Edit], anchor: Anchor | None) -> EditResult:
    """``text`` with ``edits`` applied in order, and what became of each."""
    outcomes = []
    for edit in edits:
        before = len(Lines.of(text))
        text, outcome = _apply(text, kind, edit, anchor)
        outcomes.append(outcome)
        anchor = shifted(anchor, [outcome.line] if len(Lines.of(text)) > before and outcome.line else [])
    return EditResult(text, tuple(outcomes))


def shifted(anchor: Anchor | None, inserted: Sequence[int]) -> Anchor | None:
    """``anchor`` after lines were inserted at ``inserted`` (their new numbers, in order)."""
    if anchor is None:
        return None
    line = anchor.line
    for position in inserted:
        if position <= line:
            line += 1
    return Anchor(line)


def unified_diff(relpath: str, before: str, after: str) -> str:
    """``--- a/<relpath>`` / ``+++ b/<relpath>`` diff of the two texts; "" when they are equal."""
    if before == after:
        return ""
    lines = difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                 fromfile=f"a/{relpath}", tofile=f"b/{relpath}")
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def _apply(text: str, kind: str, edit: Edit, anchor: Anchor | None) -> tuple[str, Outcome]:
    try:
        if isinstance(edit, SetSetting):
            return _set_setting(text, kind, edit)
        if anchor is None or not 0 < anchor.line <= len(Lines.of(text)):
            return text, Outcome(edit, Status.NOT_APPLICABLE, "no line of this file routes Bitbucket")
        if isinstance(edit, SetDirective) and kind in ("nginx", "apache", "haproxy"):
            return _set_directive(text, kind, edit, anchor.line)
        if isinstance(edit, StripUriPart) and kind == "nginx":
            return _strip_uri_part(text, edit, anchor.line)
        if isinstance(edit, AddFlag) and kind == "apache":
            return _add_flag(text, edit, anchor.line)
    except ValueError as error:
        return text, Outcome(edit, Status.NOT_APPLICABLE, str(error))
    return text, Outcome(edit, Status.NOT_APPLICABLE, f"no such edit for a {kind} file")


# ---------------------------------------------------------------- reading blocks


def _blocks(lines: Lines, kind: str) -> Block:
    return {"nginx": _nginx_blocks, "apache": _apache_blocks, "haproxy": _haproxy_blocks}[kind](lines)


def _nginx_blocks(lines: Lines) -> Block:
    """nginx's blocks and directives by line: words up to ``;`` or ``{``, ``}`` closes; quotes and comments respected."""
    top = Block("", (), 0, len(lines))
    current, words, start = top, [], 0
    for number in range(1, len(lines) + 1):
        for token in _nginx_tokens(lines.content(number)):
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


_NGINX_TOKEN = re.compile(r"""\s*(?:(#.*)|("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|([;{}])|((?:[^\s;{}"'#\\]|\\.)+))""")


def _nginx_tokens(line: str) -> list[str]:
    tokens, position = [], 0
    while position < len(line):
        match = _NGINX_TOKEN.match(line, position)
        if not match or match.end() == position:
            break
        position = match.end()
        if match.group(1):
            break
        tokens.append(next(group for group in match.groups()[1:] if group is not None))
    return tokens


def _apache_blocks(lines: Lines) -> Block:
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


_HAPROXY_SECTION = re.compile(r"^\s*(global|defaults|frontend|backend|listen|peers|resolvers|userlist|cache|program|"
                              r"http-errors|ring|mailers)\b(.*)$")


def _haproxy_blocks(lines: Lines) -> Block:
    top = Block("", (), 0, len(lines))
    for number in range(1, len(lines) + 1):
        content = lines.content(number)
        if content.strip().startswith("#") or not content.strip():
            continue
        section = _HAPROXY_SECTION.match(content)
        if section:
            if top.children:
                top.children[-1].last = number - 1
            top.children.append(Block(section.group(1), tuple(section.group(2).split()), number, len(lines), top))
        elif top.children:
            words = content.split("#", 1)[0].split()
            if words:
                top.children[-1].directives.append((words[0], tuple(words[1:]), number, number))
    return top


def _chain(top: Block, line: int) -> list[Block]:
    """The blocks holding ``line``, innermost first (the file's top level last)."""
    chain, current = [top], top
    while True:
        inner = next((child for child in current.children if child.holds(line)), None)
        if inner is None:
            return list(reversed(chain))
        chain.append(inner)
        current = inner


# ---------------------------------------------------------------- SetDirective


_NGINX_SCOPES = {"location": ("location", "if", "limit_except"), "server": ("server",), "http": ("http", "")}


def _set_directive(text: str, kind: str, edit: SetDirective, anchor: int) -> tuple[str, Outcome]:
    lines = Lines.of(text)
    top = _blocks(lines, kind)
    chain = _haproxy_chain(top, anchor, edit.scope) if kind == "haproxy" else _chain(top, anchor)
    target = _scope_block(chain, kind, edit.scope)
    governing = chain[: chain.index(target) + 1] if target in chain else chain
    for block in governing:  # the nearest existing one, up to the scope asked, is changed in place
        found = _find(block, kind, edit.directive)
        if found is not None:
            return _change_in_place(lines, kind, edit, found)
    return _insert(lines, kind, edit, target, anchor)


def _haproxy_chain(top: Block, anchor: int, scope: str) -> list[Block]:
    """The anchor's section, then the frontend that routes to it (for frontend scope), then defaults."""
    section = next((block for block in top.children if block.holds(anchor)), None)
    if section is None:
        raise ValueError("the anchor is in no HAProxy section")
    chain = [section]
    if scope == "frontend" and section.name == "backend":
        name = section.args[0] if section.args else ""
        chain = [block for block in top.children if block.name == "frontend" and any(
            d[0] in ("use_backend", "default_backend") and name in d[1] for d in block.directives)][:1]
        if not chain:
            raise ValueError(f"no frontend routes to backend {name}")
    defaults = [block for block in top.children if block.name == "defaults" and block.first < chain[0].first]
    return chain + defaults[-1:] + [top]


def _scope_block(chain: list[Block], kind: str, scope: str) -> Block:
    if kind == "nginx":
        names = _NGINX_SCOPES.get(scope, (scope,))
        found = next((block for block in chain if block.name in names), None)
        if found is None and scope == "http":  # a site file is included inside http {}: its server is the place
            found = next((block for block in chain if block.name == "server"), None)
        if found is None:
            raise ValueError(f"no {scope} block holds the line that routes Bitbucket")
        return found
    if kind == "apache":
        if scope == "vhost":
            return next((block for block in chain if block.name == "virtualhost"), chain[-1])
        return chain[-1]
    wanted = {"backend": ("backend", "listen"), "frontend": ("frontend", "listen")}.get(scope, (scope,))
    found = next((block for block in chain if block.name in wanted), None)
    if found is None:
        raise ValueError(f"no {scope} section governs the line that routes Bitbucket")
    return found


def _find(block: Block, kind: str, directive: str) -> tuple[str, tuple[str, ...], int, int] | None:
    words = directive.split()
    for item in reversed(block.directives):
        name, args = item[0], item[1]
        if kind == "apache" and name == words[0].lower():
            return item
        if kind != "apache" and (name, *args[: len(words) - 1]) == tuple(words):
            return item
    return None


def _change_in_place(lines: Lines, kind: str, edit: SetDirective,
                     found: tuple[str, tuple[str, ...], int, int]) -> tuple[str, Outcome]:
    name, args, line, end = found
    words = len(edit.directive.split())
    value = " ".join(args[words - 1:]).rstrip(";")
    if value.strip("\"'") == edit.value:
        return lines.text, Outcome(edit, Status.SATISFIED, f"line {line} already says it", line)
    if end != line:
        raise ValueError(f"line {line}: the directive continues on another line; change it by hand")
    content = lines.content(line)
    match = re.match(rf"(\s*{re.escape(edit.directive.split()[0])}\s+" +
                     "".join(rf"{re.escape(w)}\s+" for w in edit.directive.split()[1:]) + r")([^;#]*?)"
                     + (r"(\s*;.*)$" if kind == "nginx" else r"(\s*;?\s*(?:#.*)?)$"),  # nginx: the line may go on
                     content, re.I)
    if match is None:
        raise ValueError(f"line {line} holds more than the directive; change it by hand")
    return (lines.replace(line, match.group(1) + edit.value + match.group(3)).text,
            Outcome(edit, Status.APPLIED, f"line {line}: {edit.directive} {value} → {edit.value}", line))


def _insert(lines: Lines, kind: str, edit: SetDirective, block: Block, anchor: int) -> tuple[str, Outcome]:
    """One line in ``block``, after its own last setting before its first nested block (or the anchor)."""
    stop = min([child.first for child in block.children if child.first > block.first] + [anchor if block.holds(anchor)
                                                                                            and anchor > block.first
                                                                                            else block.last + 1])
    if kind == "haproxy":
        servers = [d[2] for d in block.directives if d[0] in ("server", "server-template", "balance", "option",
                                                                "use_backend", "default_backend")]
        stop = min([*servers, stop]) if servers else block.last + 1
    own = [d for d in block.directives if d[2] < stop]
    if own:
        after, indent = own[-1][3], indentation(lines.content(own[-1][2]))
    elif block.name == "":
        after, indent = 0 if anchor <= 1 else anchor - 1, indentation(lines.content(anchor))
    else:
        pairs = [(child.first, child.first + 1) for child in block.children] + [(block.first, block.first + 1)]
        after = block.first
        indent = indentation(lines.content(block.first)) + indent_unit(lines, [p for p in pairs if p[1] <= len(lines)])
    terminator = ";" if kind == "nginx" else ""
    line = f"{indent}{edit.directive} {edit.value}{terminator}"
    return (lines.insert_after(after, [line]).text,
            Outcome(edit, Status.APPLIED, f"line {after + 1} added: {line.strip()}", after + 1))


# ---------------------------------------------------------------- nginx proxy_pass, Apache ProxyPass


def _strip_uri_part(text: str, edit: StripUriPart, anchor: int) -> tuple[str, Outcome]:
    lines = Lines.of(text)
    chain = _chain(_nginx_blocks(lines), anchor)
    location = next((block for block in chain if block.name == "location"), None)
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


def _add_flag(text: str, edit: AddFlag, anchor: int) -> tuple[str, Outcome]:
    lines = Lines.of(text)
    chain = _chain(_apache_blocks(lines), anchor)
    candidates = [d for d in chain[0].directives if d[0] == "proxypass" and (d[2] == anchor or chain[0].first == anchor)]
    if not candidates:
        candidates = [d for d in chain[0].directives if d[0] == "proxypass" and d[2] == anchor]
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


# ---------------------------------------------------------------- Bitbucket's settings


def _set_setting(text: str, kind: str, edit: SetSetting) -> tuple[str, Outcome]:
    if kind == "properties":
        pattern, new = rf"^(\s*{re.escape(edit.key)}\s*[=:]\s*|\s*{re.escape(edit.key)}\s+)(.*?)(\s*)$", f"{edit.key}={edit.value}"
    elif kind in ("env", "compose"):
        name = re.sub(r"[.-]", "_", edit.key).upper()
        if kind == "compose":
            return _set_compose(text, edit, name)
        pattern, new = rf"^(\s*(?:export\s+)?{name}=)(.*?)(\s*)$", f"{name}={edit.value}"
    else:
        return text, Outcome(edit, Status.NOT_APPLICABLE, f"settings in a {kind} file are changed by hand")
    lines = Lines.of(text)
    for number in range(len(lines), 0, -1):
        match = re.match(pattern, lines.content(number))
        if match:
            if match.group(2).strip("\"'") == edit.value:
                return text, Outcome(edit, Status.SATISFIED, f"line {number} already says it", number)
            return (lines.replace(number, match.group(1) + edit.value + match.group(3)).text,
                    Outcome(edit, Status.APPLIED, f"line {number}: {edit.key}={edit.value}", number))
    last = max((n for n in range(1, len(lines) + 1) if lines.content(n).strip()), default=0)
    return lines.insert_after(last, [new]).text, Outcome(edit, Status.APPLIED, f"line {last + 1} added: {new}", last + 1)


_BITBUCKET_IMAGE = re.compile(r"^\s*image:\s*['\"]?\S*(?:bitbucket|stash)", re.I)


def _set_compose(text: str, edit: SetSetting, name: str) -> tuple[str, Outcome]:
    """The variable in the ``environment:`` of the service whose image is Bitbucket's, list or mapping form."""
    lines = Lines.of(text)
    image = next((n for n in range(1, len(lines) + 1) if _BITBUCKET_IMAGE.match(lines.content(n))), None)
    if image is None:
        raise_na = "no service in the compose file runs Bitbucket's image"
        return text, Outcome(edit, Status.NOT_APPLICABLE, raise_na)
    service_indent = len(indentation(lines.content(image)))
    start = image
    while start > 1 and len(indentation(lines.content(start - 1))) >= service_indent:
        start -= 1
    end = image
    while end < len(lines) and (not lines.content(end + 1).strip() or
                                len(indentation(lines.content(end + 1))) >= service_indent):
        end += 1
    environment = next((n for n in range(start, end + 1) if re.match(r"^\s*environment:\s*$", lines.content(n))), None)
    if environment is None:
        return text, Outcome(edit, Status.NOT_APPLICABLE, "the Bitbucket service has no environment: block")
    entries = []
    for number in range(environment + 1, end + 1):
        content = lines.content(number)
        if content.strip() and len(indentation(content)) <= len(indentation(lines.content(environment))):
            break
        if content.strip():
            entries.append(number)
    for number in entries:
        match = re.match(rf"^(\s*-\s*['\"]?{name}=)(.*?)(['\"]?\s*)$|^(\s*['\"]?{name}['\"]?:\s*)(.*?)(\s*)$",
                         lines.content(number))
        if match:
            prefix, value, suffix = (match.group(1), match.group(2), match.group(3)) if match.group(1) else (
                match.group(4), match.group(5), match.group(6))
            if value.strip("\"'") == edit.value:
                return text, Outcome(edit, Status.SATISFIED, f"line {number} already says it", number)
            quote = value[0] if value[:1] in "\"'" and match.group(4) else ""
            return (lines.replace(number, prefix + quote + edit.value + quote + suffix).text,
                    Outcome(edit, Status.APPLIED, f"line {number}: {name}={edit.value}", number))
    if not entries:
        return text, Outcome(edit, Status.NOT_APPLICABLE, "the environment: block is empty")
    sibling = lines.content(entries[-1])
    indent = indentation(sibling)
    new = f"{indent}- {name}={edit.value}" if sibling.strip().startswith("-") else f"{indent}{name}: {edit.value}"
    return (lines.insert_after(entries[-1], [new]).text,
            Outcome(edit, Status.APPLIED, f"line {entries[-1] + 1} added: {new.strip()}", entries[-1] + 1))
