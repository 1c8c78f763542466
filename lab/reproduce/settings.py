"""Bitbucket's settings from wherever the customer keeps them, not only ``bitbucket.properties``.

Most customers never send ``bitbucket.properties``: their settings live in

- the official image's **environment** — ``environment:`` and ``env_file:`` of the
  Bitbucket service in ``docker-compose.yml``/``compose.yaml`` (``${VAR}`` taken from the
  ``.env`` beside it), an env file (``bitbucket.env``, ``.env``), ``docker run -e`` lines in
  a script or a note; Bitbucket reads ``SERVER_PROXY_NAME`` as ``server.proxy-name`` by
  Spring Boot's relaxed binding, and the environment wins over ``bitbucket.properties``;
- **Helm values** of Atlassian's Data Center chart: ``ingress.host`` → proxy name, port 443
  and the base URL, ``ingress.https`` (default true) → scheme and secure, ``ingress.path``
  → context path, ``bitbucket.additionalEnvironmentVariables`` as environment;
- **server.xml** of Stash and Bitbucket before 5.0: ``<Connector proxyName proxyPort scheme
  secure>`` and ``<Context path>``, as Atlassian's 5.0 migration guide maps them to
  ``server.*`` keys.

Every value keeps the file and line it came from: the mapping shows it.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import yaml

from lab.errors import LabError
from lab.reproduce.model import BundleFile, Source
from lab.stub.config import KNOWN_KEYS
from lab.stub.properties import relaxed_name

SETTINGS_KINDS = ("compose", "helm", "env", "server-xml")
"""Bundle file kinds that carry Bitbucket's settings (besides ``properties``)."""

