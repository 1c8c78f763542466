"""Which of a proxy's virtual servers is Bitbucket's front door.

A customer's proxy often serves more than Bitbucket (Jira on another ``server {}``, a
status page). Each parser describes every virtual server it found — nginx ``server {}``,
Apache ``<VirtualHost>``, HAProxy ``frontend``/``listen`` — as a :class:`VirtualServer`;
:func:`front_door` picks the route to Bitbucket and the servers that carry it:

1. routes of servers with a TLS listener come first, then the others, in file order;
2. Bitbucket's upstream is, in this order (:func:`bitbucket_route`): the one
   ``--bitbucket-upstream`` names; the one Bitbucket's own settings point at (its port, its
   context path); the one whose route or host names bitbucket, stash, git or scm; the one on
   Bitbucket's ports (7990, 8443, 7999); the only one. Two or more equally good → the
   bundle is ambiguous: :class:`LabError` listing them and the option that settles it;
3. Bitbucket's servers are those routing to that same target; its prefix is the shortest
   route to it in the first of them;
4. servers that only redirect to https join when they share a name with Bitbucket's
   servers or have no concrete name.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from lab.errors import LabError
from lab.hostnames import ascii_host
from lab.reproduce.model import Listener, Neighbour, Source, Upstream

_NAMES_BITBUCKET = re.compile(r"(?:^|[^a-z0-9])(?:bitbucket|stash|git|scm)(?:$|[^a-z0-9])", re.I)
"""A word of a route's path, target or upstream host that names Bitbucket (``git`` alone: not gitlab or gitea)."""
BITBUCKET_PORTS = (7990, 8443, 7999)
"""Bitbucket's default HTTP port, the TLS port Atlassian's docs use, and its SSH port."""


@dataclass(frozen=True)
class BitbucketClues:
    """What outside the proxy config says which upstream is Bitbucket: ``--bitbucket-upstream``
    (``given``: host, port) and Bitbucket's own settings (its connector ``port`` and
    ``context_path`` when the bundle sets them)."""

    given: tuple[str, int] | None = None
    port: int | None = None
    context_path: str | None = None
    scheme: str | None = None       # server.scheme: where users arrive, for a snippet with no server of its own
    proxy_port: int | None = None   # server.proxy-port, likewise


@dataclass(frozen=True)
class Route:
    """A path prefix the server hands to an upstream (``location /bitbucket`` + ``proxy_pass``)."""

    prefix: str                     # "/bitbucket", "" for everything
    target: str                     # the upstream as written: URL, upstream/balancer/backend name
    upstreams: tuple[Upstream, ...]
    source: Source                  # the location / ProxyPass / use_backend line


@dataclass
class VirtualServer:
    """One server block / vhost / frontend as the parser read it."""

    source: Source
    names: list[tuple[str, Source]] = field(default_factory=list)
    listeners: list[Listener] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)

    @property
    def serves_tls(self) -> bool:
        return any(listener.tls and not listener.redirects_to_https for listener in self.listeners)

    @property
    def only_redirects(self) -> bool:
        return bool(self.listeners) and not self.routes and all(
            listener.redirects_to_https for listener in self.listeners)


@dataclass(frozen=True)
class FrontDoor:
    """What the chosen servers say, ready for ``ProxySetup``."""

    server_names: tuple[str, ...]
    name_sources: dict[str, Source]
    listeners: tuple[Listener, ...]
    route_prefix: str
    route_source: Source | None
    upstreams: tuple[Upstream, ...]
    neighbours: tuple[Neighbour, ...] = ()


