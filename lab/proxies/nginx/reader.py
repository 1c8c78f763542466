"""Read a customer's nginx files: a full ``nginx.conf`` with its includes, or site files only.

Each file is parsed alone with ``crossplane`` (``single=True``); includes are resolved by
:mod:`lab.reproduce.tree` against the bundle, never against this machine's ``/etc/nginx``.
A file with a top-level ``http {}`` or ``events {}`` is a full config (``main_file``); with
none, every site file no other file includes is read as if included in ``http {}``.

Not handled: ``stream {}`` (TCP) servers, ``proxy_pass`` through variables or unix
sockets (kept as a route with no upstream), ``map``/``geo``-driven routing, a missing ``;``
before ``}`` (crossplane accepts what nginx rejects).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from urllib.parse import urlsplit

import crossplane  # type: ignore[import-untyped]

from lab.errors import LabError
from lab.reproduce.frontdoor import BitbucketClues, Route, VirtualServer, concrete_name, front_door
from lab.reproduce.model import BundleFile, Listener, ProxySetup, Source, TlsReference, Upstream
from lab.reproduce.tree import Directive, Parser, pick_main, read_config, root

CONF_PREFIX = "/etc/nginx"
"""Where relative ``include``, ``ssl_certificate`` paths start (nginx's conf prefix)."""
RUN_PREFIX = "/usr/share/nginx"
"""Where relative log, pid and temp paths start (``--prefix`` of Debian's and RHEL's nginx)."""

DISTRIBUTION = (
    "/etc/nginx/mime.types", "/etc/nginx/proxy_params", "/etc/nginx/fastcgi_params",
    "/etc/nginx/fastcgi.conf", "/etc/nginx/scgi_params", "/etc/nginx/uwsgi_params",
    "/etc/nginx/koi-utf", "/etc/nginx/koi-win", "/etc/nginx/win-utf",
    "/etc/nginx/modules-enabled/*.conf", "/etc/nginx/snippets/fastcgi-php.conf",
    "/etc/nginx/snippets/snakeoil.conf", "/usr/share/nginx/modules/*.conf",
)
"""Files Debian's nginx package ships (and RHEL's module directory): an include of one the
bundle lacks is fine."""

ROLE_OF_DIRECTIVE = {
    "ssl_certificate": "fullchain", "ssl_certificate_key": "key", "ssl_trusted_certificate": "ca",
    "ssl_client_certificate": "ca", "proxy_ssl_trusted_certificate": "ca", "ssl_dhparam": "dhparam",
}
_LOG_DIRECTIVES = ("error_log", "access_log", "pid")
_TEMP_DIRECTIVES = ("client_body_temp_path", "proxy_temp_path", "fastcgi_temp_path",
                    "uwsgi_temp_path", "scgi_temp_path")
_NOT_A_FILE = re.compile(r"^(?:off|stderr|syslog:|memory:|/dev/)")


def parse_nginx(bundle: Sequence[BundleFile], clues: BitbucketClues = BitbucketClues()) -> ProxySetup:
    """The nginx setup the bundle's nginx files describe (includes resolved)."""
    nginx_files = [file for file in bundle if file.kind == "nginx"]
    cache: dict[str, tuple[Directive, ...]] = {}

    def parse(file: BundleFile) -> tuple[Directive, ...]:
        if file.relpath not in cache:
            cache[file.relpath] = parse_file(file)
        return cache[file.relpath]

    mains = [file for file in nginx_files if any(d.key in ("http", "events") for d in parse(file))]
    main = pick_main(mains, ("/etc/nginx/nginx.conf",), "nginx")
    config = read_config(bundle, "nginx", main, CONF_PREFIX, DISTRIBUTION, parse, _include_of)
    top = config.top
    servers = [_virtual_server(server, _upstream_blocks(top)) for server in _servers(top)]
    snippets: tuple[BundleFile, ...] = ()
    if not servers and main is None:
        snippets = tuple(file for file in config.files if any(d.key == "location" for d in parse(file)))
        servers = [_snippet_server(top, snippets[0], clues)] if snippets else []
    if main and not any(server.routes for server in servers):
        _complain_about_orphans(main, nginx_files, config.files, parse)
    door = front_door(servers, clues)
    daemon = top.first("daemon")
    return ProxySetup(
        kind="nginx", files=config.files, main_file=main,
        server_names=door.server_names, listeners=door.listeners, route_prefix=door.route_prefix,
        upstreams=door.upstreams, neighbours=door.neighbours, includes=config.includes,
        tls_files=_tls_files(top) + (_wrapper_tls(snippets[0]) if snippets and door.listeners[0].tls else ()),
        snippets=tuple(file.relpath for file in snippets),
        directories=_directories(top), accounts=_accounts(top),
        daemonizes=bool(daemon and daemon.args[:1] and daemon.args[0].lower() == "on"),
        daemon_source=daemon.source if daemon else None,
        name_sources=door.name_sources, route_source=door.route_source,
    )


WRAPPER_SITE = "/etc/nginx/sites-enabled/lab-server-around-snippets.conf"
"""The lab's own ``server {}`` that includes a customer's location-only snippets."""
SNIPPETS_DIR = "/etc/nginx/lab-snippets"
"""Where those snippets go: a directory no ``include`` of Debian's nginx.conf reads."""
WRAPPER_TLS_DIR = "/etc/nginx/lab-wrapper"


def _snippet_server(top: Directive, first: BundleFile, clues: BitbucketClues) -> VirtualServer:
    """The server {} a location-only snippet lives in on the customer's machine, which the
    bundle lacks: it listens where Bitbucket's settings say users arrive (https on 443 when
    server.scheme is https), else on 80; no name (the public host comes from the settings)."""
    tls = clues.scheme == "https"
    port = clues.proxy_port or (443 if tls else 80)
    source = Source(first.relpath, 1)
    return VirtualServer(source=source, names=[], listeners=[Listener(port, tls, False, False, source)],
                         routes=_routes(top, _upstream_blocks(top)))


def _wrapper_tls(first: BundleFile) -> tuple[TlsReference, ...]:
    source = Source(first.relpath, 1)
    return (TlsReference("ssl_certificate", f"{WRAPPER_TLS_DIR}/fullchain.pem", "fullchain", source),
            TlsReference("ssl_certificate_key", f"{WRAPPER_TLS_DIR}/key.pem", "key", source))


def wrapper_site(proxy: ProxySetup, placed_snippets: Sequence[str], host: str) -> str:
    """The text of the lab's server {} around the customer's location-only snippets."""
    listener = proxy.listeners[0]
    lines = ["# Written by the lab: the customer's location snippets live in a server {} the bundle lacks.",
             "server {", f"    listen {listener.port}{' ssl' if listener.tls else ''};", f"    server_name {host};",
             "    client_max_body_size 0;  # no limit of the lab's own: a limit found is the snippet's"]
    if listener.tls:
        lines += [f"    ssl_certificate {WRAPPER_TLS_DIR}/fullchain.pem;", f"    ssl_certificate_key {WRAPPER_TLS_DIR}/key.pem;"]
    lines += [f"    include {path};" for path in placed_snippets]
    return "\n".join([*lines, "}", ""])


def parse_file(file: BundleFile) -> tuple[Directive, ...]:
    """One nginx file's directives as written (includes not followed)."""
    try:
        payload = crossplane.parse(str(file.path), catch_errors=False, single=True, comments=False,
                                   check_ctx=False, check_args=False)
    except Exception as error:  # crossplane raises its own NgxParserBaseException subclasses
        raise LabError(f"{file.relpath}: nginx syntax: {error}") from None
    for failure in payload.get("errors", []):
        message = re.sub(r" in \S+:\d+$", "", str(failure.get("error", "")))
        raise LabError(f"{file.relpath}:{failure.get('line', 0)}: nginx syntax: {message}")
    return tuple(_directive(item, file.relpath) for item in payload["config"][0]["parsed"])


def _directive(item: dict, relpath: str) -> Directive:
    block = item.get("block")
    return Directive(
        name=item["directive"], args=tuple(item.get("args", ())), source=Source(relpath, item["line"]),
        block=None if block is None else tuple(_directive(child, relpath) for child in block))


def _include_of(directive: Directive) -> tuple[str, bool] | None:
    return (directive.args[0], False) if directive.key == "include" and directive.args else None


def _complain_about_orphans(main: BundleFile, files: Sequence[BundleFile], reached: Sequence[BundleFile],
                            parse: Parser) -> None:
    """A full config with no proxying server while a site file lies unused: say so, since
    reproducing without it would test the wrong thing."""
    for file in files:
        if file not in reached and any(d.key == "server" for d in parse(file)):
            includes = ", ".join(d.args[0] for d in root(parse(main), Source(main.relpath, 1)).walk()
                                 if d.key == "include" and d.args) or "none"
            raise LabError(f"{file.relpath} is not included by {main.relpath} (its includes: {includes}): "
                           "send the site file under the path nginx.conf includes, e.g. etc/nginx/conf.d/")


def _servers(top: Directive) -> list[Directive]:
    servers = top.children("server")
    for http in top.children("http"):
        servers.extend(http.children("server"))
    return servers


def _upstream_blocks(top: Directive) -> dict[str, Directive]:
    blocks = top.children("upstream") + [u for http in top.children("http") for u in http.children("upstream")]
    return {block.args[0]: block for block in blocks if block.args}


def _virtual_server(server: Directive, upstream_blocks: dict[str, Directive]) -> VirtualServer:
    redirect = _redirect_scope(server)
    names = [(name, d.source) for d in server.children("server_name") for arg in d.args
             if (name := concrete_name(arg)) is not None]
    return VirtualServer(
        source=server.source, names=names, listeners=_listeners(server, redirect),
        routes=[] if redirect == "all" else _routes(server, upstream_blocks))


def _listeners(server: Directive, redirect: str | None) -> list[Listener]:
    ssl_on = any(d.args[:1] and d.args[0].lower() == "on" for d in server.children("ssl"))
    http2_on = any(d.args[:1] and d.args[0].lower() == "on" for d in server.children("http2"))
    listens = server.children("listen")
    if not listens:
        return [Listener(80, ssl_on, redirect == "all", http2_on, server.source)]
    listeners = []
    for listen in listens:
        port = _listen_port(listen.args[0]) if listen.args else None
        if port is None or "quic" in listen.args:
            continue
        tls = ssl_on or "ssl" in listen.args
        redirects = redirect == "all" or (redirect == "plain" and not tls)
        listeners.append(Listener(port, tls, redirects, http2_on or "http2" in listen.args, listen.source))
    return listeners


def _listen_port(address: str) -> int | None:
    """``443``, ``*:443``, ``[::]:443``, ``127.0.0.1:8080`` → port; ``localhost`` → 80; unix → None."""
    if address.startswith("unix:"):
        return None
    tail = address.rsplit("]", 1)[-1]
    port = tail.rsplit(":", 1)[-1] if ":" in tail else tail
    if port.isdigit():
        return int(port)
    return 80


def _redirect_scope(server: Directive) -> str | None:
    """"all" when the server sends every request to https (``return 301 https://…`` or
    ``rewrite ^ https://… permanent`` at server level, or a proxy-less ``location /`` doing
    so); "plain" when only its plain-HTTP listeners do (``if ($scheme = http) {…}``)."""
    if _redirects_to_https(server):
        return "all"
    for condition in server.children("if"):
        if any("$scheme" in arg or "$https" in arg for arg in condition.args) and _redirects_to_https(condition):
            return "plain"
    proxies = any(d.key == "proxy_pass" for d in server.walk())
    roots = [loc for loc in server.children("location") if _location_prefix(loc.args) == ""]
    if not proxies and roots and all(_redirects_to_https(loc) for loc in roots):
        return "all"
    return None


def _redirects_to_https(block: Directive) -> bool:
    for directive in block.children("return", "rewrite"):
        targets = directive.args[1:] if directive.key == "rewrite" else directive.args[-1:]
        if targets and targets[0].startswith("https://"):
            return True
    return False


def _routes(server: Directive, upstream_blocks: dict[str, Directive]) -> list[Route]:
    routes: list[Route] = []
    for location in server.children("location"):
        routes.extend(_location_routes(location, upstream_blocks))
    return routes


def _location_routes(location: Directive, upstream_blocks: dict[str, Directive]) -> list[Route]:
    routes: list[Route] = []
    passes = location.children("proxy_pass") + [
        d for wrapper in location.children("if", "limit_except") for d in wrapper.children("proxy_pass")]
    for proxy_pass in passes:  # `if ($goget) { proxy_pass …:7991; }` beside Bitbucket's: each is a route
        target = proxy_pass.args[0] if proxy_pass.args else ""
        routes.append(Route(_location_prefix(location.args), target,
                            _upstreams(target, proxy_pass.source, upstream_blocks), location.source))
    for nested in location.children("location"):
        routes.extend(_location_routes(nested, upstream_blocks))
    return routes


def _location_prefix(args: Sequence[str]) -> str:
    """``/bitbucket``, ``/bitbucket/``, ``^~ /bitbucket``, ``~ ^/bitbucket(/.*)?$`` →
    "/bitbucket"; ``/``, ``@named`` → ""."""
    if not args or args[-1].startswith("@"):
        return ""
    path = args[-1]
    if len(args) > 1 and args[0] in ("~", "~*"):
        path = re.split(r"[()\[\].*+?{|\\$]", path.lstrip("^"), maxsplit=1)[0]
    return path.rstrip("/")


def _upstreams(target: str, source: Source, upstream_blocks: dict[str, Directive]) -> tuple[Upstream, ...]:
    """``http://host:port[/uri]`` → one member; ``http://name`` of an ``upstream {}`` → its
    ``server`` lines; variables and unix sockets → none."""
    if "$" in target or "://unix:" in target or "://" not in target:
        return ()
    parts = urlsplit(target)
    scheme = parts.scheme.lower()
    block = upstream_blocks.get(parts.netloc)
    if block is None:
        host, port = _host_port(parts.netloc, 443 if scheme == "https" else 80)
        return (Upstream(scheme, host, port, source),)
    members = []
    for server in block.children("server"):
        if server.args and not server.args[0].startswith("unix:"):
            host, port = _host_port(server.args[0], 80)
            members.append(Upstream(scheme, host, port, server.source))
    return tuple(members)


def _host_port(netloc: str, default_port: int) -> tuple[str, int]:
    if netloc.startswith("["):
        host, _, rest = netloc[1:].partition("]")
        port = rest.lstrip(":")
    else:
        host, _, port = netloc.partition(":")
    return host, int(port) if port.isdigit() else default_port


def _tls_files(top: Directive) -> tuple[TlsReference, ...]:
    references: dict[tuple[str, str], TlsReference] = {}
    for directive in top.walk():
        role = ROLE_OF_DIRECTIVE.get(directive.key)
        if role and directive.args and not directive.args[0].startswith(("data:", "engine:")):
            path = posixpath.join(CONF_PREFIX, directive.args[0])
            references.setdefault((directive.key, path), TlsReference(directive.key, path, role, directive.source))
    return tuple(references.values())


def _directories(top: Directive) -> tuple[str, ...]:
    """Directories nginx expects to exist: of log and pid files, and temp paths."""
    directories: list[str] = []
    for directive in top.walk():
        if not directive.args or _NOT_A_FILE.match(directive.args[0]):
            continue
        path = posixpath.join(RUN_PREFIX, directive.args[0])
        if directive.key in _LOG_DIRECTIVES:
            path = posixpath.dirname(path)
        elif directive.key not in _TEMP_DIRECTIVES:
            continue
        if "$" not in path and path not in directories:
            directories.append(path)
    return tuple(directories)


def _accounts(top: Directive) -> tuple[str, ...]:
    accounts: list[str] = []
    for user in top.children("user"):
        accounts.extend(name for name in user.args if name not in accounts)
    return tuple(accounts)
