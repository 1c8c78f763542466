"""``bitbucket.properties`` as Java reads it, overridden by environment variables.

Java properties syntax: ``key=value``, ``key: value`` or ``key value``; ``#``/``!``
comments; backslash escapes (``\\t``, ``\\uXXXX``, ...); a line ending in an odd number of
backslashes continues on the next one, whose leading blanks are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def parse_properties(text: str) -> dict[str, str]:
    """Parse Java properties text into {key: value}; later keys win, as in Java."""
    result: dict[str, str] = {}
    for line in _logical_lines(text.splitlines()):
        key, value = _split_key_value(line)
        result[_unescape(key)] = _unescape(value)
    return result


def read_properties_file(path: Path) -> dict[str, str]:
    """Read a properties file; UTF-8 when it decodes, else ISO-8859-1 as Java does."""
    data = path.read_bytes()
    try:
        return parse_properties(data.decode("utf-8"))
    except UnicodeDecodeError:
        return parse_properties(data.decode("iso-8859-1"))


def _logical_lines(lines: Iterable[str]) -> Iterator[str]:
    pending: str | None = None
    for raw in lines:
        line = raw.lstrip(" \t\f")
        if pending is None and (not line or line[0] in "#!"):
            continue
        line = line if pending is None else pending + line
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:
            pending = line[:-1]
            continue
        pending = None
        yield line
    if pending is not None:
        yield pending


def _split_key_value(line: str) -> tuple[str, str]:
    index = 0
    while index < len(line):
        char = line[index]
        if char == "\\":
            index += 2
            continue
        if char in "=: \t\f":
            break
        index += 1
    key, rest = line[:index], line[index:]
    rest = rest.lstrip(" \t\f")
    if rest[:1] in ("=", ":"):
        rest = rest[1:].lstrip(" \t\f")
    return key, rest


def _unescape(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        escaped = match.group(1)
        if escaped.startswith("u") and len(escaped) == 5:
            return chr(int(escaped[1:], 16))
        return _ESCAPES.get(escaped, escaped)

    return re.sub(r"\\(u[0-9a-fA-F]{4}|.)", replace, text)


def relaxed_name(name: str) -> str:
    """The form Spring's relaxed binding compares: lower case, no ``.``, ``-`` or ``_``.

    ``server.proxy-name``, ``SERVER_PROXY_NAME`` and ``SERVER_PROXYNAME`` all become
    ``serverproxyname``.
    """
    return re.sub(r"[._-]", "", name).lower()


def apply_environment(
    properties: Mapping[str, str], environ: Mapping[str, str], known: Iterable[str]
) -> dict[str, str]:
    """Properties with environment variables layered on top, as Spring Boot does.

    Only variables naming a key in ``known`` (compared by :func:`relaxed_name`) count;
    ``PATH`` or ``HOME`` never become properties.
    """
    merged = dict(properties)
    by_relaxed = {relaxed_name(key): key for key in known}
    by_relaxed.update({relaxed_name(key): key for key in properties})
    for variable, value in environ.items():
        key = by_relaxed.get(relaxed_name(variable))
        if key is not None and variable.upper() == variable:
            merged[key] = value
    return merged
