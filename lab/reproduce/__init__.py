"""Read a customer's bundle (proxy config, ``bitbucket.properties``, certificates) and infer their setup.

``read_bundle`` is the whole pure-Python half of ``python -m lab reproduce BUNDLE``:
:mod:`~lab.reproduce.bundle` collects and classifies the files, the readers
(each proxy kind's own, ``lab/proxies/<kind>/reader.py``, and :mod:`~lab.reproduce.properties`,
:mod:`~lab.reproduce.certificates`) read them, and
:mod:`~lab.reproduce.infer` decides the public URL. Nothing here touches Docker.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

from lab.reproduce.bundle import collect_bundle
from lab.reproduce.infer import infer
from lab.reproduce.model import CustomerSetup
from lab.reproduce.variables import render_templates


def read_bundle(paths: Sequence[Path], public_url: str | None = None,
                env: Mapping[str, str] | None = None, bitbucket_upstream: str | None = None) -> CustomerSetup:
    """What the files under ``paths`` say about the customer's setup.

    Raises :class:`lab.errors.LabError` (one line) for anything the lab cannot reproduce:
    unreadable or binary files, a private key, no proxy config and no properties, two
    proxies' configs, an include the bundle lacks, a ``${VAR}`` with no value (``env``:
    ``--env`` values, which win over the bundle's ``.env``), a proxy with several upstreams
    that could be Bitbucket (``bitbucket_upstream``, ``--bitbucket-upstream HOST:PORT``, says which).
    """
    bundle_name = ", ".join(str(path) for path in paths) or "the bundle"
    files, rendered = render_templates(collect_bundle(paths), env)
    return dataclasses.replace(infer(files, public_url, bundle_name, bitbucket_upstream), rendered=rendered)


__all__ = ["read_bundle", "CustomerSetup"]
