"""The lab's browser node: Debian's Chromium on the users' network, driven over DevTools.

The node runs the ``browser`` image (built on first use, from the lab's base, with
Debian's own ``chromium``: no browser is ever downloaded). Like a gateway it starts on the
run's publishing bridge — only so its DevTools port can be published on the host's
127.0.0.1 — and joins the users' network; its entrypoint removes the default route, and
its DNS is Docker's on the lab networks (``SEALED_DNS``), so it resolves names exactly as
users do and reaches nothing but the lab. Its throwaway profile's NSS database trusts the
lab root alone.

Chromium answers DevTools on 127.0.0.1:9222 inside the container; ``socat`` relays
9223 to it, and the host connects with Playwright's ``connect_over_cdp`` (its driver
ships in the PyPI package; it never launches a browser of its own here). Chromium builds
its WebSocket URL from the Host header it is sent, ``127.0.0.1:<published port>``.

The PKI node (``pki.lab.test``, the gateway image running ``aia.py``) serves the lab
intermediate at the leaf's AIA URL on the users' network, for a browser that is sent the
leaf alone — see :mod:`lab.pki`.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lab.client import REQUEST_ID_HEADER, request_id
from lab.errors import LabError
from lab.pki import AIA_HOST, AIA_PATH, TlsFiles
from lab.provision import ContainerFile

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

BROWSER_NODE = "browser"
PKI_NODE = "pki"
USERS_NETWORK = "outside"
CDP_PORT = 9223
"""Inside the container: socat's relay to Chromium's DevTools (127.0.0.1:9222)."""
AIA_FILE = "/etc/lab/aia/intermediate.crt"
CA_FILE = "/etc/lab/tls/ca.pem"
READY_TIMEOUT_S = 30
CONNECT_TIMEOUT_MS = 15_000
STEP_TIMEOUT_MS = 15_000
"""Every navigation, click and screenshot is bounded by this."""


@dataclass(frozen=True)
class BrowserEndpoint:
    """A running browser node as the checks see it: where its DevTools answer on the host,
    where screenshots go, and how to read the node's log when something times out."""

    cdp_url: str
    artifacts: Path
    version: str = ""
    log: Callable[[], str] = field(default=lambda: "(no log)", compare=False, repr=False)

    def screenshot_path(self, name: str) -> Path:
        self.artifacts.mkdir(parents=True, exist_ok=True)
        return self.artifacts / f"{name}.png"


def browser_files(tls: TlsFiles) -> list[ContainerFile]:
    """The lab root, the only certificate the browser's NSS database trusts."""
    return [ContainerFile(CA_FILE, tls.ca.read_bytes())]


def pki_files(tls: TlsFiles) -> list[ContainerFile]:
    """The intermediate in DER, served at the leaf's AIA URL."""
    return [ContainerFile(AIA_FILE, (tls.directory / "chain.der").read_bytes())]


PKI_COMMAND = ["python3", "/usr/local/bin/lab-aia.py"]
PKI_ENVIRONMENT = {"LAB_AIA_FILE": AIA_FILE, "LAB_AIA_PATH": AIA_PATH}
PKI_ALIASES = (AIA_HOST,)


def wait_for_devtools(port: int, log: Callable[[], str], timeout: float = READY_TIMEOUT_S) -> str:
    """Chromium's version once its DevTools answer on 127.0.0.1:``port``; LabError with
    the node's log when they do not within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/version", timeout=2) as response:
                return str(json.loads(response.read()).get("Browser", "Chromium"))
        except (urllib.error.URLError, OSError, ValueError) as error:
            last = str(error)
        time.sleep(0.2)
    raise LabError(f"the browser node's DevTools did not answer on 127.0.0.1:{port} within {timeout:.0f} s "
                   f"({last}); its log: {' | '.join(log().splitlines()[-15:])}")


@contextlib.contextmanager
def browser_context(endpoint: BrowserEndpoint) -> Iterator[BrowserContext]:
    """A fresh incognito context in the node's Chromium (cookies of one check never leak
    into another's), closed afterwards; the browser itself keeps running for the run.
    LabError with the node's log when the DevTools connection fails."""
    from playwright.sync_api import Error, sync_playwright

    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.connect_over_cdp(endpoint.cdp_url, timeout=CONNECT_TIMEOUT_MS)
        except Error as error:
            raise LabError(f"cannot drive the browser node at {endpoint.cdp_url}: {first_line(str(error))}; "
                           f"its log: {' | '.join(endpoint.log().splitlines()[-15:])}") from None
        context = browser.new_context(viewport={"width": 1100, "height": 700})
        if tag := request_id.get():  # the proxy's and Bitbucket's logs name the check (evidence)
            context.set_extra_http_headers({REQUEST_ID_HEADER: tag})
        context.set_default_timeout(STEP_TIMEOUT_MS)
        context.set_default_navigation_timeout(STEP_TIMEOUT_MS)
        try:
            yield context
        finally:
            with contextlib.suppress(Error):
                context.close()


def screenshot(page: Page, endpoint: BrowserEndpoint, name: str) -> Path | None:
    """A PNG of what the page shows now (Chromium's own error page included), or None."""
    from playwright.sync_api import Error

    path = endpoint.screenshot_path(name)
    try:
        path.write_bytes(page.screenshot(timeout=STEP_TIMEOUT_MS))
    except Error:
        return None
    return path


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text
