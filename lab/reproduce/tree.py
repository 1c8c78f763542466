"""A proxy config as one tree of directives, its includes resolved against the BUNDLE.

nginx and Apache both split a config over included files. The customer's includes name
paths on *their* machine (``/etc/nginx/sites-enabled/*``); this module finds the bundle
file each one means, never a file of this machine, in this order:

1. the bundle file whose mirrored path (``etc/nginx/…`` → ``/etc/nginx/…``) matches;
2. a relative include is first made absolute against the proxy's prefix (nginx
   ``/etc/nginx``, Apache ``ServerRoot``), then as 1;
3. a bundle file by name: for a plain path, the one bundle file of that base name; for a
   glob, the proxy's files whose trailing path parts match it (``sites-enabled/*`` matches
   ``sites-enabled/bitbucket`` and a loose ``bitbucket``), each file claimed once, a file
   some plain include names never, and a loose file never by a distribution glob
   (``modules-enabled/*.conf``);
4. a file the distribution's package ships (recorded as ``distribution``);
5. a glob (or Apache ``IncludeOptional``) that matches nothing is fine, as for the proxy;
   anything else is a :class:`LabError` naming the include and the ``file:line`` holding it.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from lab.errors import LabError
from lab.reproduce.model import INCLUDE_DISTRIBUTION, INCLUDE_NOTHING, BundleFile, Source


@dataclass(frozen=True)
class Directive:
    """One directive (or block: ``server {}``, ``<VirtualHost>``, an HAProxy section)."""

    name: str
    args: tuple[str, ...]
    source: Source
    block: tuple[Directive, ...] | None = None

    @property
    def key(self) -> str:
        """The name compared case-insensitively (Apache directives are)."""
        return self.name.lower()

    def children(self, *names: str) -> list[Directive]:
        """Direct children with one of these names (case-insensitive)."""
        wanted = {name.lower() for name in names}
        return [child for child in self.block or () if child.key in wanted]

    def first(self, name: str) -> Directive | None:
        """The first direct child of that name, if any."""
        found = self.children(name)
        return found[0] if found else None

    def walk(self) -> list[Directive]:
        """This block's descendants, depth first, in file order."""
        result: list[Directive] = []
        for child in self.block or ():
            result.append(child)
            result.extend(child.walk())
        return result


def root(directives: Sequence[Directive], source: Source) -> Directive:
    """A pseudo block holding top-level directives, so helpers work on the main context."""
    return Directive(name="", args=(), source=source, block=tuple(directives))


def is_glob(pattern: str) -> bool:
    return any(char in pattern for char in "*?[")


@dataclass
class IncludeResolver:
    """Finds the bundle files an include names (see the module docstring for the order)."""

    bundle: Sequence[BundleFile]
    kind: str                               # the proxy kind whose files step 3 may claim
    prefix: str                             # absolute directory relative includes start from
    distribution: tuple[str, ...]           # paths/globs the distribution's package ships
    not_claimable: set[str] = field(default_factory=set)   # relpaths a glob must not claim (main, named snippets)
    includes: dict[str, str] = field(default_factory=dict)
    _claimed: set[str] = field(default_factory=set)

    def resolve(self, pattern: str, where: Source, optional: bool = False) -> list[BundleFile]:
        """Bundle files for ``pattern`` (in name order); records the outcome in ``includes``."""
        absolute = pattern if pattern.startswith("/") else posixpath.normpath(posixpath.join(self.prefix, pattern))
        found = self._by_mirrored_path(absolute) or self._by_name(absolute, pattern, where)
        if found:
            self._record(pattern, ", ".join(file.relpath for file in found))
            return found
        if self._shipped(absolute):
            self._record(pattern, INCLUDE_DISTRIBUTION)
            return []
        if is_glob(pattern) or optional:
            self._record(pattern, INCLUDE_NOTHING)
            return []
        raise LabError(f"{where}: includes {pattern}, which is not in the bundle: "
                       f"ask the customer for {absolute}")

    def _shipped(self, absolute: str) -> bool:
        return any(absolute == dist or path_matches(absolute, dist) for dist in self.distribution)

    def _record(self, pattern: str, outcome: str) -> None:
        self.includes.setdefault(pattern, outcome)

    def _readable(self, file: BundleFile) -> bool:
        return file.kind in (self.kind, "text")

    def _by_mirrored_path(self, absolute: str) -> list[BundleFile]:
        return [file for file in self.bundle
                if file.mirrored_path and self._readable(file)
                and path_matches(file.mirrored_path, absolute)]

    def _by_name(self, absolute: str, pattern: str, where: Source) -> list[BundleFile]:
        if not is_glob(absolute):
            name = posixpath.basename(absolute)
            same_name = [file for file in self.bundle
                         if posixpath.basename(file.relpath) == name and self._readable(file)]
            if len(same_name) > 1:
                names = ", ".join(file.relpath for file in same_name)
                raise LabError(f"{where}: includes {pattern}, and several bundle files are named {name} "
                               f"({names}): send the files under their full paths (etc/…)")
            return same_name
        wanted = absolute.strip("/").split("/")
        shipped = self._shipped(absolute)       # a loose file is never a module of the distribution
        found = [file for file in self.bundle
                 if file.kind == self.kind and file.relpath not in self.not_claimable | self._claimed
                 and not file.mirrored_path and (not shipped or "/" in file.relpath)
                 and _suffix_matches(file.relpath.split("/"), wanted)]
        self._claimed.update(file.relpath for file in found)
        return found


