"""The lab's browser node: Debian's Chromium on the users' network, driven over DevTools.

The node runs the ``browser`` image (built on first use, from the lab's base, with
Debian's own ``chromium``: no browser is ever downloaded). Like a gateway it starts on the
run's publishing bridge — only so its DevTools port can be published on the host's
127.0.0.1 — and joins the users' network; its entrypoint removes the default route, and
its DNS is Docker's on the lab networks (``SEALED_DNS``), so it resolves names exactly as
users do and reaches nothing but the lab — and, like the users' gateway, only the names
users may reach (Chromium's ``--host-resolver-rules`` hold the gateway's allow-list, so a
firewalled port or an inside-only name stays out of reach). Its throwaway profile's NSS
database trusts the lab root alone.

Chromium answers DevTools on 127.0.0.1:9222 inside the container; ``socat`` relays
9223 to it, and the host connects with Playwright's ``connect_over_cdp`` (its driver
ships in the PyPI package; it never launches a browser of its own here). Chromium builds
its WebSocket URL from the Host header it is sent, ``127.0.0.1:<published port>``.

The PKI node (``pki.lab.test``, the gateway image running ``aia.py``) serves the lab
intermediate at the leaf's AIA URL on the users' network, for a browser that is sent the
leaf alone — see :mod:`lab.pki`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from lab.client import REQUEST_ID_HEADER, request_id
from lab.errors import LabError
from lab.pki import AIA_HOST, AIA_PATH, TlsFiles
from lab.provision import ContainerFile

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Playwright
    from playwright.async_api import Page as AsyncPage
    from playwright.sync_api import BrowserContext as SyncContext

T = TypeVar("T")

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
RUN_TIMEOUT_S = 90
"""A whole browser check (a few steps) is bounded by this."""


@dataclass(frozen=True)
class BrowserEndpoint:
    """A running browser node as the checks see it: where its DevTools answer on the host,
    where screenshots go, how to read the node's log when something times out, and the
    run's shared :class:`BrowserDriver`."""

    cdp_url: str
    artifacts: Path
    version: str = ""
    log: Callable[[], str] = field(default=lambda: "(no log)", compare=False, repr=False)
    driver: BrowserDriver | None = field(default=None, compare=False, repr=False)

    def screenshot_path(self, name: str) -> Path:
        self.artifacts.mkdir(parents=True, exist_ok=True)
        return self.artifacts / f"{name}.png"

    def run(self, work: Callable[[BrowserContext], Awaitable[T]], timeout: float = RUN_TIMEOUT_S) -> T:
        """``await work(context)`` in a fresh incognito context of the node's Chromium, on
        the run's driver (one Playwright driver, connected once, shared by every browser
        check; they run at once). LabError with the node's log on a timeout."""
        if self.driver is None:
            raise LabError("this browser endpoint has no driver (start it with LabOptions(browser=True))")
        try:
            return self.driver.run(work, request_id.get(), timeout)
        except concurrent.futures.TimeoutError:
            raise LabError(f"the browser did not finish within {timeout:.0f} s; the browser node's log: "
                           f"{' | '.join(self.log().splitlines()[-10:])}") from None


