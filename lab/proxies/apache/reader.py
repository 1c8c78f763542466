"""Read a customer's Apache httpd files: ``apache2.conf``/``httpd.conf`` with includes, or vhosts only.

No maintained Python parser for httpd's syntax exists, so :func:`tokenize` is a small
one: full-line ``#`` comments, ``\\`` line continuations, double- and single-quoted
arguments, ``<Section args>`` … ``</Section>`` nesting, ``${VAR}`` from Debian's
``envvars`` (or the bundle's copy) and ``Define``. ``<IfModule>``, ``<IfDefine>``,
``<IfVersion>`` are read as if true (their content kept in place), except
``<IfModule !module>`` which is dropped: the lab assumes the modules are loaded.

Relative paths (``Include``, ``ErrorLog logs/error_log``, certificates) start at
``ServerRoot``: the file's own, else ``/etc/httpd`` when the bundle looks like RHEL
(``conf.d/``, ``httpd.conf``, ``conf.modules.d``), else Debian's ``/etc/apache2``. A
``ServerRoot "/usr/local/apache2"`` is the official ``httpd`` image's layout: the lab runs
its own build of that layout (``lab/proxies/apache/image-official``).

Not handled: ``mod_macro`` (``Use``), ``<If>`` expressions (read as if true),
``RewriteMap``-driven routing, ``.htaccess`` files.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from lab.errors import LabError
from lab.reproduce.frontdoor import BitbucketClues, Route, VirtualServer, concrete_name, front_door
from lab.reproduce.model import BundleFile, CustomerSetup, Listener, ProxySetup, Source, TlsReference, Upstream
from lab.reproduce.tree import Directive, pick_main, read_config, root

DEBIAN_ROOT, RHEL_ROOT, OFFICIAL_ROOT = "/etc/apache2", "/etc/httpd", "/usr/local/apache2"
DISTRIBUTION = {
    DEBIAN_ROOT: ("/etc/apache2/mods-enabled/*.load", "/etc/apache2/mods-enabled/*.conf",
                  "/etc/apache2/conf-enabled/*.conf", "/etc/apache2/ports.conf", "/etc/apache2/envvars",
                  "/etc/apache2/magic", "/etc/apache2/mods-available/*"),
    RHEL_ROOT: ("/etc/httpd/conf.modules.d/*.conf", "/etc/mime.types", "/etc/httpd/conf/magic"),
    OFFICIAL_ROOT: ("/usr/local/apache2/conf/extra/*", "/usr/local/apache2/conf/mime.types",
                    "/usr/local/apache2/conf/magic"),
}
"""Files each distribution's package ships: an include of one the bundle lacks is fine."""

DEBIAN_ENVVARS = {
    "APACHE_RUN_USER": "www-data", "APACHE_RUN_GROUP": "www-data", "APACHE_RUN_DIR": "/var/run/apache2",
    "APACHE_PID_FILE": "/var/run/apache2/apache2.pid", "APACHE_LOCK_DIR": "/var/lock/apache2",
    "APACHE_LOG_DIR": "/var/log/apache2", "APACHE_CONFDIR": "/etc/apache2",
}
"""What Debian's ``/etc/apache2/envvars`` sets, for ``${APACHE_LOG_DIR}`` and friends."""

UNSUPPORTED_MODULES: tuple[tuple[str, str], ...] = (
    ("jk", "mod_jk"), ("wsgi", "mod_wsgi"), ("sec", "mod_security2"), ("krb", "mod_auth_kerb"),
    ("gssapi", "mod_auth_gssapi"), ("mellon", "mod_auth_mellon"), ("oidc", "mod_auth_openidc"),
    ("passenger", "mod_passenger"), ("perl", "mod_perl"), ("php_", "mod_php"), ("shib", "mod_shib"),
    ("fcgid", "mod_fcgid"), ("xsendfile", "mod_xsendfile"), ("rpaf", "mod_rpaf"), ("dos", "mod_evasive"),
    ("cas", "mod_auth_cas"), ("modpagespeed", "mod_pagespeed"), ("nss", "mod_nss"),
)
"""Directive name prefixes (lower case) of modules Debian's apache2 package does not ship."""

_UNSUPPORTED_LOADMODULE = re.compile(
    r"^(jk|wsgi|security2|auth_kerb|auth_gssapi|auth_mellon|auth_openidc|passenger|perl|php\d*|"
    r"mod_shib|fcgid|xsendfile|rpaf|evasive\d*|auth_cas|pagespeed|nss)(?:_module)?$", re.I)