def path_matches(path: str, pattern: str) -> bool:
    """Glob match as the proxies' glob(3) does it: ``*`` never crosses a ``/``."""
    parts, wanted = path.split("/"), pattern.split("/")
    return len(parts) == len(wanted) and _suffix_matches(parts, wanted)


def _suffix_matches(parts: list[str], pattern_parts: list[str]) -> bool:
    """``sites-enabled/bitbucket`` and ``bitbucket`` match ``etc/nginx/sites-enabled/*``."""
    if len(parts) > len(pattern_parts):
        return False
    return all(fnmatch.fnmatchcase(part, wanted) for part, wanted in zip(reversed(parts), reversed(pattern_parts), strict=False))


Parser = Callable[[BundleFile], tuple[Directive, ...]]
IncludeOf = Callable[[Directive], tuple[str, bool] | None]


def expand(
    file: BundleFile,
    parse: Parser,
    include_of: IncludeOf,
    resolver: IncludeResolver,
    reached: list[BundleFile],
    stack: tuple[str, ...] = (),
) -> tuple[Directive, ...]:
    """``file``'s directives with every include replaced by the included files' directives.

    ``include_of`` says whether a directive is an include (its pattern, and whether a
    missing file is fine); ``reached`` collects every file read, in order.
    """
    if file.relpath in stack:
        chain = " → ".join((*stack, file.relpath))
        raise LabError(f"include loop: {chain}")
    if file not in reached:
        reached.append(file)
    return _expand_block(parse(file), parse, include_of, resolver, reached, (*stack, file.relpath))


def _expand_block(
    directives: Sequence[Directive],
    parse: Parser,
    include_of: IncludeOf,
    resolver: IncludeResolver,
    reached: list[BundleFile],
    stack: tuple[str, ...],
) -> tuple[Directive, ...]:
    result: list[Directive] = []
    for directive in directives:
        include = include_of(directive)
        if include is not None:
            pattern, optional = include
            for included in resolver.resolve(pattern, directive.source, optional):
                result.extend(expand(included, parse, include_of, resolver, reached, stack))
        elif directive.block is not None:
            block = _expand_block(directive.block, parse, include_of, resolver, reached, stack)
            result.append(replace(directive, block=block))
        else:
            result.append(directive)
    return tuple(result)


def roots(files: Sequence[BundleFile], parse: Parser, include_of: IncludeOf,
          make_resolver: Callable[[], IncludeResolver]) -> list[BundleFile]:
    """Files no other file of ``files`` includes: where reading starts when the bundle
    holds site files only (a snippet is read where it is included, not twice)."""
    included: set[str] = set()
    for file in files:
        reached: list[BundleFile] = []
        expand(file, parse, include_of, make_resolver(), reached)
        included.update(other.relpath for other in reached if other != file)
    return [file for file in files if file.relpath not in included]


def pick_main(mains: Sequence[BundleFile], preferred: tuple[str, ...], label: str) -> BundleFile | None:
    """The one full config among ``mains``; with several, the one mirrored at a
    ``preferred`` path, else a :class:`LabError` (the lab cannot tell which one runs)."""
    if len(mains) <= 1:
        return mains[0] if mains else None
    at_home = [file for file in mains if file.mirrored_path in preferred]
    if len(at_home) == 1:
        return at_home[0]
    names = ", ".join(file.relpath for file in mains)
    raise LabError(f"the bundle holds several full {label} configs ({names}): send the one {label} runs")


def named_by_includes(bundle: Sequence[BundleFile], trees: Sequence[Sequence[Directive]],
                      include_of: IncludeOf) -> set[str]:
    """Relpaths of bundle files an include names outright (no glob), by base name: a glob
    elsewhere must not claim them, since a snippet belongs where it is named."""
    names = set()
    for directives in trees:
        for directive in root(directives, Source("", 0)).walk():
            include = include_of(directive)
            if include and not is_glob(include[0]):
                names.add(posixpath.basename(include[0]))
    return {file.relpath for file in bundle if posixpath.basename(file.relpath) in names}


@dataclass(frozen=True)
class Config:
    """A whole config read from the bundle: one tree, the files it read, its includes."""

    top: Directive
    files: tuple[BundleFile, ...]
    includes: dict[str, str]


def read_config(bundle: Sequence[BundleFile], kind: str, main: BundleFile | None, prefix: str,
                distribution: tuple[str, ...], parse: Parser, include_of: IncludeOf) -> Config:
    """Read from ``main`` (a full config), or else from every ``kind`` file no other includes."""
    files = [file for file in bundle if file.kind == kind]
    reserved = named_by_includes(bundle, [parse(file) for file in files], include_of)
    reserved |= {main.relpath} if main else set()

    def resolver_factory() -> IncludeResolver:
        return IncludeResolver(bundle, kind, prefix, distribution, not_claimable=set(reserved))

    resolver = resolver_factory()
    reached: list[BundleFile] = []
    directives: list[Directive] = []
    for start in [main] if main else roots(files, parse, include_of, resolver_factory):
        directives.extend(expand(start, parse, include_of, resolver, reached))
    top = root(directives, Source((main or files[0]).relpath, 1))
    return Config(top, tuple(reached), dict(resolver.includes))
