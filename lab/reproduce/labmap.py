"""Decide how a customer's setup maps onto the lab: a topology, where each file goes, and the mapping.

The second of three steps: :mod:`lab.reproduce` reads the bundle into a ``CustomerSetup``;
:func:`reproduction` decides — from the customer's files alone — the topology, the proxy's
placement and start, what fills each TLS path, and every mapping row; :mod:`lab.reproduce.provisioning`
then writes each node's files from that decision and the lab's PKI, adding no row.

Every decision the lab makes about the customer's world is a :class:`Mapping` row (what,
the customer's value, the lab's value), printed before the checks: public names become
aliases on the users' network, the upstream host an alias of the lab's Bitbucket (or its
host, for ``localhost``), TLS paths hold lab certificates of the role the directive
means. Only an upstream given as an IP address is changed — in a working copy — and the
row says so.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from lab.errors import LabError
from lab.provision import BITBUCKET_SHARED, KEYSTORE_PATH
from lab.proxies import KINDS, resolve
from lab.reproduce.model import CustomerSetup, Neighbour, ProxySetup, Upstream
from lab.reproduce.placement import Placed, ProxyStart, host_of, place_files, proxy_start
from lab.reproduce.tlsmap import TlsPlacement, leaf_key_type, plan_tls
from lab.stub.config import KNOWN_KEYS
from lab.topology import Node, Topology

PROXY, BITBUCKET = "proxy", "bitbucket"


@dataclass(frozen=True)
class Mapping:
    """One thing the lab decided about the customer's world."""

    what: str
    customer: str
    lab: str

    def to_json(self) -> dict[str, str]:
        return {"what": self.what, "customer": self.customer, "lab": self.lab}


@dataclass(frozen=True)
class ProxyPlan:
    """Where the proxy's files go and how it starts — decided once per reproduction."""

    server_root: str
    placed: list[Placed]
    start: ProxyStart
    image: str | None = None
    """The lab image of the proxy when not its kind's own (the official httpd layout)."""

    @classmethod
    def of(cls, proxy: ProxySetup) -> ProxyPlan:
        host = host_of(proxy.kind)
        server_root = host.server_root(proxy.files)
        placed = place_files(proxy, server_root)
        return cls(server_root, placed, proxy_start(proxy, placed, server_root), host.image(server_root))


@dataclass
class Reproduction:
    """A customer's setup as the lab runs it."""

    setup: CustomerSetup
    topology: Topology
    mapping: list[Mapping] = field(default_factory=list)
    backend_names: tuple[str, ...] | None = None
    proxy_plan: ProxyPlan | None = None
    tls_placements: list[TlsPlacement] = field(default_factory=list)
    """What fills each of the proxy's TLS paths (the files themselves come at provisioning)."""
    leaf_key: str = "ecdsa"
    """The lab leaf's key type (``tlsmap.leaf_key_type``): RSA when the customer's ciphers need it."""


def reproduction(setup: CustomerSetup, name: str) -> Reproduction:
    """The topology and mapping for ``setup``; LabError for what the lab cannot run."""
    proxy = setup.proxy
    refusal = host_of(proxy.kind).refusal(proxy) if proxy is not None else None
    if refusal:
        raise LabError(refusal)
    mapping = _general_rows(setup)
    proxy_plan = ProxyPlan.of(proxy) if proxy else None
    if proxy is None:
        topology = _direct_topology(setup, name)
        backend = None
    else:
        if not proxy.upstreams:
            raise LabError(f"{', '.join(f.relpath for f in proxy.files)}: no proxy_pass / ProxyPass / server line "
                           "sends traffic anywhere: nothing to reproduce")
        topology, rows = _proxy_topology(setup, proxy, name, proxy_plan.image if proxy_plan else None)
        mapping += rows
        first = proxy.upstreams[0]
        backend = (tuple(dict.fromkeys([*(alias(u) for u in proxy.upstreams if not u.is_local), BITBUCKET]))
                   if first.scheme == "https" and not first.is_local else None)
    leaf_key, why = leaf_key_type(proxy)
    if leaf_key == "rsa":
        mapping.append(Mapping("lab leaf key", why, "RSA 2048 (the lab's default ECDSA leaf would fail every TLS 1.2 "
                                                    "handshake here, a fault of the lab's certificate, not theirs)"))
    public_host = urllib.parse.urlsplit(topology.public_url).hostname or ""
    placements = plan_tls(proxy.tls_files, setup.certificates, public_host) if proxy else []
    return Reproduction(setup, topology, mapping, backend, proxy_plan, placements, leaf_key=leaf_key)


