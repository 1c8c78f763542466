"""``${VAR}`` in a customer's nginx or HAProxy files: templates rendered as their deployment does.

People keep proxy configs as templates: the official nginx image renders
``/etc/nginx/templates/*.template`` with ``envsubst``, HAProxy setups run ``envsubst <
haproxy.cfg.template > haproxy.cfg`` (HAProxy itself expands ``"${VAR}"`` only inside double
quotes, from its environment). The lab renders such a file into a working copy with the
values the bundle gives — its ``.env`` and env files, or ``--env VAR=VALUE`` (which wins) — and
a mapping row names each variable and where its value came from. Only upper-case names count:
nginx's own variables (``$host``, ``${request_uri}``) are lower-case and stay as they are. A
variable with no value is refused at once, naming it and the option. Apache files are left to
Apache, which expands ``${VAR}`` from its environment and ``Define`` itself.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from lab.errors import LabError
from lab.proxies import KINDS
from lab.reproduce.model import BundleFile
from lab.reproduce.settings import env_values

TEMPLATE_KINDS = tuple(name for name, kind in KINDS.items() if kind.renders_templates)
"""Kinds whose files may be templates (``ProxyKind.renders_templates``)."""
_TEMPLATE_VARIABLE = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}|\$([A-Z][A-Z0-9_]*)\b")


@dataclass(frozen=True)
class Rendered:
    """A bundle file rendered into a working copy: each variable, its value and its origin."""

    relpath: str
    values: tuple[tuple[str, str, str], ...]  # (name, value, "from .env" / "from --env")


def render_templates(files: Sequence[BundleFile], given: Mapping[str, str] | None = None,
                     work: Path | None = None) -> tuple[tuple[BundleFile, ...], tuple[Rendered, ...]]:
    """``files`` with every nginx/HAProxy file that uses ``${VAR}`` replaced by its rendered
    working copy (same relpath; the original is never touched), and what was rendered."""
    values = {name: (value, f"from {origin}") for name, (value, origin) in env_values(files).items()}
    values.update({name: (value, "from --env") for name, value in (given or {}).items()})
    out, rendered = [], []
    for file in files:
        text = file.path.read_text(encoding="utf-8-sig", errors="replace") if file.kind in TEMPLATE_KINDS else ""
        names = list(dict.fromkeys(match.group(1) or match.group(2) for match in _TEMPLATE_VARIABLE.finditer(text)))
        if not names:
            out.append(file)
            continue
        missing = [name for name in names if name not in values]
        if missing:
            line = text.count("\n", 0, text.find(missing[0])) + 1
            raise LabError(f"{file.relpath}:{line}: ${{{missing[0]}}} has no value in the bundle: send the .env (or "
                           f"env file) that sets it, or pass --env {missing[0]}=VALUE")
        copy = _working_copy(work, file.relpath, _TEMPLATE_VARIABLE.sub(
            lambda match: values[match.group(1) or match.group(2)][0], text))
        out.append(replace(file, path=copy, original=file.path))
        rendered.append(Rendered(file.relpath, tuple((name, *values[name]) for name in names)))
    return tuple(out), tuple(rendered)


def parse_env_option(pairs: Sequence[str]) -> dict[str, str]:
    """``--env VAR=VALUE`` options; LabError for one without ``=``."""
    values = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise LabError(f"--env {pair!r}: give NAME=VALUE, e.g. --env ENV_DOMAIN=example.org")
        values[name] = value
    return values


def _working_copy(work: Path | None, relpath: str, text: str) -> Path:
    folder = work or Path(tempfile.mkdtemp(prefix="bitbucket-lab-rendered-"))
    path = folder / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
