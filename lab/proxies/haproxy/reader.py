"""Read a customer's ``haproxy.cfg`` (and any further ``-f`` files): sections and their lines.

HAProxy has no includes; several files are read in order, the one with ``global`` first.
Each ``use_backend``/``default_backend`` rule of a ``mode http`` frontend (or ``listen``)
becomes a route; the host names its condition tests (``hdr(host) -i git.acme.example``)
are that route's server names. A ``mode tcp`` frontend (git over SSH, TLS passthrough)
is not the HTTP front door and is left out. A section with no ``mode`` and no preceding
``defaults`` is taken as ``mode http``, as the lab's own minimal ``haproxy.cfg`` makes it.

Not handled: ``server-template``, backends chosen by maps (``use_backend %[…]``),
``crt-list`` files, named ``defaults`` (``frontend x from y``), Lua.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence

from lab.reproduce.frontdoor import BitbucketClues, Route, VirtualServer, concrete_name, front_door
from lab.reproduce.model import BundleFile, Listener, ProxySetup, Source, TlsReference, Upstream
from lab.reproduce.tree import Directive, pick_main, root

SECTIONS = ("global", "defaults", "frontend", "backend", "listen", "peers", "resolvers", "userlist",
            "cache", "program", "http-errors", "ring", "mailers", "crt-store", "log-forward", "traces")
_HOST_FETCHES = re.compile(r"^(?:req\.)?(?:hdr|hdr_dom|hdr_beg|hdr_end)\([Hh]ost\)|^(?:req\.)?ssl_sni$|^ssl_fc_sni$")


def parse_haproxy(bundle: Sequence[BundleFile], clues: BitbucketClues = BitbucketClues()) -> ProxySetup:
    """The HAProxy setup the bundle's HAProxy files describe."""
    files = [file for file in bundle if file.kind == "haproxy"]
    parsed = {file.relpath: tokenize(file.path.read_text(encoding="utf-8-sig"), file.relpath) for file in files}
    main = pick_main([f for f in files if any(s.key == "global" for s in parsed[f.relpath])],
                     ("/etc/haproxy/haproxy.cfg",), "HAProxy")
    ordered = ([main] if main else []) + [file for file in files if file != main]
    sections = [section for file in ordered for section in parsed[file.relpath]]
    top = root(sections, Source(ordered[0].relpath, 1))
    global_lines = [d for section in top.children("global") for d in section.block or ()]
    settings = {d.key: d for d in reversed(global_lines)}      # the first line of each keyword
    crt_base = settings["crt-base"].args[0] if "crt-base" in settings and settings["crt-base"].args else "/"
    ca_base = settings["ca-base"].args[0] if "ca-base" in settings and settings["ca-base"].args else "/"
    backends = {s.args[0]: s for s in sections if s.key in ("backend", "listen") and s.args}
    servers = [server for section in _http_frontends(sections)
               for server in _virtual_servers(section, backends)]
    door = front_door(servers, clues)
    daemon = settings.get("daemon")
    return ProxySetup(
        kind="haproxy", files=tuple(ordered), main_file=main,
        server_names=door.server_names, listeners=door.listeners, route_prefix=door.route_prefix,
        upstreams=door.upstreams, neighbours=door.neighbours, tls_files=_tls_files(sections, crt_base, ca_base, bundle),
        directories=_directories(global_lines), accounts=_accounts(settings),
        daemonizes=daemon is not None, daemon_source=daemon.source if daemon else None,
        name_sources=door.name_sources, route_source=door.route_source,
    )


def tokenize(text: str, relpath: str) -> tuple[Directive, ...]:
    """Sections (``frontend https`` → Directive("frontend", ("https",), …, block=lines))."""
    sections: list[Directive] = []
    name, source = "", Source(relpath, 0)          # lines before any section are dropped
    args: tuple[str, ...] = ()
    lines: list[Directive] = []
    for number, raw in enumerate(text.splitlines(), 1):
        words = split_words(raw)
        if not words:
            continue
        if words[0] in SECTIONS:
            if name:
                sections.append(Directive(name, args, source, tuple(lines)))
            name, args, source, lines = words[0], tuple(words[1:]), Source(relpath, number), []
        else:
            lines.append(Directive(words[0], tuple(words[1:]), Source(relpath, number)))
    if name:
        sections.append(Directive(name, args, source, tuple(lines)))
    return tuple(sections)


def split_words(line: str) -> list[str]:
    """Words as HAProxy splits them: ``'…'`` literal, ``"…"`` and ``\\`` escapes, ``#`` comment."""
    words: list[str] = []
    word, quote, escaped, started = "", "", False, False
    for char in line:
        if escaped:
            word, escaped = word + char, False
        elif char == "\\" and quote != "'":
            escaped = started = True
        elif quote:
            quote = "" if char == quote else quote
            word += "" if not quote else char
        elif char in "'\"":
            quote, started = char, True
        elif char == "#":
            break
        elif char.isspace():
            if started:
                words.append(word)
            word, started = "", False
        else:
            word, started = word + char, True
    if started:
        words.append(word)
    return words


