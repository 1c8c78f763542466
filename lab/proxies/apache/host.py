"""A customer's Apache files on the lab's proxy host, in the layout their ``ServerRoot`` says:
Debian's ``/etc/apache2``, RHEL's ``/etc/httpd`` (run on a stand-in ``httpd.conf`` of the
lab's when the bundle has none) or the official image's ``/usr/local/apache2`` (the lab's
own build of that layout)."""

from __future__ import annotations

from collections.abc import Sequence

from lab.provision import ContainerFile
from lab.proxies.apache.reader import (DEBIAN_ROOT, OFFICIAL_ROOT, RHEL_ROOT, detect_server_root, loads_mpm,
                                       unsupported_directives)
from lab.reproduce.model import BundleFile, ProxySetup
from lab.reproduce.placement import Placed, ProxyHost, ProxyStart

OFFICIAL_IMAGE = "apache-official"
MPM_PRELOAD = "LoadModule mpm_event_module modules/mod_mpm_event.so"
LAB_RHEL_HTTPD_CONF = "/etc/lab/httpd-rhel.conf"
MAIN_PATHS = {DEBIAN_ROOT: "/etc/apache2/apache2.conf", RHEL_ROOT: "/etc/httpd/conf/httpd.conf",
              OFFICIAL_ROOT: "/usr/local/apache2/conf/httpd.conf"}
SITE_DIRS = {DEBIAN_ROOT: "/etc/apache2/sites-enabled", RHEL_ROOT: "/etc/httpd/conf.d",
             OFFICIAL_ROOT: "/usr/local/apache2/conf/extra"}
SITE_REASONS = {
    DEBIAN_ROOT: "a vhost file: Debian's apache2.conf includes sites-enabled/*.conf (.conf added when missing)",
    RHEL_ROOT: "a vhost file: RHEL's httpd.conf includes conf.d/*.conf (.conf added when missing)",
    OFFICIAL_ROOT: "a vhost file beside the official image's extra/ configs (.conf added when missing)",
}
STOCK_MAIN = {
    DEBIAN_ROOT: "Debian's stock apache2.conf (it includes sites-enabled/*.conf)",
    OFFICIAL_ROOT: "the official image's stock httpd.conf (it includes no file of the bundle: send the customer's)",
    RHEL_ROOT: "the lab's stand-in for RHEL's httpd.conf: Debian's modules, Listen 80/443, conf.d/*.conf",
}
"""What runs as the main config when the bundle has none, by layout."""


def layout(server_root: str) -> str:
    """The layout a ``ServerRoot`` means: RHEL's, the official image's, else Debian's."""
    return server_root if server_root in (RHEL_ROOT, OFFICIAL_ROOT) else DEBIAN_ROOT


class ApacheHost(ProxyHost):
    def server_root(self, files: Sequence[BundleFile]) -> str:
        return detect_server_root(files)

    def refusal(self, proxy: ProxySetup) -> str | None:
        missing = unsupported_directives(proxy)
        if not missing:
            return None
        directive, module, source = missing[0]
        return (f"{source}: {directive} needs {module}, which Debian's apache2 does not ship; "
                "the lab cannot run this config")

    def image(self, server_root: str) -> str | None:
        return OFFICIAL_IMAGE if server_root == OFFICIAL_ROOT else None

    def image_row(self, image: str) -> tuple[str, str] | None:
        if image != OFFICIAL_IMAGE:
            return None
        return (f'ServerRoot "{OFFICIAL_ROOT}" (the official httpd image\'s layout)',
                "httpd built by the lab as that image lays it out: bin/, conf/ (its stock extra/, mime.types, "
                "magic), logs/, modules/ — the same httpd release as Debian's apache2, whose other "
                "modules it loads")

    def main_path(self, server_root: str) -> str:
        return MAIN_PATHS[layout(server_root)]

    def site_path(self, server_root: str, name: str) -> str:
        if not name.endswith(".conf"):
            name += ".conf"  # Debian's and RHEL's main configs include *.conf only
        return f"{SITE_DIRS[layout(server_root)]}/{name}"

    def site_reason(self, server_root: str) -> str:
        return SITE_REASONS[layout(server_root)]

    def start(self, proxy: ProxySetup, placed: list[Placed], main: str | None, server_root: str,
              environment: dict[str, str]) -> ProxyStart:
        where = layout(server_root)
        environment["LAB_APACHE_CONF"] = main or (LAB_RHEL_HTTPD_CONF if where == RHEL_ROOT else MAIN_PATHS[where])
        reason = "the customer's own" if main else STOCK_MAIN[where]
        if where == OFFICIAL_ROOT and not loads_mpm(proxy, server_root):
            # the official image before 2.4.x's stock httpd.conf built event in: its configs load no MPM
            environment["LAB_APACHE_PRELOAD"] = MPM_PRELOAD
        if where == RHEL_ROOT:
            environment["LAB_DIRS"] = " ".join([*proxy.directories, "/etc/httpd/logs", "/run/httpd"])
            environment["LAB_ACCOUNTS"] = " ".join(dict.fromkeys([*proxy.accounts, "apache"]))
        return ProxyStart(environment, environment["LAB_APACHE_CONF"], reason)

    def lab_config_files(self, proxy: ProxySetup, placed: list[Placed], start: ProxyStart,
                         public_host: str) -> list[ContainerFile]:
        if start.main_config != LAB_RHEL_HTTPD_CONF:
            return []
        return [ContainerFile(LAB_RHEL_HTTPD_CONF, (self.kind.package / "httpd-rhel.conf").read_bytes())]

    def foreground(self, proxy: ProxySetup, environment: dict[str, str]) -> str:
        if "LAB_APACHE_PRELOAD" in environment:
            return (f"httpd -C '{environment['LAB_APACHE_PRELOAD']}' -DFOREGROUND: the files load no MPM, which the "
                    "official image's httpd of their time had built in (the file is not edited)")
        return ("apache2 -DFOREGROUND, with -C 'ErrorLogFormat … rid=%{X-Request-ID}i' before the config so each "
                "error line names its request (an ErrorLogFormat of the customer's own wins)")
