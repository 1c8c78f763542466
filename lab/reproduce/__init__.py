"""Read a customer's bundle (proxy config, ``bitbucket.properties``, certificates) and infer their setup.

``read_bundle`` is the whole pure-Python half of ``python -m lab reproduce BUNDLE``:
:mod:`~lab.reproduce.bundle` collects and classifies the files, the parsers
(:mod:`~lab.reproduce.nginx`, :mod:`~lab.reproduce.apache`, :mod:`~lab.reproduce.haproxy`,
:mod:`~lab.reproduce.properties`, :mod:`~lab.reproduce.certificates`) read them, and
:mod:`~lab.reproduce.infer` decides the public URL. Nothing here touches Docker.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lab.reproduce.bundle import collect_bundle
from lab.reproduce.infer import infer
from lab.reproduce.model import CustomerSetup


def read_bundle(paths: Sequence[Path], public_url: str | None = None) -> CustomerSetup:
    """What the files under ``paths`` say about the customer's setup.

    Raises :class:`lab.errors.LabError` (one line) for anything the lab cannot reproduce:
    unreadable or binary files, a private key, no proxy config and no properties, two
    proxies' configs, an include the bundle lacks.
    """
    bundle_name = ", ".join(str(path) for path in paths) or "the bundle"
    return infer(collect_bundle(paths), public_url, bundle_name)


__all__ = ["read_bundle", "CustomerSetup"]