def front_door(servers: Sequence[VirtualServer], clues: BitbucketClues = BitbucketClues()) -> FrontDoor:
    """Bitbucket's front door among ``servers`` (rules in the module docstring)."""
    ordered = [s for s in servers if s.serves_tls] + [s for s in servers if not s.serves_tls]
    routes = [route for server in ordered for route in server.routes]
    chosen = bitbucket_route(routes, clues)
    if chosen is None:
        return _assemble(list(servers), None)
    carriers = [s for s in ordered if any(r.target == chosen.target for r in s.routes)]
    first_routes = [r for r in carriers[0].routes if r.target == chosen.target]
    route = min(first_routes, key=lambda r: len(r.prefix))
    names = {name for server in carriers for name, _ in server.names}
    redirectors = [s for s in servers if s.only_redirects and s not in carriers
                   and (not s.names or names & {name for name, _ in s.names})]
    door = _assemble(carriers + redirectors, route)
    return dataclasses.replace(door, neighbours=neighbours(ordered, chosen))


def neighbours(servers: Sequence[VirtualServer], bitbucket: Route) -> tuple[Neighbour, ...]:
    """The applications of every route that does not lead where Bitbucket's does, one per
    upstream host and port (Jira at /jira and at /secure is one neighbour)."""
    found: dict[tuple[str, int], Neighbour] = {}
    bitbucket_at = {(u.host, u.port) for u in bitbucket.upstreams}
    for server in servers:
        site = " ".join(name for name, _ in server.names)
        for route in (route for route in server.routes if route.target != bitbucket.target):
            for upstream in route.upstreams:
                if (upstream.host, upstream.port) not in bitbucket_at:
                    found.setdefault((upstream.host, upstream.port),
                                     Neighbour(_app(route, upstream, site), upstream, route.prefix))
    return tuple(found.values())


_APPS = (("jira", "Jira"), ("confluence", "Confluence"), ("wiki", "Confluence"), ("bamboo", "Bamboo"),
         ("crowd", "Crowd"), ("fisheye", "Fisheye"), ("crucible", "Fisheye"), ("jenkins", "Jenkins"))
_APP_PORTS = {8080: "Jira", 8090: "Confluence", 8085: "Bamboo", 8095: "Crowd", 8060: "Fisheye"}


def _app(route: Route, upstream: Upstream, site: str = "") -> str:
    """What the application probably is: by its route's words, else by the names of the site
    that serves it (``jira.example.com``), else by its host's name (an ``artifactory`` host is
    Artifactory), else by Atlassian's default ports, else its host."""
    named = _named(f"{route.prefix} {route.target} {upstream.host}") or _named(site)
    if named:
        return named
    if not upstream.is_ip and not upstream.is_local:
        return upstream.host.split(".", 1)[0]
    return _APP_PORTS.get(upstream.port, upstream.host)


def _named(words: str) -> str | None:
    return next((app for word, app in _APPS if word in words.lower()), None)


def _assemble(servers: list[VirtualServer], route: Route | None) -> FrontDoor:
    name_sources: dict[str, Source] = {}
    for server in servers:
        for name, source in server.names:
            name_sources.setdefault(name, source)
    return FrontDoor(
        server_names=tuple(name_sources),
        name_sources=name_sources,
        listeners=merge_listeners([listener for server in servers for listener in server.listeners]),
        route_prefix=route.prefix if route else "",
        route_source=route.source if route else None,
        upstreams=route.upstreams if route else (),
    )


def merge_listeners(listeners: Sequence[Listener]) -> tuple[Listener, ...]:
    """One listener per port (``listen 443 ssl`` + ``listen [::]:443 ssl`` are one door):
    TLS or HTTP/2 if any says so, redirecting only if all do; the first source is kept."""
    by_port: dict[int, Listener] = {}
    for listener in listeners:
        known = by_port.get(listener.port)
        if known is None:
            by_port[listener.port] = listener
            continue
        by_port[listener.port] = Listener(
            port=listener.port, tls=known.tls or listener.tls,
            redirects_to_https=known.redirects_to_https and listener.redirects_to_https,
            http2=known.http2 or listener.http2, source=known.source)
    return tuple(by_port.values())