_TRANSPARENT = ("ifmodule", "ifdefine", "ifversion", "iffile", "ifdirective", "ifsection", "if", "elseif", "else")
_TLS_ROLES = {"sslcertificatekeyfile": "key", "sslcertificatechainfile": "chain",
              "sslcacertificatefile": "ca", "sslproxycacertificatefile": "ca"}
_REDIRECTS = ("redirect", "redirectpermanent", "redirectmatch", "redirecttemp")


def parse_apache(bundle: Sequence[BundleFile], clues: BitbucketClues = BitbucketClues()) -> ProxySetup:
    """The Apache setup the bundle's Apache files describe (includes resolved)."""
    files = [file for file in bundle if file.kind == "apache"]
    server_root = detect_server_root(files)
    variables = dict(DEBIAN_ENVVARS) if server_root == DEBIAN_ROOT else {}
    envvars = _envvars_file(bundle)
    if envvars:
        variables.update(read_envvars(envvars.path.read_text(encoding="utf-8-sig")))
    cache: dict[str, tuple[Directive, ...]] = {}

    def parse(file: BundleFile) -> tuple[Directive, ...]:
        if file.relpath not in cache:
            cache[file.relpath] = tokenize(file.path.read_text(encoding="utf-8-sig"), file.relpath, variables)
        return cache[file.relpath]

    main = pick_main([f for f in files if _is_main(parse(f))],
                     (f"{server_root}/apache2.conf", f"{server_root}/conf/httpd.conf"), "Apache")
    distribution = DISTRIBUTION.get(server_root, DISTRIBUTION[DEBIAN_ROOT])
    config = read_config(bundle, "apache", main, server_root, distribution, parse, _include_of)
    top = config.top
    door = front_door(_virtual_servers(top), clues)
    return ProxySetup(
        kind="apache", files=config.files + ((envvars,) if envvars else ()), main_file=main,
        server_names=door.server_names, listeners=door.listeners, route_prefix=door.route_prefix,
        upstreams=door.upstreams, neighbours=door.neighbours, tls_files=_tls_files(top, server_root), includes=config.includes,
        directories=_directories(top, server_root), accounts=_accounts(top),
        name_sources=door.name_sources, route_source=door.route_source,
    )


def tokenize(text: str, relpath: str, variables: dict[str, str] | None = None) -> tuple[Directive, ...]:
    """One Apache file's directives, sections nested (includes not followed).

    ``variables`` expands ``${NAME}`` and is updated by ``Define``; a section left open or
    closed twice is a :class:`LabError` naming ``file:line``, as ``apachectl -t`` would.
    """
    variables = {} if variables is None else variables
    stack: list[tuple[str, tuple[str, ...], Source, list[Directive]]] = [("", (), Source(relpath, 0), [])]
    for line_number, line in _logical_lines(text):
        source = Source(relpath, line_number)
        line = re.sub(r"\$\{(\w+)\}", lambda m: variables.get(m.group(1), m.group(0)), line)
        if line.startswith("</"):
            name = line[2:].rstrip(">").strip()
            if len(stack) == 1 or stack[-1][0].lower() != name.lower():
                raise LabError(f"{source}: </{name}> closes no open <{name}> section")
            _close_section(stack)
        elif line.startswith("<"):
            name, *args = _split_args(line[1:].rstrip().rstrip(">"))
            stack.append((name, tuple(args), source, []))
        else:
            name, *args = _split_args(line)
            if name.lower() == "define" and args:
                variables[args[0]] = args[1] if len(args) > 1 else ""
            stack[-1][3].append(Directive(name, tuple(args), source))
    if len(stack) > 1:
        raise LabError(f"{stack[-1][2]}: <{stack[-1][0]}> is never closed")
    return tuple(stack[0][3])


def _close_section(stack: list[tuple[str, tuple[str, ...], Source, list[Directive]]]) -> None:
    name, args, source, children = stack.pop()
    if name.lower() in _TRANSPARENT:
        if not (name.lower() == "ifmodule" and args[:1] and args[0].startswith("!")):
            stack[-1][3].extend(_optional_includes(children) if name.lower() == "ifmodule" else children)
        return
    stack[-1][3].append(Directive(name, args, source, tuple(children)))