def _general_rows(setup: CustomerSetup) -> list[Mapping]:
    rows = [Mapping("public URL", setup.public_url_reason, setup.public_url)]
    if setup.properties is not None:
        rows.append(Mapping("bitbucket.properties", setup.properties.relpath,
                            f"verbatim at {BITBUCKET_SHARED}/bitbucket.properties"))
        ignored = sorted(key for key in setup.properties_values if key not in KNOWN_KEYS)
        if ignored:
            rows.append(Mapping("properties not modelled", ", ".join(ignored),
                                "ignored by the lab's Bitbucket (it models the connector, context path and base URL)"))
    elif not setup.settings:
        rows.append(Mapping("bitbucket.properties", "(not in the bundle)",
                            "the lab's Bitbucket runs with: " + ", ".join(assumed_properties(setup))))
    rows += [Mapping("setting", f"{setting.written} = {setting.value} ({setting.source})",
                     f"{setting.key}={setting.value} in the lab's bitbucket.properties")
             for setting in setup.settings]
    rows += [Mapping("setting", f"assumed (not in the bundle): {why}",
                     f"{key}={value} — confirm with the customer") for key, value, why in setup.assumed]
    rows += [Mapping("template", f"{item.relpath}: " + ", ".join(f"${{{name}}}" for name, _, _ in item.values),
                     "rendered into a working copy as envsubst would: "
                     + ", ".join(f"{name}={value} ({origin})" for name, value, origin in item.values))
             for item in setup.rendered]
    rows += [Mapping("ignored file", relpath, _not_used(setup, relpath)) for relpath in setup.ignored]
    return rows


def _not_used(setup: CustomerSetup, relpath: str) -> str:
    named = next((ref for ref in (setup.proxy.tls_files if setup.proxy else ())
                  if ref.path == "/" + relpath.lstrip("/") or ref.path.endswith("/" + relpath)), None)
    if named is not None:  # dhparam.pem, a chain: the TLS file row says what the lab serves there instead
        return f"named by {named.directive} at {named.source}: the lab's own file takes its place (see its TLS file row)"
    kind = next((file.kind for file in setup.bundle if file.relpath == relpath), "text")
    return {"script": "a script: not used", "text": "read as free text (a note): not used"}.get(
        kind, f"{kind}: nothing in it the lab uses")


def _direct_topology(setup: CustomerSetup, name: str) -> Topology:
    """Tomcat direct: the lab's Bitbucket itself answers the public URL on the users' network."""
    parts = urllib.parse.urlsplit(setup.public_url)
    ports = _connector_ports(setup.properties_values)
    node = Node(BITBUCKET, "stub", {"outside": (parts.hostname or "bitbucket", BITBUCKET)}, ports)
    return Topology(
        name=name, summary="Bitbucket's own Tomcat answers users (no proxy in the bundle)",
        diagram=f"users ──outside──▶ bitbucket {' '.join(':' + str(p) for p in ports)} ({parts.hostname})",
        public_url=setup.public_url, nodes=(node,), properties={}, tls=parts.scheme == "https",
        tomcat_url=setup.public_url, tomcat_reachable_by_users=True, http_url=_direct_http_url(setup, parts))


def _direct_http_url(setup: CustomerSetup, parts: urllib.parse.SplitResult) -> str | None:
    """An extra plain-http connector (``require-ssl`` redirects to https) is the http twin."""
    values = setup.properties_values
    for number in range(1, 10):
        prefix = f"server.additional-connector.{number}"
        if values.get(f"{prefix}.port") and values.get(f"{prefix}.ssl.enabled", "false").lower() != "true":
            return f"http://{parts.hostname}:{values[f'{prefix}.port'].strip()}{parts.path}"
    return None


