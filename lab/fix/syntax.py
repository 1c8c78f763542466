"""What ``--fix`` must know of a proxy kind's syntax, and the registry's way to ask for it.

Each kind that ``--fix`` edits names a :class:`ConfigEditor` in its package
(``lab/proxies/<kind>/edits.py``, ``ProxyKind.editor``): how its files nest into blocks,
which block a scope means, where a new line goes, the edits only it knows, and — keyed by
the causes of :mod:`lab.fix.remedies` — the edits that fix each cause in its files. The
generic editor (:mod:`lab.fix.edit`) does the rest for every kind alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lab.fix.lines import Lines
from lab.fix.model import Edit, Outcome
from lab.proxies import KINDS, resolve

Directive = tuple[str, tuple[str, ...], int, int]
"""A directive of a block: name, arguments, its line, its last line (a continued one ends later)."""


@dataclass
class Block:
    """A block of a config: nginx ``server {…}``, an Apache ``<VirtualHost>``, an HAProxy
    section; ``first``/``last`` are its opening and closing lines (a section ends where the next begins)."""

    name: str
    args: tuple[str, ...]
    first: int
    last: int
    parent: Block | None = None
    directives: list[Directive] = field(default_factory=list)
    children: list[Block] = field(default_factory=list)

    def holds(self, line: int) -> bool:
        return self.first <= line <= self.last


def chain(top: Block, line: int) -> list[Block]:
    """The blocks holding ``line``, innermost first (the file's top level last)."""
    found, current = [top], top
    while True:
        inner = next((child for child in current.children if child.holds(line)), None)
        if inner is None:
            return list(reversed(found))
        found.append(inner)
        current = inner


def enclosing(top: Block, anchor: int, scope: str) -> list[Block]:
    """The blocks that govern the anchor line, whatever the scope: those that hold it."""
    return chain(top, anchor)


def nearest_named(governing: list[Block], names: tuple[str, ...], missing: str) -> Block:
    """The first of ``governing`` (innermost first) whose name is one of ``names``: the block a
    scope means. ValueError(``missing``) when none is, so the edit is "not applicable"."""
    found = next((block for block in governing if block.name in names), None)
    if found is None:
        raise ValueError(missing)
    return found


SpecialEdit = Callable[[str, Any, int], tuple[str, Outcome]]
"""An edit only one kind knows: (text, edit, anchor line) → (new text, outcome); raises
ValueError for a shape it cannot change safely."""


@dataclass(frozen=True)
class ConfigEditor:
    """How ``--fix`` edits one proxy kind's files (named by ``ProxyKind.editor``)."""

    blocks: Callable[[Lines], Block]
    """The file's blocks and directives by line; ValueError for a shape it cannot read."""
    scope_block: Callable[[list[Block], str], Block]
    """The block a ``SetDirective`` scope names among the governing blocks (innermost first);
    ValueError when there is none."""
    edits: Mapping[str, tuple[Edit, ...]]
    """{cause of ``lab.fix.remedies.REMEDIES``: the edits that fix it in this kind's files}."""
    governing: Callable[[Block, int, str], list[Block]] = enclosing
    """(top, anchor line, scope) → the blocks that govern the anchor for that scope, innermost
    first: those holding it, or (HAProxy) its section, the frontend routing to it, the defaults."""
    names_fold_case: bool = False
    """Directive names are case-insensitive and one word (Apache): a directive is found by its
    name alone; else by its name and the further words it is given with (``timeout server``)."""
    terminator: str = ""
    """What ends a directive line the editor adds (nginx ``;``)."""
    insert_before: tuple[str, ...] = ()
    """Directives a new line goes before, in the block of its scope (HAProxy's ``server``,
    ``balance``…), at the block's end when it has none; empty: after the block's own settings,
    before its first nested block or the anchor."""
    special: Mapping[type, SpecialEdit] = field(default_factory=dict)
    """{edit type: how it is made} for edits only this kind knows (nginx ``StripUriPart``,
    Apache ``AddFlag``)."""
    certificate_scope: str | None = None
    """The scope of the directive that names the served certificate, where ``--fix`` points it
    at the bundle's full chain; None: that is an instruction (HAProxy's ``crt`` PEM holds the
    key too)."""
    anchor_on_upstream: bool = False
    """The edits' scopes are found from the first server line of Bitbucket's backend (HAProxy),
    not from the line that routes to it."""


def editor_of(kind: str) -> ConfigEditor | None:
    """The editor ``kind``'s package names, or None (a file kind ``--fix`` edits no directive in)."""
    record = KINDS.get(kind)
    return resolve(record.editor) if record is not None and record.editor else None


def edited_kinds() -> tuple[str, ...]:
    """The proxy kinds whose files ``--fix`` edits."""
    return tuple(name for name, kind in KINDS.items() if kind.editor)
