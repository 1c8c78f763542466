"""The customer's text as numbered lines that keep their own endings.

Every editor changes or inserts whole lines through :class:`Lines`, so CRLF stays CRLF, a
missing final newline stays missing, and nothing else of the file is touched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_ENDING = re.compile(r"\r\n|\n|\r(?!\n)")


@dataclass(frozen=True)
class Lines:
    """A file's lines, each with its own ending (``"\\r\\n"``, ``"\\n"`` or ``""`` for a last
    line without one). Line numbers are 1-based, as in editors and in crossplane."""

    items: tuple[tuple[str, str], ...]   # (content, ending)

    @classmethod
    def of(cls, text: str) -> Lines:
        items, start = [], 0
        for match in _ENDING.finditer(text):
            items.append((text[start:match.start()], match.group()))
            start = match.end()
        if start < len(text):
            items.append((text[start:], ""))
        return cls(tuple(items))

    @property
    def text(self) -> str:
        return "".join(content + ending for content, ending in self.items)

    def __len__(self) -> int:
        return len(self.items)

    def content(self, number: int) -> str:
        """Line ``number`` without its ending."""
        return self.items[number - 1][0]

    def replace(self, number: int, content: str) -> Lines:
        items = list(self.items)
        items[number - 1] = (content, items[number - 1][1])
        return Lines(tuple(items))

    def insert_after(self, number: int, contents: Iterable[str]) -> Lines:
        """New lines after line ``number`` (0: at the top), ended as that line is (the file's
        own newline); after a last line without a newline, the new last line has none either."""
        items = list(self.items)
        newline = self._newline_near(number)
        new = [(content, newline) for content in contents]
        if new and number == len(items) and items and items[-1][1] == "":
            items[-1] = (items[-1][0], newline)
            new[-1] = (new[-1][0], "")
        return Lines(tuple(items[:number] + new + items[number:]))

    def _newline_near(self, number: int) -> str:
        if 0 < number <= len(self.items) and self.items[number - 1][1]:
            return self.items[number - 1][1]
        endings = [ending for _, ending in self.items if ending]
        return max(set(endings), key=endings.count) if endings else "\n"


def indentation(content: str) -> str:
    """The leading spaces and tabs of a line."""
    return content[: len(content) - len(content.lstrip(" \t"))]


def indent_unit(lines: Lines, pairs: Iterable[tuple[int, int]]) -> str:
    """The file's own indentation step: what a child line (second of a pair of line numbers)
    adds to its parent's (first); a tab when the file indents with tabs and shows no pair."""
    for parent, child in pairs:
        outer = indentation(lines.content(parent)) if parent else ""
        inner = indentation(lines.content(child))
        if inner.startswith(outer) and len(inner) > len(outer):
            return inner[len(outer):]
    uses_tabs = any(indentation(content).startswith("\t") for content, _ in lines.items)
    return "\t" if uses_tabs else "    "


def aligned_separator(sibling: str | None, name: str) -> str:
    """The gap between a new directive's name and its value: one space, unless the sibling
    line aligns its values in a column with spaces (``listen      443;``) and ``name`` fits."""
    match = re.match(r"[ \t]*(\S+)( {2,})\S", sibling or "")
    if not match or " " in name:
        return " "
    column = len(match.group(1)) + len(match.group(2))
    return " " * (column - len(name)) if column > len(name) else " "
