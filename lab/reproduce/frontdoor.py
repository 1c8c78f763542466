"""Which of a proxy's virtual servers is Bitbucket's front door.

A customer's proxy often serves more than Bitbucket (Jira on another ``server {}``, a
status page). Each parser describes every virtual server it found — nginx ``server {}``,
Apache ``<VirtualHost>``, HAProxy ``frontend``/``listen`` — as a :class:`VirtualServer`;
:func:`front_door` picks the route to Bitbucket and the servers that carry it:

1. routes of servers with a TLS listener come first, then the others, in file order;
2. among them the first whose target looks like Bitbucket (``bitbucket``/``stash`` in its
   name, or port 7990/7991/8443 — see ``_LOOKS_LIKE_BITBUCKET``) wins, else the first route;
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

from lab.hostnames import ascii_host
from lab.reproduce.model import Listener, Neighbour, Source, Upstream

_LOOKS_LIKE_BITBUCKET = re.compile(r"bitbucket|stash|:79(?:90|91)\b|:8443\b", re.I)


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


def front_door(servers: Sequence[VirtualServer]) -> FrontDoor:
    """Bitbucket's front door among ``servers`` (rules in the module docstring)."""
    ordered = [s for s in servers if s.serves_tls] + [s for s in servers if not s.serves_tls]
    routes = [route for server in ordered for route in server.routes]
    chosen = next((r for r in routes if _looks_like_bitbucket(r)), routes[0] if routes else None)
    if chosen is None:
        return _assemble(list(servers), None)
    carriers = [s for s in ordered if any(r.target == chosen.target for r in s.routes)]
    first_routes = [r for r in carriers[0].routes if r.target == chosen.target]
    route = min(first_routes, key=lambda r: len(r.prefix))
    names = {name for server in carriers for name, _ in server.names}
    redirectors = [s for s in servers if s.only_redirects and s not in carriers
                   and (not s.names or names & {name for name, _ in s.names})]
    door = _assemble(carriers + redirectors, route)
    return dataclasses.replace(door, neighbours=neighbours(routes, chosen))


def neighbours(routes: Sequence[Route], bitbucket: Route) -> tuple[Neighbour, ...]:
    """The applications of every route that does not lead where Bitbucket's does, one per
    upstream host and port (Jira at /jira and at /secure is one neighbour)."""
    found: dict[tuple[str, int], Neighbour] = {}
    bitbucket_at = {(u.host, u.port) for u in bitbucket.upstreams}
    for route in routes:
        if route.target == bitbucket.target:
            continue
        for upstream in route.upstreams:
            if (upstream.host, upstream.port) not in bitbucket_at:
                found.setdefault((upstream.host, upstream.port), Neighbour(_app(route, upstream), upstream, route.prefix))
    return tuple(found.values())


_APPS = (("jira", "Jira"), ("confluence", "Confluence"), ("wiki", "Confluence"), ("bamboo", "Bamboo"),
         ("crowd", "Crowd"), ("fisheye", "Fisheye"), ("crucible", "Fisheye"), ("jenkins", "Jenkins"))
_APP_PORTS = {8080: "Jira", 8090: "Confluence", 8085: "Bamboo", 8095: "Crowd", 8060: "Fisheye"}


def _app(route: Route, upstream: Upstream) -> str:
    """What the application probably is: by its route's words, else by its host's name (an
    ``artifactory`` host is Artifactory), else by Atlassian's default ports, else its host."""
    words = f"{route.prefix} {route.target} {upstream.host}".lower()
    named = next((app for word, app in _APPS if word in words), None)
    if named:
        return named
    if not upstream.is_ip and not upstream.is_local:
        return upstream.host.split(".", 1)[0]
    return _APP_PORTS.get(upstream.port, upstream.host)


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


def _looks_like_bitbucket(route: Route) -> bool:
    members = " ".join(f"{u.host}:{u.port}" for u in route.upstreams)
    return bool(_LOOKS_LIKE_BITBUCKET.search(f"{route.target} {members}"))


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