def _optional_includes(children: list[Directive]) -> list[Directive]:
    """An ``Include`` inside ``<IfModule mod>`` is read only when that module is loaded: a
    file the bundle lacks there is no reason to refuse (Apache itself says so if it is)."""
    return [Directive("IncludeOptional", child.args, child.source) if child.key == "include" else child
            for child in children]


def _logical_lines(text: str) -> list[tuple[int, str]]:
    lines: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        start = start or number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append((start, (pending + stripped).strip()))
        pending, start = "", 0
    if pending.strip():
        lines.append((start, pending.strip()))
    return lines


def _split_args(text: str) -> list[str]:
    """Words of a directive line; ``"..."`` and ``'...'`` keep spaces (``\\"`` escapes)."""
    words = re.findall(r'"((?:\\.|[^"\\])*)"|\'((?:\\.|[^\'\\])*)\'|(\S+)', text)
    result = [next(part for part in word if part) if any(word) else "" for word in words]
    return [re.sub(r'\\(["\'])', r"\1", word) for word in result] or [""]


def read_envvars(text: str) -> dict[str, str]:
    """``export NAME=value`` lines of Debian's ``envvars``, ``$NAME`` expanded in order."""
    values: dict[str, str] = dict(DEBIAN_ENVVARS)
    for name, value in re.findall(r"^\s*export\s+(\w+)=(.*)$", text, re.M):
        value = value.strip().strip("'\"")
        values[name] = re.sub(r"\$\{?(\w+)\}?", lambda m: values.get(m.group(1), ""), value)
    return values


def loads_mpm(proxy: ProxySetup, server_root: str) -> bool:
    """Whether the customer's Apache files (under ``server_root``) load an MPM (``LoadModule
    mpm_event_module …``). Debian's apache2.conf gets one from mods-enabled; an httpd.conf of the
    official image before 2.4.17-ish loads none, because that image built its MPM in."""
    return proxy.kind != "apache" or server_root != OFFICIAL_ROOT or any(
        re.search(r"^\s*LoadModule\s+mpm_\w+", file.path.read_text(encoding="utf-8-sig"), re.M | re.I)
        for file in proxy.files)


def detect_server_root(files: Sequence[BundleFile]) -> str:
    """``ServerRoot`` as the files say, else RHEL's or Debian's by the bundle's look."""
    looks_rhel = False
    for file in files:
        text = file.path.read_text(encoding="utf-8-sig")
        match = re.search(r'^\s*ServerRoot\s+"?([^"\s]+)', text, re.M | re.I)
        if match:
            return match.group(1).rstrip("/")
        parts = file.relpath.split("/")
        looks_rhel |= "conf.d" in parts[:-1] or "httpd" in parts[:-1] or parts[-1] == "httpd.conf"
        looks_rhel |= "conf.modules.d" in text
    return RHEL_ROOT if looks_rhel else DEBIAN_ROOT


def unsupported_directives(setup: CustomerSetup | ProxySetup) -> list[tuple[str, str, Source]]:
    """Directives (and ``LoadModule`` lines) of modules Debian's apache2 package lacks:
    ``[("JkMount", "mod_jk", Source)]`` → "JkMount needs mod_jk, which Debian's apache2 does
    not ship". Empty for other proxies."""
    proxy = setup.proxy if isinstance(setup, CustomerSetup) else setup
    if proxy is None or proxy.kind != "apache":
        return []
    found: list[tuple[str, str, Source]] = []
    for file in proxy.files:
        if file.kind not in ("apache", "text") or _is_envvars(file):
            continue
        for directive in root(tokenize(file.path.read_text(encoding="utf-8-sig"), file.relpath),
                              Source(file.relpath, 0)).walk():
            module = _missing_module(directive)
            if module:
                name = f"LoadModule {directive.args[0]}" if directive.key == "loadmodule" else directive.name
                found.append((name, module, directive.source))
    return found


def _missing_module(directive: Directive) -> str | None:
    if directive.key == "loadmodule":
        match = _UNSUPPORTED_LOADMODULE.match(directive.args[0]) if directive.args else None
        return f"mod_{match.group(1).removeprefix('mod_')}" if match else None
    return next((module for prefix, module in UNSUPPORTED_MODULES if directive.key.startswith(prefix)), None)


def _include_of(directive: Directive) -> tuple[str, bool] | None:
    if directive.key in ("include", "includeoptional") and directive.args:
        return directive.args[0], directive.key == "includeoptional"
    return None


