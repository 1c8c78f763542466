"""Checks with a real browser: Chromium on the users' network (:mod:`lab.browser`).

``browser.login`` is what a user does: open the public URL, follow Bitbucket's redirects,
fill the login form, land on the dashboard logged in. Chromium enforces what a
browser-like HTTP client does not: certificate errors are final, a redirect loop is
``ERR_TOO_MANY_REDIRECTS``, a ``Secure`` cookie set over plain http is dropped, mixed
content and forms posting to http are flagged. A screenshot of where it ended is kept,
success or failure.

``browser.git-agree`` puts Chromium's TLS verdict next to git's. Chromium fetches a
missing intermediate from the leaf's AIA URL; git never does — "works in my browser, git
says unable to get local issuer certificate".
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lab.browser import STEP_TIMEOUT_MS, BrowserEndpoint, first_line, screenshot
from lab.checks.base import (FRONT_DOOR, FRONT_DOOR_TO_BITBUCKET, USERS_TO_FRONT_DOOR, CheckTarget, Verdict, check,
                             only_with_browser)
from lab.checks.explain import connector_hint, loop_hint
from lab.errors import LabError
from lab.pki import AIA_URL

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, Page, Request, Response

LOGIN_FORM = "form:has(input[name=j_password])"
_NET_ERROR = re.compile(r"net::(ERR_[A-Z_]+)")
NET_ERROR_HINTS = {
    "ERR_CERT_AUTHORITY_INVALID": "the browser does not trust the certificate: it is not issued by the lab root "
    "(self-signed?) — serve a certificate your CA issued, with its intermediate (fullchain)",
    "ERR_CERT_DATE_INVALID": "the certificate has expired (or is not yet valid): renew it and reload the proxy",
    "ERR_CERT_COMMON_NAME_INVALID": "the certificate does not name {host}: issue it with {host} as a "
    "subjectAltName DNS name, or point users at a name it has",
    "ERR_NAME_NOT_RESOLVED": "{host} does not resolve on the users' network: fix DNS for the public name",
    "ERR_CONNECTION_REFUSED": "nothing listens on {host}:{port}: the proxy's listen/bind must match the public URL",
    "ERR_SSL_PROTOCOL_ERROR": "the TLS handshake failed: does {host}:{port} speak TLS (listen … ssl / SSLEngine on)?",
}

SESSION_COOKIE = "BITBUCKETSESSIONID"
"""The session cookie Bitbucket sets (Tomcat's JSESSIONID renamed): the checks see Bitbucket as
users do, so its name is here, not read from the stub (tests/unit hold the two equal)."""


def _only_with_browser_and_https(target: CheckTarget) -> str | None:
    return only_with_browser(target) or (None if target.https else "the public URL is not https")


@dataclass
class _Journey:
    """What the browser did on the way: every main-frame request, console warnings, and
    the response to the login form."""

    hops: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    login_response: Response | None = None

    def watch(self, page: Page) -> None:
        def on_request(request: Request) -> None:
            if request.is_navigation_request() and request.frame == page.main_frame:
                self.hops.append(request.url)

        def on_response(response: Response) -> None:
            if response.request.method == "POST" and "j_atl_security_check" in response.url:
                self.login_response = response

        page.on("request", on_request)
        page.on("response", on_response)
        page.on("console", lambda message: self.warnings.append(message.text)
                if "Mixed Content" in message.text or "not secure" in message.text else None)

    def downgrades(self) -> list[str]:
        return [url for url in self.hops if url.startswith("http://")]


@check("browser.login", "a real browser (Chromium, lab root only) opens the public URL, follows the redirects, logs "
       "in with the form and lands on the dashboard: no certificate error, loop, http downgrade, mixed content "
       "or dropped session cookie", FRONT_DOOR_TO_BITBUCKET, needs=(FRONT_DOOR,), applies=only_with_browser, slow=True,
       explained_by=("tls.chain", "tls.hostname", "reach.status"))
def browser_login(target: CheckTarget) -> Verdict:
    assert target.browser is not None
    expected = (f"{target.url('/')} → login form → {target.url('/dashboard')} logged in as {target.username}, "
                f"the {SESSION_COOKIE} cookie kept" + ("; never via http://" if target.https else ""))
    endpoint = target.browser

    async def journey_of(context: BrowserContext) -> tuple[str, str | None, Path | None]:
        page = await context.new_page()
        journey = _Journey()
        journey.watch(page)
        observed, hint = await _log_in(target, page, journey)
        if observed is None:
            observed, hint = await _judge_landing(target, page, journey, await context.cookies())
        return observed, hint, await screenshot(page, endpoint, "browser-login")

    try:
        observed, hint, shot = endpoint.run(journey_of)
    except LabError as error:
        return _browser_broke(error, expected)
    attachments = (shot,) if shot else ()
    if hint is None:
        return Verdict(True, observed, expected, attachments=attachments)
    return Verdict(False, observed, expected, hint, attachments=attachments)


async def _log_in(target: CheckTarget, page: Page, journey: _Journey) -> tuple[str | None, str | None]:
    """Open the public URL and submit the login form: (observed, hint) when it went wrong
    on the way, (None, None) once the form was submitted."""
    from playwright.async_api import Error

    try:
        await page.goto(target.url("/"), wait_until="load")
    except Error as error:
        return await _navigation_failure(target, error, journey)
    if target.https and journey.downgrades():
        return await _downgrade(target, journey)
    form = page.locator(LOGIN_FORM)
    if await form.count() == 0:
        return (f"no login form at {page.url} (title {await page.title()!r})",
                f"the browser did not reach Bitbucket's login page: {await _connector_hint(target)}")
    action = str(await form.first.evaluate("form => form.action"))
    if page.url.startswith("https://") and action.startswith("http://"):
        return (f"the login form on {page.url} posts to {action}: Chromium warns the information is not secure",
                await _insecure_page_hint(target))
    await page.fill(f"{LOGIN_FORM} input[name=j_username]", target.username)
    await page.fill(f"{LOGIN_FORM} input[name=j_password]", target.password)
    try:
        async with page.expect_navigation(wait_until="load", timeout=STEP_TIMEOUT_MS):
            await form.first.locator("[type=submit]").first.click()
    except Error as error:
        return await _navigation_failure(target, error, journey)
    return None, None


async def _judge_landing(target: CheckTarget, page: Page, journey: _Journey,
                         cookies: list) -> tuple[str, str | None]:  # type: ignore[type-arg]
    """(observed, None) when the browser landed logged in, else (observed, hint)."""
    if target.https and journey.downgrades():
        return await _downgrade(target, journey)
    text = await page.inner_text("body", timeout=STEP_TIMEOUT_MS)
    session = next((c for c in cookies if c.get("name") == SESSION_COOKIE), None)
    set_cookie = await _set_cookie(journey)
    if f"Logged in as {target.username}" not in text or page.url != target.url("/dashboard"):
        if session is None and set_cookie and "secure" in set_cookie.lower() and page.url.startswith("http://"):
            return (f"the browser dropped the session cookie: Set-Cookie: {set_cookie} over plain http, then "
                    f"landed on {page.url}",
                    "a Secure cookie set over plain http is ignored by browsers, so the login never sticks: do "
                    "not mark cookies Secure on an http site (nginx `proxy_cookie_flags … secure`, Apache "
                    "`Header edit Set-Cookie`, Bitbucket server.secure=true) — or serve https")
        if session is None:
            return (f"no {SESSION_COOKIE} cookie kept; landed on {page.url}", await _connector_hint(target))
        return f"after login the browser landed on {page.url}, not logged in", await _connector_hint(target)
    if journey.warnings:
        return f"logged in, but Chromium warned: {journey.warnings[0][:200]}", await _insecure_page_hint(target)
    secure = bool(session and session.get("secure"))
    return (f"logged in as {target.username} on {page.url} after {len(journey.hops)} page load(s); "
            f"cookie {SESSION_COOKIE} Path={session.get('path') if session else '?'} Secure={secure}"), None


async def _set_cookie(journey: _Journey) -> str:
    from playwright.async_api import Error

    if journey.login_response is None:
        return ""
    try:
        return (await journey.login_response.all_headers()).get("set-cookie", "")
    except Error:
        return ""


async def _navigation_failure(target: CheckTarget, error: Exception, journey: _Journey) -> tuple[str, str]:
    message = first_line(str(error))
    code = match.group(1) if (match := _NET_ERROR.search(message)) else None
    last = journey.hops[-1] if journey.hops else target.url("/")
    if code == "ERR_TOO_MANY_REDIRECTS":
        return (f"ERR_TOO_MANY_REDIRECTS after {len(journey.hops)} hops (last {last})", loop_hint(last))
    if target.https and journey.downgrades():
        return await _downgrade(target, journey)
    if not last.startswith(target.origin + "/"):  # sent away from the public URL, to where users cannot go
        return (f"{code or message} at {last}: Bitbucket sent the browser away from {target.public_url}",
                await _connector_hint(target))
    if code in NET_ERROR_HINTS:
        return (f"{code} at {last}", NET_ERROR_HINTS[code].format(host=target.host, port=target.port))
    if "Timeout" in message:
        log = " | ".join(target.browser.log().splitlines()[-5:]) if target.browser else ""
        return (f"the page did not load within {STEP_TIMEOUT_MS // 1000} s at {last}",
                f"the proxy or Bitbucket does not answer in time; the browser node's log: {log}")
    return f"{code or message} at {last}", await _connector_hint(target)


def _browser_broke(error: LabError, expected: str) -> Verdict:
    """The lab's own browser node failed (not the topology): say so, with its log."""
    return Verdict(False, f"the lab's browser node did not finish: {error}", expected,
                   "the lab itself broke, not the topology: start it again, or skip the browser with --no-browser")


async def _insecure_page_hint(target: CheckTarget) -> str:
    """Mixed content and forms posting to http: the same fix, wherever the http:// comes from."""
    return ("every resource and form of an https page must be https: whatever writes http:// into the pages must "
            "not — a proxy's sub_filter / mod_substitute injection, or Bitbucket building links from the scheme it "
            f"sees ({await _connector_hint(target)})")


async def _connector_hint(target: CheckTarget) -> str:
    """:func:`connector_hint` (a request through the users' gateway) off the driver's loop."""
    return await asyncio.to_thread(connector_hint, target)


async def _downgrade(target: CheckTarget, journey: _Journey) -> tuple[str, str]:
    chain = " → ".join(journey.hops[:6])
    return (f"the browser was sent to plain http ({journey.downgrades()[0]}): {chain}",
            "Bitbucket redirects users of an https site to http:// — the login and its cookie travel "
            f"unencrypted, and browsers warn or loop: {await _connector_hint(target)}")


@dataclass(frozen=True)
class _TlsVerdict:
    accepts: bool
    detail: str


@check("browser.git-agree", "Chromium and git agree on the public URL's certificate (Chromium fetches a missing "
       "intermediate from the leaf's AIA URL; git never does)", USERS_TO_FRONT_DOOR, needs=(FRONT_DOOR,),
       applies=_only_with_browser_and_https, slow=True, explained_by=("tls.chain",))
def browser_git_agree(target: CheckTarget) -> Verdict:
    assert target.browser is not None
    expected = "browser and git give the same TLS verdict"
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:  # git asks while the browser does
        git_future = pool.submit(contextvars.copy_context().run, _git_tls, target)
        try:
            browser, shot = _browser_tls(target, target.browser)
        except LabError as error:
            return _browser_broke(error, expected)
        git = git_future.result()
    attachments = (shot,) if shot else ()
    observed = f"browser {'✔' if browser.accepts else '✘'} ({browser.detail}); git {'✔' if git.accepts else '✘'} " \
               f"({git.detail})"
    if browser.accepts == git.accepts:
        return Verdict(True, observed, expected, attachments=attachments)
    if browser.accepts:
        return Verdict(False, observed, expected, (
            "the AIA split: the server sends its leaf without the intermediate. Chromium fetches the missing "
            f"intermediate from the leaf's Authority Information Access URL ({AIA_URL} in the lab) and shows the "
            "site as secure, but git (libcurl/OpenSSL) never fetches it and fails with 'unable to get local "
            "issuer certificate' — serve fullchain.pem (leaf + intermediate): nginx `ssl_certificate`, Apache "
            "`SSLCertificateFile` (or `SSLCertificateChainFile`), HAProxy `crt` with the chain"), attachments=attachments)
    return Verdict(False, observed, expected, (
        "git trusts what the browser refuses: the browser applies stricter rules (e.g. to the certificate's "
        "names, key usage or validity period) — fix the certificate until both accept it"), attachments=attachments)


def _browser_tls(target: CheckTarget, endpoint: BrowserEndpoint) -> tuple[_TlsVerdict, Path | None]:
    """Chromium's verdict on the public URL's certificate: any answer over TLS is an accept."""
    from playwright.async_api import Error

    async def verdict_of(context: BrowserContext) -> tuple[_TlsVerdict, Path | None]:
        page = await context.new_page()
        try:
            response = await page.goto(target.url("/status"), wait_until="commit")
            verdict = _TlsVerdict(True, f"loaded, HTTP {response.status if response else '?'}")
        except Error as error:
            code = match.group(1) if (match := _NET_ERROR.search(str(error))) else first_line(str(error))
            verdict = _TlsVerdict(not str(code).startswith("ERR_CERT") and "SSL" not in str(code), str(code))
        return verdict, await screenshot(page, endpoint, "browser-git-agree")

    return endpoint.run(verdict_of)


def _git_tls(target: CheckTarget) -> _TlsVerdict:
    """git's verdict: ``git ls-remote`` of the public clone URL, trusting the lab root alone."""
    with tempfile.TemporaryDirectory(prefix="lab-agree-") as work:
        result = target.users.git(["ls-remote", target.git_url()], cwd=Path(work), timeout=60)
    if result.returncode == 0:
        return _TlsVerdict(True, "ls-remote worked")
    message = next((line for line in result.stderr.splitlines() if "SSL" in line or "certificate" in line), "")
    if message:
        return _TlsVerdict(False, message.removeprefix("fatal: ").strip()[:200])
    return _TlsVerdict(True, f"TLS accepted; ls-remote failed otherwise: {first_line(result.stderr)[:160]}")
