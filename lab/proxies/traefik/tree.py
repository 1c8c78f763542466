"""Traefik's configuration as trees, from wherever a customer writes it: a YAML or TOML file,
CLI flags (``--entrypoints.websecure.address=:443`` in a compose ``command:``) or Docker labels
(``traefik.http.routers.bitbucket.rule=…``).

Traefik matches option names without regard to case (``entryPoints``, ``entrypoints``) and
reads ``"true"`` for a section as "this section, with its defaults" (``tls=true``), a comma list
for a list (``entrypoints=web,websecure``) — measured with Traefik 3.7 from a YAML file too — so
a tree keeps keys and values as written and :func:`get` looks keys up case-insensitively. Every
key keeps where it was written (:attr:`Tree.sources`), for the mapping rows.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from lab.errors import LabError
from lab.reproduce.model import BundleFile, Source

Path_ = tuple[str, ...]


@dataclass
class Tree:
    """One configuration source: nested dicts (and lists) of strings, each key's source."""

    data: dict[str, Any] = field(default_factory=dict)
    sources: dict[Path_, Source] = field(default_factory=dict)  # lower-cased key path → where it is written
    origin: str = ""            # "traefik.yml", "labels of bitbucket (docker-compose.yml)", …

    def source(self, *path: str) -> Source:
        """Where ``path`` (or the nearest enclosing key that has a source) is written."""
        keys = tuple(key.lower() for key in path)
        while keys:
            if keys in self.sources:
                return self.sources[keys]
            keys = keys[:-1]
        return next(iter(self.sources.values()), Source(self.origin, 1))

    def insert(self, path: Path_, value: Any, source: Source) -> None:
        """Set ``path`` to ``value``, matching existing keys case-insensitively; a section
        given both a value (``tls=true``) and keys (``tls.certresolver=le``) keeps its keys."""
        node = self.data
        for depth, key in enumerate(path[:-1]):
            existing = _key(node, key) or key
            if not isinstance(node.get(existing), dict):
                node[existing] = {}
            node = node[existing]
            self.sources.setdefault(tuple(k.lower() for k in path[:depth + 1]), source)
        last = _key(node, path[-1]) or path[-1]
        if not isinstance(node.get(last), dict):
            node[last] = value
        self.sources[tuple(k.lower() for k in path)] = source


def get(node: Any, *keys: str) -> Any:
    """``node[k1][k2]…`` with each key matched case-insensitively; None when absent."""
    for key in keys:
        if not isinstance(node, dict):
            return None
        found = _key(node, key)
        if found is None:
            return None
        node = node[found]
    return node


def items(node: Any) -> list[tuple[str, Any]]:
    return list(node.items()) if isinstance(node, dict) else []


def words(value: Any) -> list[str]:
    """A list option as a list, whether written as a list or a comma list (``web,websecure``)."""
    if isinstance(value, list):
        return [str(item).strip() for item in value]
    if value is None or isinstance(value, dict):
        return []
    return [part.strip() for part in str(value).split(",") if part.strip()]


def _key(node: dict[str, Any], key: str) -> str | None:
    return next((existing for existing in node if existing.lower() == key.lower()), None)


def read_file(file: BundleFile) -> Tree:
    """The tree of a YAML or TOML file (TOML when the name says so or its first setting is a ``[table]``)."""
    text = file.path.read_text(encoding="utf-8-sig")
    if file.relpath.lower().endswith(".toml") or re.search(r"^\s*\[\[?[\w.\-\"]+\]\]?\s*$", text, re.M) \
            and not re.search(r"^[\w\-]+:\s*$", text, re.M):
        return _toml(text, file.relpath)
    return _yaml(text, file.relpath)


def _yaml(text: str, relpath: str) -> Tree:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise LabError(f"{relpath}:{mark.line + 1 if mark else 1}: not valid YAML") from None
    tree = Tree(origin=relpath)
    if isinstance(root, yaml.MappingNode):
        tree.data = _node(root, (), tree, relpath)
    return tree


def _node(node: yaml.Node, path: Path_, tree: Tree, relpath: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        found: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            tree.sources[(*path, key.lower())] = Source(relpath, key_node.start_mark.line + 1)
            found[key] = _node(value_node, (*path, key.lower()), tree, relpath)
        return found
    if isinstance(node, yaml.SequenceNode):
        return [_node(item, (*path, str(index)), tree, relpath) for index, item in enumerate(node.value)]
    if node.tag.endswith(":null"):
        return ""
    if node.tag.endswith(":bool"):
        return str(node.value).lower() in ("true", "yes", "on")
    return int(node.value) if node.tag.endswith(":int") and str(node.value).isdigit() else str(node.value)


def _toml(text: str, relpath: str) -> Tree:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise LabError(f"{relpath}: not valid TOML: {error}") from None
    tree = Tree(data=data, origin=relpath)
    for path, line in _toml_lines(text):
        tree.sources.setdefault(path, Source(relpath, line))
    return tree


def _toml_lines(text: str) -> Iterator[tuple[Path_, int]]:
    """(lower-cased key path, line) of each ``[table]`` and ``key =`` line."""
    table: Path_ = ()
    for number, line in enumerate(text.splitlines(), 1):
        header = re.match(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?", line)
        if header:
            table = tuple(part.strip().strip('"').lower() for part in header.group(1).split("."))
            yield table, number
            continue
        setting = re.match(r"^\s*([\w.\-\"]+)\s*=", line)
        if setting:
            yield (*table, *(part.strip('"').lower() for part in setting.group(1).split("."))), number


def flags_tree(flags: list[tuple[str, Source]], origin: str) -> Tree:
    """The static configuration CLI flags give (``--providers.docker`` alone means true)."""
    tree = Tree(origin=origin)
    for flag, source in flags:
        name, _, value = flag.removeprefix("--").partition("=")
        if not flag.startswith("--") or not name or name.lower() == "configfile":
            continue
        tree.insert(tuple(name.split(".")), _typed(value) if "=" in flag else True, source)
    return tree


def labels_tree(labels: list[tuple[str, str, Source]], origin: str) -> Tree:
    """The dynamic configuration ``traefik.http.…``/``traefik.tcp.…`` labels give (others are left out)."""
    tree = Tree(origin=origin)
    for key, value, source in labels:
        parts = tuple(key.split("."))
        if len(parts) > 2 and parts[0].lower() == "traefik" and parts[1].lower() in ("http", "tcp", "udp"):
            tree.insert(parts[1:], _typed(value), source)
    return tree


def _typed(value: str) -> Any:
    """``true``/``false`` as booleans (Traefik reads either; the lab's YAML reads as the customer wrote it)."""
    return value.lower() == "true" if value.lower() in ("true", "false") else value


def is_static(tree: Tree) -> bool:
    """A static configuration names entry points, providers or certificate resolvers."""
    return any(get(tree.data, key) is not None for key in ("entryPoints", "providers", "certificatesResolvers"))


def is_dynamic(tree: Tree) -> bool:
    return any(get(tree.data, key) is not None for key in ("http", "tcp", "tls"))
