"""A customer's HAProxy files on the lab's proxy host: each loaded with ``-f``, after the lab's
minimal ``haproxy.cfg`` (global, defaults) when the bundle has no main config; ``-db`` keeps
it in the foreground."""

from __future__ import annotations

from lab.provision import ContainerFile
from lab.reproduce.model import ProxySetup
from lab.reproduce.placement import Placed, ProxyHost, ProxyStart

LAB_HAPROXY_BASE = "/etc/lab/haproxy.cfg"


class HaproxyHost(ProxyHost):
    def site_reason(self, server_root: str) -> str:
        return "loaded with -f after the main config"

    def start(self, proxy: ProxySetup, placed: list[Placed], main: str | None, server_root: str,
              environment: dict[str, str]) -> ProxyStart:
        files = [item.path for item in placed]
        if main is None:
            files.insert(0, LAB_HAPROXY_BASE)
        environment["LAB_HAPROXY_FILES"] = " ".join(dict.fromkeys([main or LAB_HAPROXY_BASE, *files]))
        reason = ("the customer's own" if main else
                  "the lab's minimal haproxy.cfg (global, defaults) before the customer's sections")
        return ProxyStart(environment, main or LAB_HAPROXY_BASE, reason)

    def lab_config_files(self, proxy: ProxySetup, placed: list[Placed], start: ProxyStart,
                         public_host: str) -> list[ContainerFile]:
        if LAB_HAPROXY_BASE not in start.environment.get("LAB_HAPROXY_FILES", ""):
            return []
        return [ContainerFile(LAB_HAPROXY_BASE, (self.kind.package / "haproxy.cfg").read_bytes())]

    def foreground(self, proxy: ProxySetup, environment: dict[str, str]) -> str:
        return "haproxy -db (wins over a `daemon` line; the file is not edited)"