def bitbucket_route(routes: Sequence[Route], clues: BitbucketClues = BitbucketClues()) -> Route | None:
    """The route to Bitbucket among ``routes`` (in preference order), by the first rule that
    tells one upstream from the others (module docstring, rule 2)."""
    candidates: dict[tuple[tuple[str, int], ...], Route] = {}
    for route in routes:
        if route.upstreams:
            candidates.setdefault(_place(route), route)
    if not candidates:
        return routes[0] if routes else None
    if clues.given is not None:
        given = [route for route in candidates.values() if _is_given(route, clues.given)]
        if not given:
            raise LabError(f"--bitbucket-upstream {clues.given[0]}:{clues.given[1]} is none of the proxy's upstreams: "
                           + _listed(list(candidates.values())))
        return given[0]
    rules = (
        lambda route: clues.port is not None and any(u.port == clues.port for u in route.upstreams),
        lambda route: clues.context_path is not None and route.prefix == clues.context_path.rstrip("/"),
        _names_bitbucket,
        _on_bitbucket_port,
    )
    for rule in rules:
        matching = [route for route in candidates.values() if rule(route)]
        if len(matching) == 1:
            return matching[0]
        if len(matching) > 1:
            raise _ambiguous(matching)
    if len(candidates) == 1:
        return next(iter(candidates.values()))
    raise _ambiguous(list(candidates.values()))


def _place(route: Route) -> tuple[tuple[str, int], ...]:
    """Where a route leads, loopback names made one (``localhost:7990`` is ``127.0.0.1:7990``)."""
    return tuple(sorted(("localhost" if u.is_local else u.host.lower(), u.port) for u in route.upstreams))


def _is_given(route: Route, given: tuple[str, int]) -> bool:
    host, port = given
    local = host in ("localhost", "::1") or host.startswith("127.")
    return any(u.port == port and (u.host.lower() == host.lower() or (local and u.is_local)) for u in route.upstreams)


def _names_bitbucket(route: Route) -> bool:
    """The route's path names Bitbucket, or its target or host does while its path names no
    other application (``/bamboo`` → ``bitbucket:8085`` is Bamboo on Bitbucket's host)."""
    if _NAMES_BITBUCKET.search(route.prefix):
        return True
    members = " ".join(u.host for u in route.upstreams)
    return not _names_another_app(route) and bool(_NAMES_BITBUCKET.search(f"{route.target} {members}"))


def _on_bitbucket_port(route: Route) -> bool:
    return not _names_another_app(route) and any(u.port in BITBUCKET_PORTS for u in route.upstreams)


def _names_another_app(route: Route) -> bool:
    return any(word in route.prefix.lower() for word, _ in _APPS)


def _ambiguous(routes: Sequence[Route]) -> LabError:
    return LabError("the proxy sends traffic to more than one upstream that could be Bitbucket: "
                    + _listed(routes) + "; pass --bitbucket-upstream HOST:PORT to say which")


def _listed(routes: Sequence[Route]) -> str:
    return ", ".join(f"{', '.join(f'{u.host}:{u.port}' for u in route.upstreams)} ({route.prefix or '/'} at "
                     f"{route.source})" for route in routes)


def concrete_name(name: str) -> str | None:
    """A name users can type, lower-cased without scheme or ``:port``; None for ``_``,
    ``""``, wildcards (``*.x``, ``x.*``, ``.x``), ``~regex`` names and variables."""
    name = name.strip().strip('"').lower()
    if "://" in name:
        name = name.split("://", 1)[1]
    name = name.split("/", 1)[0]
    if name.count(":") == 1:
        name = name.split(":", 1)[0]
    if not name or name == "_" or name.startswith("~") or "*" in name or name.startswith("."):
        return None
    if not name.isascii() and "$" not in name:
        try:
            name = ascii_host(name)  # bücher.example → xn--bcher-kva.example, as clients send it
        except ValueError:
            return None
    if "$" in name or "%" in name or not re.fullmatch(r"[a-z0-9.\-\[\]:]+", name):
        return None
    return name
