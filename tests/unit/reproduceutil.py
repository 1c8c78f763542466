"""Helpers shared by the reproduce parser tests: write a bundle, summarise what was parsed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from lab.reproduce.bundle import collect_bundle
from lab.reproduce.model import BundleFile, Listener, ProxySetup


def parsed(directory: Path, files: dict[str, str],
           parse: Callable[[Sequence[BundleFile]], ProxySetup]) -> ProxySetup:
    """Write ``files`` ({relpath: text}) under ``directory`` and parse them as a bundle."""
    for relpath, text in files.items():
        (directory / relpath).parent.mkdir(parents=True, exist_ok=True)
        (directory / relpath).write_text(text)
    return parse(collect_bundle([directory]))


def ports(listeners: tuple[Listener, ...]) -> dict[int, str]:
    """{port: "redirect" | "tls" | "plain" (+"+h2")} of the listeners."""
    def describe(listener: Listener) -> str:
        if listener.redirects_to_https:
            return "redirect"
        return ("tls" if listener.tls else "plain") + ("+h2" if listener.http2 else "")
    return {listener.port: describe(listener) for listener in listeners}


def tls(setup: ProxySetup) -> list[tuple[str, str, str]]:
    """(directive, path, role) of every TLS reference."""
    return [(ref.directive, ref.path, ref.role) for ref in setup.tls_files]