_BY_RELAXED = {relaxed_name(key): key for key in KNOWN_KEYS}
_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
_RUN_ENV = re.compile(r"(?:-e|--env)[ =](['\"]?)([A-Z][A-Z0-9_]*)=([^'\"\s]*)\1")
_VARIABLE = re.compile(r"\$(?:(?P<dollar>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\}"
                       r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")
_BITBUCKET_IMAGE = re.compile(r"(?:^|/)(?:bitbucket|bitbucket-server|stash)(?::|$)|atlassian/bitbucket", re.I)


@dataclass(frozen=True)
class Setting:
    """One Bitbucket setting as the bundle gives it: the ``bitbucket.properties`` key it
    means, its value, where it is, and how the customer wrote it."""

    key: str
    value: str
    source: Source
    written: str     # "SERVER_PROXY_NAME in docker-compose.yml environment", "Connector proxyName", …
    also_from: tuple[str, ...] = ()  # other bundle files the value needed (the .env of a ${VAR})


def bundle_settings(files: Sequence[BundleFile]) -> list[Setting]:
    """Every setting the bundle's compose, env, Helm and server.xml files give, the one
    Bitbucket would use last for each key (server.xml, then Helm, env files, compose)."""
    bundle = _Bundle(tuple(files), env_values(files))
    found: list[Setting] = []
    for kind, read in (("server-xml", _server_xml), ("helm", _helm), ("env", _env_file), ("compose", _compose),
                       ("text", _run_lines), ("script", _run_lines)):
        for file in (file for file in files if file.kind == kind):
            found += read(file, bundle)
    last: dict[str, Setting] = {}
    for setting in found:
        last[setting.key] = setting
    return list(last.values())


def setting_key(variable: str) -> str | None:
    """The ``bitbucket.properties`` key an environment variable sets, if it sets one."""
    return _BY_RELAXED.get(relaxed_name(variable)) if variable.upper() == variable else None


def looks_like_compose(text: str) -> bool:
    return bool(re.search(r"^services:\s*$", text, re.M)) and bool(re.search(r"^\s+image:", text, re.M))


def looks_like_helm(text: str) -> bool:
    return bool(re.search(r"^bitbucket:\s*$", text, re.M)) or (
        bool(re.search(r"^ingress:\s*$", text, re.M)) and "bitbucket" in text.lower())


def looks_like_server_xml(text: str) -> bool:
    return "<Server" in text and "<Connector" in text


def looks_like_env(text: str) -> bool:
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return bool(lines) and all(_ENV_LINE.match(line) for line in lines) and any(
        setting_key(match.group(1)) for line in lines if (match := _ENV_LINE.match(line)))


# ------------------------------------------------------------------ readers


def _env_file(file: BundleFile, bundle: _Bundle) -> list[Setting]:
    return list(_env_settings(file, f"in {file.relpath}"))


def _env_settings(file: BundleFile, written: str) -> Iterator[Setting]:
    for number, line in enumerate(_text(file).splitlines(), 1):
        match = _ENV_LINE.match(line)
        if match and not line.lstrip().startswith("#") and (key := setting_key(match.group(1))):
            yield Setting(key, _unquoted(match.group(2)), Source(file.relpath, number), f"{match.group(1)} {written}")


def _run_lines(file: BundleFile, bundle: _Bundle) -> list[Setting]:
    """``docker run -e SERVER_PROXY_NAME=…`` in a script or a note."""
    settings = []
    for number, line in enumerate(_text(file).splitlines(), 1):
        for match in _RUN_ENV.finditer(line):
            if key := setting_key(match.group(2)):
                settings.append(Setting(key, match.group(3), Source(file.relpath, number),
                                        f"docker run -e {match.group(2)}"))
    return settings


def _compose(file: BundleFile, bundle: _Bundle) -> list[Setting]:
    """The environment of the compose file's Bitbucket services (their image says so)."""
    root = compose_yaml(file)
    services = child(root, "services")
    settings: list[Setting] = []
    for name_node, service in mapping_items(services):
        image = _scalar(child(service, "image")) or ""
        if not (_BITBUCKET_IMAGE.search(image) or "bitbucket" in str(name_node.value).lower()):
            continue
        for env_name in _strings(child(service, "env_file")):
            settings += _referenced_env_file(bundle, file, env_name, f"env_file of service {name_node.value}")
        settings += _compose_environment(file, child(service, "environment"), bundle.variables, str(name_node.value))
    return settings


def _compose_environment(file: BundleFile, node: yaml.Node | None, variables: dict[str, tuple[str, str]],
                         service: str) -> list[Setting]:
    settings = []
    pairs: list[tuple[str, str, int]] = []
    if isinstance(node, yaml.MappingNode):
        pairs = [(str(key.value), _scalar(value) or "", key.start_mark.line + 1) for key, value in node.value]
    elif isinstance(node, yaml.SequenceNode):
        pairs = [(*str(item.value).partition("=")[::2], item.start_mark.line + 1) for item in node.value  # type: ignore[misc]
                 if isinstance(item, yaml.ScalarNode)]
    for variable, value, line in pairs:
        if key := setting_key(variable):
            used = [name for name in _variables_in(value) if name in variables]
            origin = "".join(f", ${{{name}}} from {variables[name][1]}" for name in used)
            settings.append(Setting(key, interpolate(value, variables, Source(file.relpath, line)),
                                    Source(file.relpath, line), f"{variable} in the environment of service {service}{origin}",
                                    tuple(dict.fromkeys(variables[name][1] for name in used))))
    return settings


def _variables_in(value: str) -> list[str]:
    return [name for match in _VARIABLE.finditer(value) if (name := match.group("braced") or match.group("bare"))]


def _referenced_env_file(bundle: _Bundle, compose: BundleFile, name: str, written: str) -> list[Setting]:
    folder = compose.relpath.rpartition("/")[0]
    wanted = f"{folder}/{name.lstrip('./')}" if folder else name.lstrip("./")
    return [setting for file in bundle.files if file.relpath == wanted for setting in _env_settings(file, written)]


def _helm(file: BundleFile, bundle: _Bundle) -> list[Setting]:
    """What Atlassian's chart derives from its values (statefulset.yaml)."""
    root = compose_yaml(file)
    ingress = child(root, "ingress")
    settings: list[Setting] = []
    host = child(ingress, "host")
    if _scalar(host):
        https_node = child(ingress, "https")
        https = (_scalar(https_node) or "true").lower() != "false"
        where = Source(file.relpath, host.start_mark.line + 1)  # type: ignore[union-attr]
        scheme = "https" if https else "http"
        settings += [Setting("server.proxy-name", str(_scalar(host)), where, "ingress.host"),
                     Setting("server.proxy-port", "443" if https else "80", where, "ingress.host (+ ingress.https)"),
                     Setting("server.scheme", scheme, where, "ingress.https"),
                     Setting("server.secure", str(https).lower(), where, "ingress.https")]
    path = child(ingress, "path")
    if _scalar(path) and _scalar(path) != "/":
        settings.append(Setting("server.context-path", str(_scalar(path)).rstrip("/"),
                                Source(file.relpath, path.start_mark.line + 1), "ingress.path"))  # type: ignore[union-attr]
    for item in sequence(child(child(root, "bitbucket"), "additionalEnvironmentVariables")):
        name, value = _scalar(child(item, "name")), _scalar(child(item, "value"))
        if name and value is not None and (key := setting_key(name)):
            settings.append(Setting(key, value, Source(file.relpath, item.start_mark.line + 1),
                                    f"{name} in bitbucket.additionalEnvironmentVariables"))
    return settings


def _server_xml(file: BundleFile, bundle: _Bundle) -> list[Setting]:
    """Stash / Bitbucket < 5.0: the first HTTP Connector and the Context, as the 5.0
    migration guide maps them (proxyName → server.proxy-name, …, Context path → context-path)."""
    text = _text(file)
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as error:
        raise LabError(f"{file.relpath}:{error.position[0]}: not well-formed XML: {error}") from None
    settings = []
    connector = next((element for element in root.iter("Connector")
                      if "AJP" not in element.get("protocol", "").upper()), None)
    attributes = {"port": "server.port", "proxyName": "server.proxy-name", "proxyPort": "server.proxy-port",
                  "scheme": "server.scheme", "secure": "server.secure"}
    for attribute, key in attributes.items():
        if connector is not None and connector.get(attribute):
            settings.append(Setting(key, str(connector.get(attribute)), _xml_source(file, text, "<Connector", attribute),
                                    f"Connector {attribute}"))
    context = next(root.iter("Context"), None)
    if context is not None and context.get("path") not in (None, "", "/"):
        settings.append(Setting("server.context-path", str(context.get("path")), _xml_source(file, text, "<Context", "path"),
                                "Context path"))
    return settings


# ------------------------------------------------------------------ helpers


@dataclass(frozen=True)
class _Bundle:
    """The bundle's files and the variables compose interpolates from them."""

    files: tuple[BundleFile, ...]
    variables: dict[str, tuple[str, str]]  # name → (value, the file that defines it)


def env_values(files: Sequence[BundleFile]) -> dict[str, tuple[str, str]]:
    """name → (value, file) of every variable the bundle's ``.env`` and env files set: what
    compose interpolates, and what a customer's proxy templates take (``lab.reproduce.variables``)."""
    values: dict[str, tuple[str, str]] = {}
    for file in files:
        name = file.relpath.rsplit("/", 1)[-1]
        if file.kind == "env" or name in (".env", "env") or name.startswith(".env.") or name.endswith(".env"):
            for line in _text(file).splitlines():
                if (match := _ENV_LINE.match(line)) and not line.lstrip().startswith("#"):
                    values[match.group(1)] = (_unquoted(match.group(2)), file.relpath)
    return values


def interpolate(value: str, variables: dict[str, tuple[str, str]], source: Source) -> str:
    """``${VAR}``, ``${VAR:-default}``, ``$VAR`` from ``variables``, ``$$`` a literal ``$`` (as
    Compose reads them); LabError for a variable with no value."""
    def replace(match: re.Match[str]) -> str:
        if match.group("dollar"):
            return "$"
        name = match.group("braced") or match.group("bare")
        if name in variables:
            return variables[name][0]
        if match.group("default") is not None:
            return match.group("default")
        raise LabError(f"{source}: ${{{name}}} has no value in the bundle: send the .env beside it, or pass "
                       f"--env {name}=VALUE")
    return _VARIABLE.sub(replace, value)


def _text(file: BundleFile) -> str:
    return file.path.read_text(encoding="utf-8-sig", errors="replace")


def _unquoted(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"" else value


def compose_yaml(file: BundleFile) -> yaml.Node | None:
    """The file's YAML node tree; one line (LabError) naming the line when it is not YAML."""
    try:
        return yaml.compose(_text(file), Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise LabError(f"{file.relpath}:{(mark.line + 1) if mark else 1}: not valid YAML: "
                       f"{getattr(error, 'problem', error)}") from None


def child(node: yaml.Node | None, key: str) -> yaml.Node | None:
    """The value under ``key`` of a YAML mapping (None for anything else)."""
    if not isinstance(node, yaml.MappingNode):
        return None
    return next((value for name, value in node.value if name.value == key), None)


def mapping_items(node: yaml.Node | None) -> list[tuple[yaml.Node, yaml.Node]]:
    """(key, value) node pairs of a YAML mapping ([] for anything else)."""
    return list(node.value) if isinstance(node, yaml.MappingNode) else []


def sequence(node: yaml.Node | None) -> list[yaml.Node]:
    """The items of a YAML sequence ([] for anything else)."""
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def _scalar(node: yaml.Node | None) -> str | None:
    return str(node.value) if isinstance(node, yaml.ScalarNode) and node.value != "" else None


def _strings(node: yaml.Node | None) -> list[str]:
    if isinstance(node, yaml.ScalarNode):
        return [str(node.value)]
    return [str(item.value) for item in sequence(node) if isinstance(item, yaml.ScalarNode)]


def _xml_source(file: BundleFile, text: str, element: str, attribute: str) -> Source:
    start = text.find(element)
    at = text.find(f"{attribute}=", start if start >= 0 else 0)
    return Source(file.relpath, text.count("\n", 0, max(at, 0)) + 1)