def _http_frontends(sections: Sequence[Directive]) -> list[Directive]:
    """``frontend``/``listen`` sections in ``mode http`` (inheriting the last ``defaults``)."""
    default_mode = "http"
    frontends = []
    for section in sections:
        mode = section.first("mode")
        if section.key == "defaults":
            default_mode = mode.args[0] if mode and mode.args else "tcp"
        elif section.key in ("frontend", "listen"):
            if (mode.args[0] if mode and mode.args else default_mode) == "http":
                frontends.append(section)
    return frontends


def _virtual_servers(frontend: Directive, backends: dict[str, Directive]) -> list[VirtualServer]:
    """One per routing rule of the frontend (its listeners shared), or one with no route."""
    listeners = _listeners(frontend)
    acls = _acls(frontend)
    servers = []
    for rule in frontend.children("use_backend", "default_backend"):
        if not rule.args or rule.args[0].startswith("%["):
            continue
        condition = _condition(rule.args[1:])
        prefix = _path_prefix(condition, acls)
        upstreams = _members(backends.get(rule.args[0]))
        servers.append(VirtualServer(
            source=frontend.source, names=_host_names(condition, acls, rule.source), listeners=listeners,
            routes=[Route(prefix, rule.args[0], upstreams, rule.source)]))
    if frontend.key == "listen" and frontend.children("server"):
        route = Route("", frontend.args[0] if frontend.args else "", _members(frontend), frontend.source)
        servers.append(VirtualServer(source=frontend.source, listeners=listeners, routes=[route]))
    return servers or [VirtualServer(source=frontend.source, listeners=listeners)]


def _listeners(frontend: Directive) -> list[Listener]:
    redirect = _redirect_scope(frontend)
    listeners = []
    for bind in frontend.children("bind"):
        port = _bind_port(bind.args[0]) if bind.args else None
        if port is None:
            continue
        tls = "ssl" in bind.args
        alpn = _option(bind.args, "alpn") + _option(bind.args, "proto")
        http2 = any("h2" in value.split(",") for value in alpn)
        redirects = redirect == "all" or (redirect == "plain" and not tls)
        listeners.append(Listener(port, tls, redirects, http2, bind.source))
    return listeners


def _bind_port(address: str) -> int | None:
    """``:443``, ``*:80``, ``0.0.0.0:443``, ``:::443``, ``ipv6@:::443``, ``:8000-8010`` →
    the (first) port; unix sockets and ``fd@`` → None."""
    address = address.split(",", 1)[0]
    if address.startswith(("/", "unix@", "abns@", "fd@", "sockpair@")):
        return None
    port = address.split("@", 1)[-1].rsplit(":", 1)[-1].split("-", 1)[0]
    return int(port) if port.isdigit() else None


def _option(args: Sequence[str], name: str) -> list[str]:
    return [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == name]


def _redirect_scope(frontend: Directive) -> str | None:
    """"all": an unconditional redirect to https; "plain": one for non-TLS requests only
    (``if !{ ssl_fc }``, ``unless { ssl_fc }``); None otherwise."""
    for directive in frontend.children("http-request", "redirect"):
        words = list(directive.args[1:] if directive.key == "http-request" else directive.args)
        if directive.key == "http-request" and directive.args[:1] != ("redirect",):
            continue
        to_https = words[:2] == ["scheme", "https"] or (
            words[:1] in (["location"], ["prefix"]) and len(words) > 1 and words[1].startswith("https://"))
        if not to_https:
            continue
        keyword = next((w for w in words if w in ("if", "unless")), None)
        if keyword is None:
            return "all"
        condition = " ".join(words[words.index(keyword) + 1:])
        if re.fullmatch(r"!\s*\{\s*ssl_fc\s*\}|!\s*ssl_fc", condition) and keyword == "if" or \
                re.fullmatch(r"\{\s*ssl_fc\s*\}|ssl_fc", condition) and keyword == "unless":
            return "plain"
    return None


def _acls(frontend: Directive) -> dict[str, list[list[str]]]:
    """acl name → its criteria (several lines of one name are OR-ed)."""
    acls: dict[str, list[list[str]]] = {}
    for acl in frontend.children("acl"):
        if len(acl.args) >= 2:
            acls.setdefault(acl.args[0], []).append(list(acl.args[1:]))
    return acls


def _condition(words: Sequence[str]) -> list[list[str]]:
    """Positive terms of an ``if`` condition: inline ``{ … }`` criteria and acl names
    (``unless`` and ``!term`` are dropped: they say where Bitbucket is not)."""
    if not words or words[0] != "if":
        return []
    terms: list[list[str]] = []
    inline: list[str] | None = None
    negate = False
    for word in words[1:]:
        if inline is not None:
            if word == "}":
                terms.extend([] if negate else [inline])
                inline, negate = None, False
            else:
                inline.append(word)
        elif word in ("{", "!{"):
            inline, negate = [], negate or word == "!{"
        elif word == "!":
            negate = True
        elif word not in ("||", "or", "&&"):
            terms.extend([] if negate or word.startswith("!") else [["@acl", word]])
            negate = False
    return terms