class BrowserDriver:
    """One Playwright driver per run, started while the containers start and connected to
    the node's Chromium as soon as its DevTools answer (so the checks do not wait for
    either), in a thread of its own running an asyncio loop: checks hand it coroutines,
    which run concurrently. :meth:`close` ends the driver process with the run."""

    def __init__(self) -> None:
        self._cdp_url, self._log = "", lambda: "(no log)"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="lab-browser-driver", daemon=True)
        self._thread.start()
        self._browser: Browser | None = None
        self._lock = asyncio.Lock()
        self._started = asyncio.run_coroutine_threadsafe(self._start(), self._loop)  # while containers start

    async def _start(self) -> Playwright:
        from playwright.async_api import async_playwright

        return await async_playwright().start()

    def connect_soon(self, cdp_url: str, log: Callable[[], str]) -> None:
        """Connect to the node's DevTools (they answer by now) in the background."""
        self._cdp_url, self._log = cdp_url, log
        asyncio.run_coroutine_threadsafe(self._connected(), self._loop)

    async def _connected(self) -> Browser:
        from playwright.async_api import Error

        async with self._lock:
            if self._browser is None:
                playwright = await asyncio.wrap_future(self._started)
                try:
                    self._browser = await playwright.chromium.connect_over_cdp(self._cdp_url, timeout=CONNECT_TIMEOUT_MS)
                except Error as error:
                    raise LabError(f"cannot drive the browser node at {self._cdp_url}: {first_line(str(error))}; "
                                   f"its log: {' | '.join(self._log().splitlines()[-15:])}") from None
            return self._browser

    def run(self, work: Callable[[BrowserContext], Awaitable[T]], tag: str | None, timeout: float) -> T:
        future = asyncio.run_coroutine_threadsafe(self._in_context(work, tag), self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    async def _in_context(self, work: Callable[[BrowserContext], Awaitable[T]], tag: str | None) -> T:
        from playwright.async_api import Error

        browser = await self._connected()
        context = await browser.new_context(viewport={"width": 1100, "height": 700})
        context.set_default_timeout(STEP_TIMEOUT_MS)
        context.set_default_navigation_timeout(STEP_TIMEOUT_MS)
        if tag:  # the proxy's and Bitbucket's logs name the check (evidence)
            await context.set_extra_http_headers({REQUEST_ID_HEADER: tag})
        try:
            return await work(context)
        finally:
            with contextlib.suppress(Error):
                await context.close()

    def close(self) -> None:
        """End the driver process and the thread; never raises."""
        async def stop() -> None:
            with contextlib.suppress(Exception):
                await (await asyncio.wrap_future(self._started)).stop()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def browser_files(tls: TlsFiles) -> list[ContainerFile]:
    """The lab root, the only certificate the browser's NSS database trusts."""
    return [ContainerFile(CA_FILE, tls.ca.read_bytes())]


def pki_files(tls: TlsFiles) -> list[ContainerFile]:
    """The intermediate in DER, served at the leaf's AIA URL."""
    return [ContainerFile(AIA_FILE, (tls.directory / "chain.der").read_bytes())]


PKI_COMMAND = ["python3", "/usr/local/bin/lab-aia.py"]
PKI_ENVIRONMENT = {"LAB_AIA_FILE": AIA_FILE, "LAB_AIA_PATH": AIA_PATH}
PKI_ALIASES = (AIA_HOST,)


def web_names(gateway_allows: list[str]) -> list[str]:
    """The names the browser may resolve: what the users' gateway lets users reach on any
    port, and the PKI node. A node behind the users' firewall (``name:port`` entries, e.g.
    Bitbucket's SSH port) is not the web's: Docker's DNS knows it, users' browsers cannot
    reach it, so the browser node does not resolve it."""
    return [*(name for name in gateway_allows if ":" not in name), AIA_HOST]


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
def browser_context(endpoint: BrowserEndpoint) -> Iterator[SyncContext]:
    """A fresh incognito context in the node's Chromium on a driver of its own (Playwright's
    sync API: for tests and ad-hoc use; the checks use :meth:`BrowserEndpoint.run`), closed
    afterwards; the browser itself keeps running for the run. LabError with the node's log
    when the DevTools connection fails."""
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


async def screenshot(page: AsyncPage, endpoint: BrowserEndpoint, name: str) -> Path | None:
    """A PNG of what the page shows now (Chromium's own error page included), or None."""
    from playwright.async_api import Error

    path = endpoint.screenshot_path(name)
    try:
        path.write_bytes(await page.screenshot(timeout=STEP_TIMEOUT_MS))
    except Error:
        return None
    return path


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text
