"""Read a customer's Caddyfile: its site blocks, the routes to Bitbucket, its certificates.

What is read: the global options block (``auto_https off|disable_redirects``), snippets
``(name) { … }`` and their ``import name``, site blocks (``example.com, www.example.com {``,
or a Caddyfile of one site without braces), ``reverse_proxy [matcher] upstream…`` (and its
``to``), the path of the ``handle``/``handle_path``/``route`` around it or of its own path
matcher (``@name path /x*`` too), ``tls CERT KEY`` and automatic HTTPS. ``{$VAR:default}``
takes its default. Not read: ``import`` of other files, ``map``/``vars``, layer-4 apps.

Automatic HTTPS (a site named by a host, with no ``tls CERT KEY``) gets its certificate from
an ACME CA, which the lab cannot reach: the lab puts its own leaf where Caddy keeps the one it
would have obtained (``…/certificates/acme-v02.api.letsencrypt.org-directory/HOST/``), and
Caddy serves it without asking (measured with Debian's Caddy 2.6.2).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from lab.errors import LabError
from lab.reproduce.frontdoor import BitbucketClues, Route, VirtualServer, concrete_name, front_door
from lab.reproduce.model import BundleFile, Listener, ProxySetup, Source, TlsReference, Upstream

MAIN_CONFIG = "/etc/caddy/Caddyfile"
DATA_DIR = "/var/lib/caddy/caddy"   # $XDG_DATA_HOME/caddy in the lab's image
ACME_STORAGE = f"{DATA_DIR}/certificates/acme-v02.api.letsencrypt.org-directory"
_ENV = re.compile(r"\{\$(\w+)(?::([^}]*))?\}")


@dataclass
class Block:
    """One directive and its sub-block, as written."""

    words: list[str]
    source: Source
    children: list[Block] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.words[0] if self.words else ""


def parse_caddy(bundle: Sequence[BundleFile], clues: BitbucketClues = BitbucketClues()) -> ProxySetup:
    """The Caddy setup the bundle's Caddyfile describes."""
    files = [file for file in bundle if file.kind == "caddy"]
    if len(files) > 1:
        raise LabError(f"{files[0].relpath} and {files[1].relpath} are both Caddyfiles: send the one Caddy runs")
    main = files[0]
    top = read_caddyfile(main.path.read_text(encoding="utf-8-sig"), main.relpath)
    options = next((block for block in top if not block.words), None)
    auto_https = _option(options, "auto_https")
    servers = [_site(block, auto_https, _matchers(block)) for block in top if block.words and not _is_snippet(block)]
    door = front_door(servers, clues)
    return ProxySetup(
        kind="caddy", files=(main,), main_file=main, server_names=door.server_names, listeners=door.listeners,
        route_prefix=door.route_prefix, upstreams=door.upstreams, neighbours=door.neighbours,
        tls_files=tuple(_tls_files(top, auto_https)), name_sources=door.name_sources, route_source=door.route_source,
    )


def read_caddyfile(text: str, relpath: str) -> list[Block]:
    """The Caddyfile's top-level blocks: the global options (no words), snippets, sites; a
    snippet's ``import`` is replaced by its content. A brace left open names its line."""
    lines = list(_lines(text, relpath))
    top = _nest(lines, relpath)
    if top and not any(words[-1] == "{" for words, _ in lines):
        # One site without braces: the first line is its addresses, the rest its directives.
        top = [Block(top[0].words, top[0].source, top[1:])]
    snippets = {block.name[1:-1]: block.children for block in top if _is_snippet(block)}
    return [_expand(block, snippets) for block in top]


def _lines(text: str, relpath: str) -> Iterator[tuple[list[str], Source]]:
    for number, raw in enumerate(text.splitlines(), 1):
        line = _ENV.sub(lambda m: m.group(2) if m.group(2) is not None else m.group(0), raw)
        words = split_words(line)
        if words:
            yield words, Source(relpath, number)


def split_words(line: str) -> list[str]:
    """Whitespace-separated tokens; double quotes and backticks group; `#` after a space starts a comment."""
    words, current, quote, started = [], "", "", False
    for char in line:
        if quote:
            if char == quote:
                quote = ""
            else:
                current += char
        elif char in "\"`":
            quote, started = char, True
        elif char == "#" and not current and not started:
            break
        elif char.isspace():
            if current or started:
                words.append(current)
            current, started = "", False
        else:
            current += char
    if current or started:
        words.append(current)
    return words


def _nest(lines: list[tuple[list[str], Source]], relpath: str) -> list[Block]:
    root = Block([], Source(relpath, 0))
    stack = [root]
    for words, source in lines:
        if words == ["}"]:
            if len(stack) == 1:
                raise LabError(f"{source}: `}}` closes no block")
            stack.pop()
            continue
        opens = words[-1] == "{"
        block = Block(words[:-1] if opens else words, source)
        stack[-1].children.append(block)
        if opens:
            stack.append(block)
    if len(stack) > 1:
        raise LabError(f"{stack[-1].source}: this block is never closed (`}}` missing)")
    return root.children


def _is_snippet(block: Block) -> bool:
    return len(block.words) == 1 and block.name.startswith("(") and block.name.endswith(")")