def _proxy_topology(setup: CustomerSetup, proxy: ProxySetup, name: str,
                    image: str | None = None) -> tuple[Topology, list[Mapping]]:
    parts = urllib.parse.urlsplit(setup.public_url)
    public_names = tuple(dict.fromkeys([parts.hostname or "", *proxy.server_names]))
    rows = [Mapping("public name", host, "an alias of the proxy on the users' network and a name of the lab leaf")
            for host in public_names]
    image_row = host_of(proxy.kind).image_row(image) if image else None
    if image_row is not None:
        rows.append(Mapping("proxy image", *image_row))
    ports = tuple(sorted({listener.port for listener in proxy.listeners})) or (80,)
    proxy_node = Node(PROXY, proxy.kind, {"outside": public_names, "inside": (PROXY,)}, ports, image=image)
    stub_ports = _connector_ports(setup.properties_values, default=proxy.upstreams[0].port)
    hairpin = proxy.upstreams[0].host.lower() in public_names  # proxy_pass http://<the public name>:7990
    local = proxy.upstreams[0].is_local or hairpin
    if local:
        stub = Node(BITBUCKET, "stub", {}, stub_ports, shares_host_with=PROXY)
        rows.append(Mapping("upstream", _shown(proxy.upstreams[0]),
                            "the lab's Bitbucket runs on the proxy's host (its network namespace), as the customer's does"
                            + (": the upstream is the public name, so it reaches Bitbucket's port on the proxy's own "
                               "host (users can reach that port too)" if hairpin else "")))
    else:
        aliases = tuple(dict.fromkeys([*(alias(u) for u in proxy.upstreams), BITBUCKET]))
        stub = Node(BITBUCKET, "stub", {"inside": aliases}, stub_ports)
        rows += [_upstream_row(upstream) for upstream in proxy.upstreams]
    members = cluster_members(proxy)
    stubs = [Node(f"{BITBUCKET}-{number}", "stub", {"inside": (alias,)}, (port,))
             for number, (alias, port) in enumerate(members, 1)] if len(members) > 1 else [stub]
    if len(stubs) > 1:
        rows.append(Mapping("cluster", ", ".join(f"{alias}:{port}" for alias, port in members),
                            f"{len(stubs)} Bitbucket nodes ({', '.join(node.name for node in stubs)}) sharing their "
                            "repositories but not their sessions, as Data Center nodes do; the balancing and "
                            "stickiness are the customer's own"))
    context = setup.properties_values.get("server.context-path", "").strip().rstrip("/")
    first = proxy.upstreams[0]
    tomcat_host = parts.hostname if local else alias(first)
    redirect = next((listener for listener in proxy.listeners if listener.redirects_to_https), None)
    http_url = (f"http://{parts.hostname}{'' if redirect.port == 80 else f':{redirect.port}'}{parts.path}"
                if redirect and parts.scheme == "https" else None)
    neighbours = neighbour_nodes(proxy, stubs)
    rows += [_neighbour_row(neighbour) for _, neighbour in neighbours]
    topology = Topology(
        name=name, summary=f"{proxy.kind} from the customer's files in front of Bitbucket",
        diagram=_diagram(proxy, public_names[0], first, local), public_url=setup.public_url,
        nodes=(proxy_node, *stubs, *(node for node, _ in neighbours)), properties={}, tls=parts.scheme == "https",
        tomcat_url=f"{first.scheme}://{tomcat_host}:{first.port}{context}", tomcat_reachable_by_users=False,
        http_url=http_url)
    return topology, rows


def cluster_members(proxy: ProxySetup) -> list[tuple[str, int]]:
    """(lab name, port) of each Bitbucket node the proxy balances over: its upstreams on
    distinct hosts (one host on two ports is one node)."""
    members: dict[str, int] = {}
    for upstream in proxy.upstreams:
        if not upstream.is_local:
            members.setdefault(alias(upstream), upstream.port)
    return list(members.items())


def neighbour_nodes_by_name(topology: Topology, proxy: ProxySetup) -> dict[str, Neighbour]:
    stubs = [node for node in topology.nodes if node.kind == "stub"]
    return {node.name: neighbour for node, neighbour in neighbour_nodes(proxy, stubs)}


def neighbour_nodes(proxy: ProxySetup, stubs: list[Node]) -> list[tuple[Node, Neighbour]]:
    """A node per other application the proxy serves: on the proxy's host when the customer's
    is (``localhost:8080``), on a Bitbucket node's when it shares that node's name, else its own."""
    nodes: list[tuple[Node, Neighbour]] = []
    for number, neighbour in enumerate(proxy.neighbours, 1):
        name, upstream = f"neighbour-{number}", neighbour.upstream
        host = next((stub for stub in stubs if stub.shares_host_with or alias(upstream, neighbour.app) in
                     {alias for aliases in stub.networks.values() for alias in aliases}), None)
        if upstream.is_local:
            node = Node(name, "neighbour", {}, (upstream.port,), shares_host_with=PROXY)
        elif host is not None:
            node = Node(name, "neighbour", {}, (upstream.port,), shares_host_with=host.shares_host_with or host.name)
        else:
            node = Node(name, "neighbour", {"inside": (alias(upstream, neighbour.app),)}, (upstream.port,))
        nodes.append((node, neighbour))
    return nodes


