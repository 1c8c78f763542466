"""A customer's nginx files on the lab's proxy host: Debian's layout, ``daemon off;`` unless
the config says otherwise, and a server block of the lab's own around location-only snippets."""

from __future__ import annotations

import posixpath

from lab.provision import ContainerFile
from lab.proxies.nginx.reader import CONF_PREFIX, SNIPPETS_DIR, WRAPPER_SITE, wrapper_site
from lab.reproduce.model import BundleFile, ProxySetup
from lab.reproduce.placement import Placed, ProxyHost, ProxyStart


class NginxHost(ProxyHost):
    def snippet(self, proxy: ProxySetup, file: BundleFile) -> tuple[str, str] | None:
        if file.relpath not in proxy.snippets:
            return None
        return (f"{SNIPPETS_DIR}/{posixpath.basename(file.relpath)}",
                f"a location-only snippet: the lab's server {{}} includes it ({WRAPPER_SITE}), since nginx refuses "
                "`location` outside one")

    def site_path(self, server_root: str, name: str) -> str:
        return f"{CONF_PREFIX}/sites-enabled/{name}"

    def site_reason(self, server_root: str) -> str:
        return "a site file: Debian's nginx.conf includes sites-enabled/*"

    def include_root(self, server_root: str) -> str:
        return CONF_PREFIX

    def start(self, proxy: ProxySetup, placed: list[Placed], main: str | None, server_root: str,
              environment: dict[str, str]) -> ProxyStart:
        environment["LAB_NGINX_CONF"] = main or self.kind.main_config_path
        environment["LAB_NGINX_GLOBALS"] = "" if proxy.daemon_source else "daemon off;"
        reason = "the customer's own" if main else "Debian's stock nginx.conf (it includes conf.d/*.conf and sites-enabled/*)"
        return ProxyStart(environment, environment["LAB_NGINX_CONF"], reason)

    def lab_config_files(self, proxy: ProxySetup, placed: list[Placed], start: ProxyStart,
                         public_host: str) -> list[ContainerFile]:
        if not proxy.snippets:
            return []
        snippets = [item.path for item in placed if item.file.relpath in proxy.snippets]
        return [ContainerFile(WRAPPER_SITE, wrapper_site(proxy, snippets, public_host).encode())]

    def added_rows(self, proxy: ProxySetup, public_host: str | None) -> list[tuple[str, str, str]]:
        if not proxy.snippets:
            return []
        listener = proxy.listeners[0]
        return [("server block", f"(not in the bundle: {', '.join(proxy.snippets)} holds only locations)",
                 f"{WRAPPER_SITE}: the lab's server {{ listen {listener.port}{' ssl' if listener.tls else ''}; "
                 f"server_name {public_host}; client_max_body_size 0; include …; }} — "
                 + ("https because server.scheme=https" if listener.tls else
                    "plain HTTP: Bitbucket's settings name no https")
                 + "; send the real server block to test its TLS, names and limits")]

    def foreground(self, proxy: ProxySetup, environment: dict[str, str]) -> str:
        return ("the config's own `daemon` line decides" if proxy.daemon_source
                else "nginx -g 'daemon off;' (the file is not edited)")