def _is_main(directives: Sequence[Directive]) -> bool:
    """A full config: ServerRoot, LoadModule, User or PidFile at top level, or an include
    of the module directories."""
    for directive in directives:
        if directive.key in ("serverroot", "loadmodule", "user", "pidfile"):
            return True
        if _include_of(directive) and re.search(r"mods-enabled|conf\.modules\.d", directive.args[0]):
            return True
    return False


def _envvars_file(bundle: Sequence[BundleFile]) -> BundleFile | None:
    return next((file for file in bundle if file.kind == "text" and _is_envvars(file)), None)


def _is_envvars(file: BundleFile) -> bool:
    return bool(re.search(r"^\s*export\s+APACHE_\w+=", file.path.read_text(encoding="utf-8-sig"), re.M))


def _virtual_servers(top: Directive) -> list[VirtualServer]:
    """Every ``<VirtualHost>``, plus the main server when it listens on ports no vhost takes."""
    balancers = _balancers(top)
    vhosts = top.children("VirtualHost")
    protocols = top.first("Protocols")
    global_h2 = bool(protocols and "h2" in protocols.args)
    global_tls = any(d.args[:1] and d.args[0].lower() == "on" for d in top.children("SSLEngine"))
    servers = [_vhost(vhost, balancers, global_h2, global_tls) for vhost in vhosts]
    taken = {listener.port for server in servers for listener in server.listeners}
    main = VirtualServer(source=top.source, names=_names(top), routes=_routes(top, balancers))
    for listen in top.children("Listen"):
        port = _port(listen.args[0]) if listen.args else None
        if port is not None and port not in taken:
            tls = global_tls or listen.args[-1:] == ("https",)
            main.listeners.append(Listener(port, tls, False, global_h2, listen.source))
    if not vhosts and not main.listeners:
        main.listeners.append(Listener(80, global_tls, False, global_h2, top.source))
    return servers + ([main] if main.listeners else [])


def _vhost(vhost: Directive, balancers: dict[str, tuple[Upstream, ...]], global_h2: bool,
           global_tls: bool) -> VirtualServer:
    engine = vhost.first("SSLEngine")
    tls = engine.args[0].lower() == "on" if engine and engine.args else global_tls
    protocols = vhost.first("Protocols")
    http2 = "h2" in protocols.args if protocols else global_h2
    routes = _routes(vhost, balancers)
    redirects = not routes and _redirects_to_https(vhost)
    listeners = [Listener(port, tls, redirects, http2, vhost.source)
                 for port in dict.fromkeys(_port(address) or 80 for address in vhost.args)]
    return VirtualServer(source=vhost.source, names=_names(vhost), listeners=listeners, routes=routes)


def _names(scope: Directive) -> list[tuple[str, Source]]:
    return [(name, d.source) for key in ("ServerName", "ServerAlias") for d in scope.children(key)
            for arg in d.args if (name := concrete_name(arg)) is not None]


def _port(address: str) -> int | None:
    """``*:443``, ``[::]:443``, ``443``, ``_default_:443`` → 443; ``*`` → None."""
    tail = address.rsplit("]", 1)[-1].rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _redirects_to_https(scope: Directive) -> bool:
    for directive in scope.walk():
        if directive.key in _REDIRECTS and any(arg.startswith("https://") for arg in directive.args):
            return True
        if directive.key == "rewriterule" and len(directive.args) >= 2 and directive.args[1].startswith("https://"):
            flags = directive.args[2].upper() if len(directive.args) > 2 else ""
            if re.search(r"[\[,](?:R|REDIRECT)(?:=\w+)?[\],]", flags):
                return True
    return False


def _routes(scope: Directive, balancers: dict[str, tuple[Upstream, ...]]) -> list[Route]:
    """``ProxyPass /bitbucket URL``, ``ProxyPassMatch ^/bitbucket(.*) URL``, a bare
    ``ProxyPass URL`` in ``<Location /bitbucket>``, ``RewriteRule ^/x(.*) URL [P]``."""
    routes: list[Route] = []
    for directive in scope.block or ():
        if directive.key in ("proxypass", "proxypassmatch") and len(directive.args) >= 2:
            prefix = _literal_prefix(directive.args[0]) if directive.key == "proxypassmatch" else directive.args[0]
            routes.extend(_route(prefix, directive.args[1], directive.source, balancers))
        elif directive.key == "rewriterule" and len(directive.args) >= 3 \
                and re.search(r"[\[,](?:P|PROXY)[\],]", directive.args[2].upper()):
            routes.extend(_route(_literal_prefix(directive.args[0]), directive.args[1], directive.source, balancers))
        elif directive.key in ("location", "locationmatch") and directive.args:
            prefix = directive.args[-1] if directive.key == "location" else _literal_prefix(directive.args[-1])
            for inner in directive.children("ProxyPass"):
                if inner.args and ("://" in inner.args[0] or inner.args[0] == "!"):
                    routes.extend(_route(prefix, inner.args[0], directive.source, balancers))
    return routes