def _neighbour_row(neighbour: Neighbour) -> Mapping:
    where = f" at {neighbour.route_prefix}" if neighbour.route_prefix else ""
    return Mapping("neighbour", f"{neighbour.app}{where}: {_shown(neighbour.upstream)}",
                   f"a lab responder answering as {neighbour.app} (not Bitbucket), so the proxy starts and a route "
                   "that ends there is told from Bitbucket's" + (f"; the address is rewritten to {alias(neighbour.upstream, neighbour.app)}"
                                                                 if _rewritten(neighbour.upstream) else ""))


def _diagram(proxy: ProxySetup, host: str, upstream: Upstream, local: bool) -> str:
    lines = []
    for index, listener in enumerate(sorted(proxy.listeners, key=lambda item: item.port)):
        lead = "users ──outside──▶ " if index == 0 else " " * 19
        what = "→ redirect to https" if listener.redirects_to_https else ("[TLS ends]" if listener.tls else "(http)")
        lines.append(f"{lead}{proxy.kind} :{listener.port} {what}")
    hop = "──same host──▶" if local else "──inside──▶"
    tls = " [TLS again]" if upstream.scheme == "https" else ""
    lines[-1] += f" {hop} bitbucket :{upstream.port}{tls} ({upstream.host})"
    lines[0] += f"   ({host})"
    return "\n".join(lines)


def _upstream_row(upstream: Upstream) -> Mapping:
    if _rewritten(upstream):
        return Mapping("upstream", _shown(upstream),
                       f"rewritten to {alias(upstream)} in a working copy of {upstream.source.file} "
                       "(the lab's Bitbucket cannot take the customer's address); everything else verbatim")
    return Mapping("upstream", _shown(upstream), "an alias of the lab's Bitbucket on the inside network")


def _shown(upstream: Upstream) -> str:
    return f"{upstream.scheme}://{upstream.host}:{upstream.port} ({upstream.source})"


def alias(upstream: Upstream, app: str = "bitbucket") -> str:
    """The name the lab's node answers for this upstream: the customer's own name, or
    ``bitbucket-10-20-30-40`` (``jira-…`` for a neighbour) for an address."""
    if not _rewritten(upstream):
        return upstream.host
    return re.sub(r"[^0-9a-z]+", "-", app.lower()).strip("-") + "-" + re.sub(r"[^0-9A-Za-z]+", "-", upstream.host).strip("-")


def _connector_ports(values: dict[str, str], default: int = 7990) -> tuple[int, ...]:
    ports = [values.get("server.port", str(default)).strip()]
    ports += [values[key].strip() for key in sorted(values) if re.fullmatch(r"server\.additional-connector\.\d+\.port", key)]
    return tuple(dict.fromkeys(int(port) for port in ports if port.isdigit()))


def assumed_properties(setup: CustomerSetup) -> list[str]:
    """``key=value`` lines the lab runs Bitbucket with when the bundle has no properties."""
    upstream = setup.proxy.upstreams[0] if setup.proxy and setup.proxy.upstreams else None
    lines = [f"server.port={upstream.port if upstream else 7990}"]
    if upstream is not None and upstream.scheme == "https":
        lines += ["server.ssl.enabled=true", "server.ssl.key-store-type=PKCS12"]
    return lines


def stub_values(setup: CustomerSetup) -> dict[str, str]:
    if setup.has_settings:
        return setup.properties_values
    return {**dict(line.split("=", 1) for line in assumed_properties(setup)), **setup.properties_values}


def tls_connectors(values: dict[str, str]) -> list[tuple[str, str]]:
    """(key prefix, keystore path) of every connector the properties turn TLS on for —
    the main one and each ``server.additional-connector.N``."""
    prefixes = ["server", *sorted({m.group(0)[:-1] for key in values
                                   if (m := re.match(r"server\.additional-connector\.\d+\.", key))})]
    return [(prefix, values.get(f"{prefix}.ssl.key-store", "").strip() or KEYSTORE_PATH) for prefix in prefixes
            if values.get(f"{prefix}.ssl.enabled", "").strip().lower() == "true"]