def _expand(block: Block, snippets: dict[str, list[Block]]) -> Block:
    children: list[Block] = []
    for child in block.children:
        if child.name == "import" and len(child.words) > 1 and child.words[1] in snippets:
            children += [_expand(inner, snippets) for inner in snippets[child.words[1]]]
        elif child.name == "import":
            raise LabError(f"{child.source}: `import {' '.join(child.words[1:])}` names a file the lab does not read: "
                           "send the Caddyfile with the imported directives in it")
        else:
            children.append(_expand(child, snippets))
    return Block(block.words, block.source, children)


def _option(options: Block | None, name: str) -> str:
    found = next((child for child in (options.children if options else []) if child.name == name), None)
    return " ".join(found.words[1:]) if found else ""


def _matchers(site: Block) -> dict[str, str]:
    """``@name path /x*`` (or ``@name { path /x* }``) → ``/x*``."""
    found: dict[str, str] = {}
    for child in site.children:
        if not child.name.startswith("@"):
            continue
        paths = child.words[2:] if child.words[1:2] == ["path"] else next(
            (c.words[1:] for c in child.children if c.name == "path"), [])
        if paths:
            found[child.name] = paths[0]
    return found


def _site(block: Block, auto_https: str, matchers: dict[str, str]) -> VirtualServer:
    server = VirtualServer(source=block.source)
    for address in (a for word in block.words for a in word.split(",") if a):
        scheme, host, port = _address(address)
        if host and concrete_name(host):
            server.names.append((host, block.source))
        tls = scheme == "https" or (scheme == "" and port != 80 and (port == 443 or bool(host)))
        port = port or (443 if tls else 80)
        server.listeners.append(Listener(port, tls, False, tls, block.source))
        if tls and port == 443 and auto_https not in ("off", "disable_redirects"):
            server.listeners.append(Listener(80, False, True, False, block.source))  # Caddy's own redirect
    server.routes = list(_routes(block.children, "", matchers))
    return server


def _address(address: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a site address: ``example.com``, ``https://example.com:8443``, ``:80``."""
    parts = urlsplit(address if "://" in address else f"//{address}")
    try:
        port = parts.port or 0
    except ValueError:
        port = 0
    return parts.scheme, parts.hostname or "", port


def _routes(blocks: list[Block], prefix: str, matchers: dict[str, str]) -> Iterator[Route]:
    for block in blocks:
        if block.name in ("handle", "handle_path", "route"):
            yield from _routes(block.children, _path(block.words[1:2], matchers) or prefix, matchers)
        elif block.name == "reverse_proxy":
            words = block.words[1:]
            path = _path(words[:1], matchers)
            if path is not None or (words[:1] and words[0] == "*"):
                words = words[1:]
            targets = words + [w for child in block.children if child.name == "to" for w in child.words[1:]]
            upstreams = tuple(_upstream(target, block.source) for target in targets)
            if upstreams:
                yield Route((path if path is not None else prefix).rstrip("/"), " ".join(targets), upstreams, block.source)


def _path(words: list[str], matchers: dict[str, str]) -> str | None:
    """The path prefix a matcher token names (``/bitbucket*`` → ``/bitbucket``), or None."""
    if not words:
        return None
    token = matchers.get(words[0], words[0])
    return token.rstrip("*").rstrip("/") if token.startswith("/") else None


def _upstream(target: str, source: Source) -> Upstream:
    parts = urlsplit(target if "://" in target else f"http://{target}")
    scheme = "https" if parts.scheme == "https" else "http"
    if not parts.hostname:
        raise LabError(f"{source}: reverse_proxy {target}: the lab reads host:port upstreams only")
    return Upstream(scheme, parts.hostname, parts.port or (443 if scheme == "https" else 80), source)


def _tls_files(top: list[Block], auto_https: str) -> Iterator[TlsReference]:
    """``tls CERT KEY`` of each site; a certificate of automatic HTTPS in Caddy's storage otherwise."""
    for site in (block for block in top if block.words and not _is_snippet(block)):
        tls = next((child for child in site.children if child.name == "tls"), None)
        if tls is not None and len(tls.words) >= 3:
            yield TlsReference("tls", tls.words[1], "fullchain", tls.source)
            yield TlsReference("tls", tls.words[2], "key", tls.source)
            continue
        if auto_https == "off" or (tls is not None and tls.words[1:2] == ["internal"]):
            continue
        for scheme, host, port in (_address(a) for word in site.words for a in word.split(",") if a):
            if host and concrete_name(host) and scheme != "http" and port != 80:
                stored = f"{ACME_STORAGE}/{host}/{host}"
                yield TlsReference("automatic HTTPS", f"{stored}.crt", "fullchain", site.source)
                yield TlsReference("automatic HTTPS", f"{stored}.key", "key", site.source)


def storage_meta(tls_files: Sequence[TlsReference], placed: Mapping[str, bytes] | None = None) -> dict[str, bytes]:
    """{path: content} of the metadata Caddy keeps beside each certificate it obtained
    (``HOST.json``: the names it covers), for the lab's leaf placed in Caddy's storage."""
    found = {}
    for reference in tls_files:
        if reference.directive == "automatic HTTPS" and reference.role == "fullchain":
            host = reference.path.rsplit("/", 1)[-1].removesuffix(".crt")
            found[reference.path.removesuffix(".crt") + ".json"] = json.dumps({"sans": [host]}).encode()
    return found