def _route(prefix: str, target: str, source: Source, balancers: dict[str, tuple[Upstream, ...]]) -> list[Route]:
    if target == "!":
        return []
    return [Route(prefix.rstrip("/"), target, _upstreams(target, source, balancers), source)]


def _literal_prefix(regex: str) -> str:
    return re.split(r"[()\[\].*+?{|\\$]", regex.lstrip("^"), maxsplit=1)[0]


def _upstreams(target: str, source: Source, balancers: dict[str, tuple[Upstream, ...]]) -> tuple[Upstream, ...]:
    if target.lower().startswith("balancer://"):
        return balancers.get(_balancer_name(target), ())
    upstream = _upstream(target, source)
    return (upstream,) if upstream else ()


def _upstream(url: str, source: Source) -> Upstream | None:
    """``http://host:7990/bitbucket`` → Upstream; ``unix:/sock|http://localhost/`` → localhost."""
    url = url.split("|", 1)[-1]
    if "://" not in url or "$" in url:
        return None
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    default = {"https": 443, "wss": 443, "ajp": 8009}.get(scheme, 80)
    try:
        port = parts.port or default
    except ValueError:
        port = default
    return Upstream(scheme, parts.hostname or "", port, source)


def _balancer_name(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[0].lower()


def _balancers(top: Directive) -> dict[str, tuple[Upstream, ...]]:
    """``<Proxy balancer://name>`` blocks (and top-level ``BalancerMember balancer://name URL``)."""
    members: dict[str, list[Upstream]] = {}
    for directive in top.walk():
        if directive.key == "proxy" and directive.args and directive.args[0].lower().startswith("balancer://"):
            for member in directive.children("BalancerMember"):
                upstream = _upstream(member.args[0], member.source) if member.args else None
                if upstream:
                    members.setdefault(_balancer_name(directive.args[0]), []).append(upstream)
        elif directive.key == "balancermember" and len(directive.args) > 1 and "://" in directive.args[1] \
                and directive.args[0].lower().startswith("balancer://"):
            upstream = _upstream(directive.args[1], directive.source)
            if upstream:
                members.setdefault(_balancer_name(directive.args[0]), []).append(upstream)
    return {name: tuple(found) for name, found in members.items()}


def _tls_files(top: Directive, server_root: str) -> tuple[TlsReference, ...]:
    """TLS paths by server scope: ``SSLCertificateFile`` is a fullchain unless its own
    scope (main server or vhost) also names an ``SSLCertificateChainFile``."""
    scopes = [[d for d in top.block or () if d.key != "virtualhost"]] + [v.walk() for v in top.children("VirtualHost")]
    references: dict[tuple[str, str], TlsReference] = {}
    for directives in scopes:
        has_chain = any(d.key == "sslcertificatechainfile" for d in directives)
        for directive in directives:
            role = "leaf" if has_chain else "fullchain"
            role = role if directive.key == "sslcertificatefile" else _TLS_ROLES.get(directive.key, "")
            if role and directive.args:
                path = posixpath.join(server_root, directive.args[0])
                references.setdefault((directive.key, path),
                                      TlsReference(directive.name, path, role, directive.source))
    return tuple(references.values())


def _directories(top: Directive, server_root: str) -> tuple[str, ...]:
    directories: list[str] = []
    for directive in top.walk():
        if directive.key not in ("errorlog", "customlog", "pidfile") or not directive.args:
            continue
        target = directive.args[0]
        if target.startswith(("|", "syslog", "/proc/", "/dev/")) or "$" in target:
            continue  # a pipe, syslog or the container's own stdout/stderr: nothing to create
        directory = posixpath.dirname(posixpath.join(server_root, target))
        if directory not in directories:
            directories.append(directory)
    return tuple(directories)


def _accounts(top: Directive) -> tuple[str, ...]:
    accounts: list[str] = []
    for directive in top.children("User", "Group"):
        if directive.args and directive.args[0] not in accounts and not directive.args[0].startswith("${"):
            accounts.append(directive.args[0])
    return tuple(accounts)