def lab_files(proxy: ProxySetup, placed: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """Files the proxy's kind adds beside the customer's TLS files (``ProxyKind.lab_files``),
    built from ``placed`` (the lab's TLS files by path; None when only their paths are wanted)."""
    kind = KINDS.get(proxy.kind)
    return resolve(kind.lab_files)(proxy.tls_files, placed) if kind and kind.lab_files else {}


def proxy_rows(plan: Reproduction) -> list[Mapping]:
    """Mapping rows for the proxy host: where each file went, the main config, TLS paths,
    directories, accounts, how it runs in the foreground (all decided by :func:`reproduction`)."""
    setup, proxy = plan.setup, plan.setup.proxy
    if proxy is None or plan.proxy_plan is None:
        return _keystore_rows(setup)
    placed, start = plan.proxy_plan.placed, plan.proxy_plan.start
    rows = [Mapping("proxy file", item.file.relpath, f"{item.path} ({item.reason})") for item in placed]
    rows += [Mapping("working copy", item.file.relpath,
                     f"every {', '.join(u.host for u in proxy.upstreams if _rewritten(u))} replaced by the lab's name "
                     "for it; nothing else changed")
             for item in placed if working_copy(item, proxy) != item.file.path.read_bytes()]
    rows += [Mapping(*row) for row in proxy.translations]
    if not proxy.main_file and not proxy.generated:
        rows.append(Mapping("main config", "(not in the bundle)", f"{start.main_config}: {start.main_reason}"))
    public_host = urllib.parse.urlsplit(setup.public_url).hostname
    rows += [Mapping(*row) for row in host_of(proxy.kind).added_rows(proxy, public_host)]
    rows += [Mapping("TLS file", f"{item.reference.directive} {item.reference.path} ({item.reference.source})",
                     f"{item.path}: {item.lab}")
             for item in plan.tls_placements]
    rows += [Mapping("lab file", path, "what the proxy keeps beside a certificate it obtained itself, for the lab's "
                     "leaf in its place") for path in lab_files(proxy)]
    lab_dirs = [d for d in start.environment.get("LAB_DIRS", "").split() if d not in proxy.directories]
    lab_accounts = [a for a in start.environment.get("LAB_ACCOUNTS", "").split() if a not in proxy.accounts]
    rows += [Mapping("directory", directory, "created on the proxy host") for directory in proxy.directories]
    rows += [Mapping("directory", "(the lab's RHEL stand-in needs it)", f"{directory} created") for directory in lab_dirs]
    rows += [Mapping("account", account, "created on the proxy host when Debian lacks it") for account in proxy.accounts]
    rows += [Mapping("account", "(the lab's RHEL stand-in runs as it)", f"{account} created") for account in lab_accounts]
    rows.append(Mapping("foreground", f"daemon ({proxy.daemon_source})" if proxy.daemon_source else "(default)",
                        host_of(proxy.kind).foreground(proxy, start.environment)))
    return rows + _keystore_rows(setup)


def _keystore_rows(setup: CustomerSetup) -> list[Mapping]:
    return [Mapping("keystore", f"{prefix}.ssl.key-store={store}",
                    "a lab PKCS12 keystore there, with the customer's alias and password")
            for prefix, store in tls_connectors(stub_values(setup))]


def _rewritten(upstream: Upstream) -> bool:
    """Only an upstream given as an address other than the proxy's own is rewritten."""
    return upstream.is_ip and not upstream.is_local


def working_copy(item: Placed, proxy: ProxySetup) -> bytes:
    """The file's bytes; an upstream given as an address is replaced by the lab's name for
    it everywhere in the file (ProxyPass and ProxyPassReverse alike), and nothing else."""
    data = item.file.path.read_bytes()
    text = data.decode("utf-8")
    everywhere = [*((u, "bitbucket") for u in proxy.upstreams), *((n.upstream, n.app) for n in proxy.neighbours)]
    for upstream, app in {u.host: (u, app) for u, app in everywhere if _rewritten(u)}.values():
        pattern = rf"(?<![0-9A-Za-z.]){re.escape(upstream.host.strip('[]'))}(?![0-9A-Za-z])"
        if upstream.source.file == item.file.relpath or re.search(pattern, text):
            text, count = re.subn(pattern, alias(upstream, app), text)
            if count == 0:
                raise LabError(f"{upstream.source}: the upstream address {upstream.host} is not in the file as "
                               "written, so the lab cannot point it at its Bitbucket")
    return text.encode() if text != data.decode("utf-8") else data


def case_name(paths: list[Path]) -> str:
    """A topology name for a reproduction: ``reproduce-<first path's name>``."""
    stem = paths[0].resolve().name if paths else "bundle"
    if stem == "bundle" and paths:
        stem = paths[0].resolve().parent.name
    return "reproduce-" + (re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-.") or "bundle")