def _criteria(condition: list[list[str]], acls: dict[str, list[list[str]]]) -> list[list[str]]:
    result: list[list[str]] = []
    for term in condition:
        result.extend(acls.get(term[1], []) if term[0] == "@acl" else [term])
    return result


def _path_prefix(condition: list[list[str]], acls: dict[str, list[list[str]]]) -> str:
    """``path_beg /bitbucket``, ``path -m beg /bitbucket`` → "/bitbucket"; else ""."""
    for criterion in _criteria(condition, acls):
        values = _values(criterion[1:])
        if values and (criterion[0] == "path_beg" or (criterion[0] == "path" and "beg" in criterion)):
            return values[0].rstrip("/")
    return ""


def _host_names(condition: list[list[str]], acls: dict[str, list[list[str]]], source: Source) -> list[tuple[str, Source]]:
    names: list[tuple[str, Source]] = []
    for criterion in _criteria(condition, acls):
        if _HOST_FETCHES.match(criterion[0].split(",", 1)[0]):
            names.extend((name, source) for value in _values(criterion[1:]) if (name := concrete_name(value)))
    return names


def _values(words: Sequence[str]) -> list[str]:
    """Pattern values of an acl, without flags (``-i``, ``-m beg``, ``-f file``)."""
    values, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word in ("-m", "-f", "-M"):
            skip = True
        elif not word.startswith("-"):
            values.append(word)
    return values


def _members(backend: Directive | None) -> tuple[Upstream, ...]:
    """The backend's ``server`` lines; ``ssl`` on the line (or ``default-server``) → https."""
    if backend is None:
        return ()
    default_ssl = any("ssl" in d.args for d in backend.children("default-server"))
    members = []
    for server in backend.children("server"):
        if len(server.args) < 2:
            continue
        https = "ssl" in server.args[2:] or (default_ssl and "no-ssl" not in server.args[2:])
        host, port = _address(server.args[1], 443 if https else 80)
        members.append(Upstream("https" if https else "http", host, port, server.source))
    return tuple(members)


def _address(address: str, default_port: int) -> tuple[str, int]:
    address = address.split("@", 1)[-1]
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port = rest.lstrip(":")
    elif address.count(":") > 1:
        host, _, port = address.rpartition(":")
    else:
        host, _, port = address.partition(":")
    return host, int(port) if port.isdigit() else default_port


def _tls_files(sections: Sequence[Directive], crt_base: str, ca_base: str,
               bundle: Sequence[BundleFile]) -> tuple[TlsReference, ...]:
    """``crt`` on a bind → fullchain+key (a directory keeps its trailing ``/``); ``ca-file``
    on a bind or server → ca. A server's own ``crt`` (client certificate) is skipped."""
    references: dict[tuple[str, str], TlsReference] = {}
    for section in sections:
        for line in section.children("bind", "server", "default-server"):
            pairs = [("crt", crt_base, "fullchain+key")] if line.key == "bind" else []
            for option, base, role in pairs + [("ca-file", ca_base, "ca")]:
                for value in _option(line.args, option):
                    path = posixpath.join(base, value)
                    if role == "fullchain+key" and _is_directory(path, bundle):
                        path = path.rstrip("/") + "/"
                    references.setdefault((option, path), TlsReference(option, path, role, line.source))
    return tuple(references.values())


def _is_directory(path: str, bundle: Sequence[BundleFile]) -> bool:
    """A ``crt`` directory: written with a trailing ``/``, holding bundle files, or a base
    name without a dot (``/etc/haproxy/certs``)."""
    inside = path.rstrip("/") + "/"
    return path.endswith("/") or "." not in posixpath.basename(path) or any(
        (file.mirrored_path or "").startswith(inside) for file in bundle)


def _directories(global_lines: Sequence[Directive]) -> tuple[str, ...]:
    """``chroot``, the directory of each ``stats socket`` and of ``pidfile``."""
    directories: list[str] = []
    for line in global_lines:
        if line.key == "chroot" and line.args:
            directories.append(line.args[0])
        elif line.key == "stats" and line.args[:1] == ("socket",) and len(line.args) > 1 \
                and line.args[1].startswith("/"):
            directories.append(posixpath.dirname(line.args[1]))
        elif line.key == "pidfile" and line.args:
            directories.append(posixpath.dirname(line.args[0]))
    return tuple(dict.fromkeys(directories))


def _accounts(settings: dict[str, Directive]) -> tuple[str, ...]:
    names = [settings[key].args[0] for key in ("user", "group") if key in settings and settings[key].args]
    return tuple(dict.fromkeys(names))
