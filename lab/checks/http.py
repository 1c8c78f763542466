"""Checks over HTTP as a browser and REST client see it: reach, routing, redirects,
login, base URL, encoded slashes, and Tomcat's own port."""

from __future__ import annotations

import html.parser
import urllib.parse

import requests

from lab.checks.base import (FRONT_DOOR, FRONT_DOOR_TO_BITBUCKET, REACH_STATUS, THROUGH_FRONT_DOOR, TOMCAT_PORT, USERS_TO_FRONT_DOOR, CheckTarget, Verdict, check,
                             failed, passed)
from lab.checks.explain import (CONNECTOR_CAUSE, base_url_hint, bitbucket_view, connector_failure, connector_hint,
                                loop_hint)
from lab.checks.network import describe
from lab.fix.remedies import CONTEXT_PATH, ENCODED_SLASH_REFUSED, REDIRECT_LOOP
from lab.proxies import KINDS, hint_for
from lab.fix.remedies import PATH_REWRITTEN as PATH_REWRITTEN_REMEDY

PROXY_500_HINT = ("the proxy answered 500 itself, before Bitbucket: its error log names the cause. Behind a "
                  "re-encrypting proxy this is most often the TLS handshake to Bitbucket failing — Bitbucket's "
                  "certificate does not name what the proxy checks (Apache with ProxyPreserveHost On checks the "
                  "public name: SSLProxyCheckPeerName), or the chain is deeper than SSLProxyVerifyDepth / "
                  "proxy_ssl_verify_depth allows")
"""A request to the public URL means nothing when users cannot reach or trust the front door."""

TIMEOUT_S = 15
BROWSER_HEADERS = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                   "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) BitbucketLab/1.0"}
ENCODED_REF_PATH = "/rest/api/1.0/projects/LAB/repos/repo/commits/refs%2Fheads%2Ffeature%2Fx"
DIAGNOSTICS = "/rest/lab/1.0/request"


@check("reach.status", "the public URL's /status answers RUNNING (no loop, no error)", FRONT_DOOR_TO_BITBUCKET,
       needs=THROUGH_FRONT_DOOR)
def reach_status(target: CheckTarget) -> Verdict:
    expected = f"GET {target.url('/status')} → 200 {{\"state\":\"RUNNING\"}}"
    try:
        response = target.users.session().get(target.url("/status"), timeout=TIMEOUT_S)
    except requests.TooManyRedirects as error:
        location = error.response.headers.get("Location") if error.response is not None else "?"
        return failed(f"redirect loop (last Location: {location})", expected,
                      loop_hint(location), REDIRECT_LOOP.cause)
    if response.status_code == 200 and '"RUNNING"' in response.text:
        return passed(f"{response.status_code} {response.text.strip()}", expected)
    return failed(f"{response.status_code} {response.text.strip()[:120]}", expected, *_status_fix(target, response))


@check("routing.context-path", "paths under the context path reach Bitbucket; the rest of the host does not",
       FRONT_DOOR_TO_BITBUCKET, needs=THROUGH_FRONT_DOOR)
def routing_context_path(target: CheckTarget) -> Verdict:
    session = target.users.session()
    inside_url = target.url("/rest/api/1.0/application-properties")
    expected = f"{inside_url} → Bitbucket's application-properties"
    inside = session.get(inside_url, allow_redirects=False, timeout=TIMEOUT_S)
    if not _is_bitbucket_properties(inside):
        return failed(f"{inside_url} → {inside.status_code} {_body_kind(inside)}",
                      expected, _context_hint(target), CONTEXT_PATH.cause)
    if not target.context_path:
        return passed(f"{inside_url} → Bitbucket", expected)
    outside_url = f"{target.origin}/rest/api/1.0/application-properties"
    outside = session.get(outside_url, allow_redirects=False, timeout=TIMEOUT_S)
    expected += f"; {outside_url} (outside {target.context_path}) → not Bitbucket"
    if _is_bitbucket_properties(outside):
        return failed(f"{outside_url} also reaches Bitbucket", expected,
                      f"the proxy forwards paths outside {target.context_path} to Bitbucket; "
                      f"route only {target.context_path} (nginx `location {target.context_path}`, "
                      f"Apache `ProxyPass {target.context_path} …`, HAProxy `use_backend … if {{ path_beg {target.context_path} }}`)")
    return passed(f"inside → Bitbucket; outside → {outside.status_code}", expected)


@check("redirects.public", "every Location in / → /dashboard → /login?next=… is absolute and under the public base URL",
       FRONT_DOOR_TO_BITBUCKET, needs=THROUGH_FRONT_DOOR)
def redirects_public(target: CheckTarget) -> Verdict:
    session = target.users.session()
    url, hops = target.url("/"), []
    expected = (f"{target.url('/')} → {target.url('/dashboard')} → {target.url('/login?next=/dashboard')}, "
                f"every Location under {target.public_url}/")
    for _ in range(4):
        response = session.get(url, allow_redirects=False, timeout=TIMEOUT_S, headers=BROWSER_HEADERS)
        location = response.headers.get("Location")
        if location is None:
            break
        hops.append(location)
        if not location.startswith(target.public_url + "/"):
            return connector_failure(target, f"Location was {location} (after {url})", expected)
        url = location
    wanted = [target.url("/dashboard"), target.url("/login?next=/dashboard")]
    if hops != wanted:
        return connector_failure(target, f"chain was {' → '.join(hops) or '(no redirect)'}", expected)
    return passed(" → ".join(hops), expected)


def _why_no_http_twin(target: CheckTarget) -> str | None:
    if not target.https:
        return "the public URL is not https"
    return None if target.http_url else "the topology names no plain-http URL"


@check("redirects.http-to-https", "on TLS topologies, http://host/path?q → https://host/path?q", USERS_TO_FRONT_DOOR,
       needs=(FRONT_DOOR,), applies=_why_no_http_twin)
def redirects_http_to_https(target: CheckTarget) -> Verdict:
    assert target.http_url is not None
    source = target.http_url.rstrip("/") + "/status?lab=1"
    wanted = target.url("/status?lab=1")
    expected = f"{source} → 301/302 {wanted}"
    try:
        response = target.users.session().get(source, allow_redirects=False, timeout=TIMEOUT_S)
    except requests.RequestException as error:
        http = urllib.parse.urlsplit(source)
        observed, _ = describe(error, target, http.hostname, http.port or 80)
        return failed(observed, expected, "nothing answers plain http; add a port-80 server that redirects to https")
    location = response.headers.get("Location")
    if response.status_code in (301, 302, 307, 308) and location == wanted:
        return passed(f"{response.status_code} {location}", expected)
    return failed(f"{response.status_code} Location={location}", expected,
                  "add a port-80 server that redirects to https keeping path and query: nginx "
                  "`return 301 https://$host$request_uri;`, Apache `RewriteRule ^(.*)$ https://%{SERVER_NAME}$1 [R=301,L]`, "
                  "HAProxy `http-request redirect scheme https code 301`")


@check("login.browser", "a browser-like session logs in and lands on next; the session cookie fits the public URL",
       FRONT_DOOR_TO_BITBUCKET, needs=THROUGH_FRONT_DOOR)
def login_browser(target: CheckTarget) -> Verdict:
    session = target.users.session()
    session.headers.update(BROWSER_HEADERS)
    expected = f"login form, then {target.url('/dashboard')} logged in; cookie Path within {target.context_path or '/'}" \
               + ("; Secure" if target.parts.scheme == "https" else "")
    form_page = session.get(target.url("/dashboard"), timeout=TIMEOUT_S)
    action = form_action(form_page.text)
    if form_page.status_code != 200 or action is None:
        return connector_failure(target, f"{form_page.url} → {form_page.status_code}, no login form", expected)
    landed = session.post(urllib.parse.urljoin(form_page.url, action), timeout=TIMEOUT_S,
                          data={"j_username": target.username, "j_password": target.password, "next": "/dashboard"})
    cookie = next((c for c in session.cookies if c.name == "BITBUCKETSESSIONID"), None)
    if landed.url != target.url("/dashboard") or "Logged in as" not in landed.text:
        return connector_failure(target, f"after login: {landed.url} → {landed.status_code}", expected)
    if cookie is None:
        return connector_failure(target, "no BITBUCKETSESSIONID cookie was kept by the browser", expected)
    problem = _cookie_problem(target, cookie.path, bool(cookie.secure))
    if problem:
        return connector_failure(target, problem, expected)
    return passed(f"landed on {landed.url}; cookie Path={cookie.path} Secure={cookie.secure}", expected)


@check("path.encoded-slash", "a path with %2F reaches Bitbucket byte for byte", FRONT_DOOR_TO_BITBUCKET,
       needs=THROUGH_FRONT_DOOR)
def path_encoded_slash(target: CheckTarget) -> Verdict:
    url = target.url(ENCODED_REF_PATH)
    expected = f"{url} → 200, Bitbucket saw …/refs%2Fheads%2Ffeature%2Fx ({ENCODED_SLASH_ASSUMED})"
    response = target.users.session().get(url, auth=(target.username, target.password),
                                          allow_redirects=False, timeout=TIMEOUT_S)
    raw_path = str(_json_field(response, "rawPath"))
    if response.status_code == 200 and "refs%2Fheads%2Ffeature%2Fx" in raw_path:
        return passed(f"200, Bitbucket saw {raw_path}", expected)
    hint = _encoded_slash_hint(response)
    cause = (PATH_REWRITTEN if "decoded" in hint or "encoded %2F again" in hint
             else ENCODED_SLASH_REFUSED.cause if hint == ENCODED_SLASH_REFUSED.text else None)
    return failed(f"{response.status_code} {_body_kind(response)}: {response.text.strip()[:160]}",
                  expected, hint, cause)


PATH_REWRITTEN = PATH_REWRITTEN_REMEDY.cause
"""The cause shared by the encoded-path checks when the proxy decodes or re-encodes the path."""
ENCODED_SLASH_ASSUMED = ("Bitbucket behaviour assumed: its Tomcat accepts %2F in a path — unsourced; stock Tomcat "
                         "answers 400, and Bitbucket's own links carry refs in the query string (lab/stub/SOURCES.md)")
"""Said in the check's output, so nobody reads the verdict as more than it rests on."""


ENCODED_SAMPLES = {  # what a branch or file name may hold, as git and browsers encode it
    "%3B": "semicolon", "%25": "percent sign", "%23": "hash", "+": "plus", "%20": "space",
    "%C3%A9": "UTF-8 é", "//": "double slash",
}
ECHO_PATH = "/rest/lab/1.0/echo/"


@check("path.encoded-chars", "%3B, %25, %23, +, %20, UTF-8 and // in a path reach Bitbucket byte for byte",
       FRONT_DOOR_TO_BITBUCKET, needs=THROUGH_FRONT_DOOR)
def path_encoded_chars(target: CheckTarget) -> Verdict:
    session = target.users.session()
    expected = "each reaches Bitbucket unchanged: " + " ".join(ENCODED_SAMPLES)
    changed = []
    for sample, name in ENCODED_SAMPLES.items():
        segment = f"a{sample}b"
        response = session.get(target.url(ECHO_PATH + segment), allow_redirects=False, timeout=TIMEOUT_S)
        raw = str(_json_field(response, "raw_uri"))
        if response.status_code != 200 or not raw:
            changed.append(f"{sample} ({name}) → {response.status_code} {_body_kind(response)}, Bitbucket saw nothing")
        elif not raw.endswith(ECHO_PATH + segment):
            changed.append(f"{sample} ({name}) → Bitbucket saw …{raw[raw.find('echo/') + 4:][:40]}")
    if not changed:
        return passed("all reached Bitbucket unchanged: " + " ".join(ENCODED_SAMPLES), expected)
    rewritten = any("Bitbucket saw …" in item for item in changed)  # it arrived, changed: not a refusal
    return failed("; ".join(changed), expected, _encoded_chars_hint(target.proxy_kind),
                  PATH_REWRITTEN if rewritten else None)


def _encoded_chars_hint(kind: str | None) -> str:
    own = KINDS[kind].hints.get("path-rewrite") if kind in KINDS else None  # a kind the remedy's text does not name
    return PATH_REWRITTEN_REMEDY.text + (f"; {own}" if own else "") + "; files and branches with these characters break otherwise"


BITBUCKET_DEFAULT_HEADER_BYTES = 8 * 1024
"""Spring Boot's default server.max-http-header-size, which Bitbucket keeps (BSERV-13313; lab/stub/SOURCES.md)."""
HEADER_REFUSALS = (400, 413, 431, 494)
"""What a proxy answers a request whose headers are too large for it (nginx 400/494, Apache 400,
HAProxy 400, 431 by the RFC); any other answer (a 500, a 502) is not about the headers' size."""
TOMCAT_400_TITLE = "HTTP Status 400"
"""The title of Tomcat's error report, which Bitbucket's own 400 carries (lab/stub/SOURCES.md)."""
BITBUCKET_ACCEPTS = 200
"""What the stub's diagnostics answer a request within Bitbucket's limits."""
HEADER_HEADROOM_BYTES = 1536
"""Left of Bitbucket's limit for the request line, the other headers and what the proxy adds
(X-Forwarded-*): the probe stays inside what Bitbucket accepts once proxied."""
HEADER_LIMITS = (  # who answered, by the words of its error page → the limit to raise
    ("Request Header Or Cookie Too Large", "nginx `large_client_header_buffers 4 {kb}k;` (default 4 8k)"),
    ("exceeds server limit", "Apache `LimitRequestFieldSize {size}` (default 8190) in the <VirtualHost> (and "
     "`LimitRequestLine` for long URLs)"),
    ("Your browser sent an invalid request", "HAProxy `tune.bufsize` in `global` above {kb} KB (default 16384)"),
    ("Request header is too large", "Bitbucket's `server.max-http-header-size` in bitbucket.properties"),
)
_ALL_PROXY_HEADER_LIMITS = ("nginx `large_client_header_buffers 4 {kb}k`, Apache `LimitRequestFieldSize`, "
                            "HAProxy `tune.bufsize` above {kb} KB")


def _why_no_separate_tomcat(target: CheckTarget) -> str | None:
    if not target.tomcat_url:
        return "the topology names no Tomcat URL to compare with"
    tomcat = urllib.parse.urlsplit(target.tomcat_url)
    if (tomcat.hostname, tomcat.port) == (target.host, target.parts.port):
        return "users reach Bitbucket directly: there is no proxy to compare with"
    return None


@check("headers.large", "a request with headers as large as Bitbucket accepts (server.max-http-header-size, 8 KB by "
       "default) passes the proxy too", FRONT_DOOR_TO_BITBUCKET, needs=THROUGH_FRONT_DOOR, applies=_why_no_separate_tomcat)
def headers_large(target: CheckTarget) -> Verdict:
    assert target.tomcat_url is not None
    direct_session = (target.inside or target.users).session()
    limit = _bitbucket_header_limit([(direct_session, target.tomcat_url.rstrip("/") + DIAGNOSTICS),
                                     (target.users.session(), target.url(DIAGNOSTICS))])
    cookie_bytes = max(1024, limit - HEADER_HEADROOM_BYTES)
    cookie = {"Cookie": "lab_sso=" + "x" * cookie_bytes}
    try:
        direct_status = direct_session.get(target.tomcat_url.rstrip("/") + DIAGNOSTICS, headers=cookie,
                                           allow_redirects=False, timeout=TIMEOUT_S).status_code
        directly = f"{direct_status} directly"
    except requests.RequestException:  # Tomcat's port is out of the lab's reach (bound to its host's loopback)
        direct_status, directly = BITBUCKET_ACCEPTS, f"Bitbucket's own port out of the lab's reach (it accepts: {BITBUCKET_ACCEPTS})"
    through = target.users.session().get(target.url(DIAGNOSTICS), headers=cookie, allow_redirects=False,
                                         timeout=TIMEOUT_S)
    probe = f"a {cookie_bytes / 1024:.1f} KB cookie"
    expected = (f"{probe} (Bitbucket accepts {limit // 1024} KB of request headers) gets the answer Bitbucket "
                f"gives directly ({direct_status})")
    if through.status_code == direct_status:
        return Verdict(True, f"{probe}: {through.status_code} through the proxy, {directly}", expected,
                       note=_header_limits_note(target, limit))
    limit_fix = next((fix for words, fix in HEADER_LIMITS if words in through.text), None)
    wanted_kb = max(8, _next_power_of_two(-(-limit // 1024)))  # a buffer that holds what Bitbucket accepts
    return failed(f"{probe}: {through.status_code} through the proxy ({_body_kind(through)}), {directly}", expected,
                  f"the proxy refuses request headers Bitbucket accepts ({limit // 1024} KB): raise "
                  + (limit_fix or _ALL_PROXY_HEADER_LIMITS).format(kb=wanted_kb, size=wanted_kb * 1024),
                  cause="proxy-header-limit" if through.status_code in HEADER_REFUSALS else None)


def _bitbucket_header_limit(askings: list[tuple[requests.Session, str]]) -> int:
    """Bitbucket's own request-header limit as its diagnostics say (Tomcat's maxHttpHeaderSize,
    which Spring Boot's server.max-http-header-size sets) — asked directly, else through the
    proxy — or Spring Boot's default when neither answers."""
    for session, url in askings:
        try:
            answer = session.get(url, allow_redirects=False, timeout=TIMEOUT_S)
            value = answer.json().get("max_http_header_size") if answer.status_code == 200 else None
        except (requests.RequestException, ValueError, AttributeError):
            continue
        if isinstance(value, int) and value > 0:
            return value
    return BITBUCKET_DEFAULT_HEADER_BYTES


def _header_limits_note(target: CheckTarget, limit: int) -> str:
    """A note when Bitbucket and the proxy both stop at about the default 8 KB: bigger SSO
    cookies then need both raised together. A proxy that lets a larger request through to
    Bitbucket (whose own 400 answers it) already has room: no note."""
    if limit != BITBUCKET_DEFAULT_HEADER_BYTES:
        return ""
    bigger = {"Cookie": "lab_sso=" + "x" * (limit + 4096)}
    answer = target.users.session().get(target.url(DIAGNOSTICS), headers=bigger, allow_redirects=False,
                                        timeout=TIMEOUT_S)
    if TOMCAT_400_TITLE in answer.text:  # Bitbucket itself refused it: the proxy passed it on
        return ""
    return ("Bitbucket and the proxy both accept about 8 KB of request headers (Bitbucket's default "
            "server.max-http-header-size); SSO cookies larger than that need both raised together: "
            "server.max-http-header-size in bitbucket.properties and the proxy's limit (nginx "
            "`large_client_header_buffers`, Apache `LimitRequestFieldSize`, HAProxy `tune.bufsize`)")


def _next_power_of_two(value: int) -> int:
    return 1 << max(0, value - 1).bit_length()


@check("baseurl.match", "what Bitbucket sees (scheme, host, port, secure, context path) equals the public URL",
       FRONT_DOOR_TO_BITBUCKET, needs=THROUGH_FRONT_DOOR)
def baseurl_match(target: CheckTarget) -> Verdict:
    expected = f"Bitbucket sees {target.public_url} (secure={str(target.parts.scheme == 'https').lower()}); base URL {target.public_url}"
    view = bitbucket_view(target)
    if view is None:
        return failed(f"{target.url('/rest/lab/1.0/request')} did not answer", expected,
                      connector_hint(target, None))
    implied = str(view["implied_base_url"])
    if implied != target.public_url or bool(view["secure"]) != (target.parts.scheme == "https"):
        return failed(f"Bitbucket sees {implied} (secure={str(view['secure']).lower()})", expected,
                      connector_hint(target, view), CONNECTOR_CAUSE)
    configured = view.get("configured_base_url")
    if not configured:  # the base URL lives in Bitbucket's database: unknown is not wrong
        return passed(f"Bitbucket sees {implied}; base URL unknown (not in the properties: it lives in "
                      f"Bitbucket's database — make sure Administration → Server settings says {target.public_url})",
                      expected)
    if str(configured).rstrip("/") != target.public_url:
        return failed(f"base URL is {configured}", expected, base_url_hint(target, configured))
    return passed(f"Bitbucket sees {implied}; base URL {configured}", expected)


@check("direct.tomcat-port", "Tomcat's port is unreachable from users where the topology says so; from inside it "
       "redirects to the public URL or serves", TOMCAT_PORT, needs=(FRONT_DOOR,),
       applies=lambda target: None if target.tomcat_url else "the topology names no Tomcat URL",
       explained_by=(REACH_STATUS,))
def direct_tomcat_port(target: CheckTarget) -> Verdict:
    assert target.tomcat_url is not None
    tomcat = urllib.parse.urlsplit(target.tomcat_url)
    port = tomcat.port or (443 if tomcat.scheme == "https" else 80)
    reachable = target.users.reaches(tomcat.hostname or "", port)
    shown = f"{tomcat.hostname}:{port}"
    if reachable != target.tomcat_reachable_by_users:
        wanted = "reachable" if target.tomcat_reachable_by_users else "unreachable"
        return failed(f"{shown} is {'reachable' if reachable else 'unreachable'} from users",
                      f"{shown} {wanted} from users",
                      "keep Tomcat's port off the users' network (firewall, or bind server.address to the "
                      "proxy-facing interface)" if reachable else "users cannot reach Tomcat's port directly",
                      "tomcat-port-reachability")
    vantage = target.inside or target.users
    try:
        response = vantage.session().get(target.tomcat_url.rstrip("/") + "/", allow_redirects=False, timeout=TIMEOUT_S)
    except requests.RequestException:
        if reachable:
            raise
        return passed(f"{shown} unreachable from users and from the lab's inside network (bound to its host's "
                      "loopback?): users cannot bypass the proxy", f"{shown} unreachable from users")
    location = response.headers.get("Location", "")
    expected = f"{shown} {'reachable' if reachable else 'unreachable'} from users; from inside 302 to {target.public_url}/… or 200"
    if response.status_code == 200 or location.startswith(target.public_url + "/"):
        return passed(f"from users: {'reachable' if reachable else 'unreachable'}; "
                      f"from inside: {response.status_code} {location}".rstrip(), expected)
    return connector_failure(target, f"from inside: {response.status_code} Location={location}", expected,
                             "Tomcat's own port sends users elsewhere than the public URL: ")


class _FormFinder(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "form" and self.action is None:
            self.action = dict(attrs).get("action") or ""


def form_action(page: str) -> str | None:
    finder = _FormFinder()
    finder.feed(page)
    return finder.action


def _cookie_problem(target: CheckTarget, path: str, secure: bool) -> str | None:
    if not (target.context_path + "/").startswith(path.rstrip("/") + "/"):
        return f"cookie Path={path} does not cover {target.context_path}/"
    if target.parts.scheme == "https" and not secure:
        return "cookie lacks Secure on an https site (Bitbucket thinks the connection is plain http)"
    return None


def _json_field(response: requests.Response, key: str) -> object:
    """``response.json()[key]``, or "" when the body is not a JSON object."""
    try:
        document = response.json()
    except ValueError:
        return ""
    return document.get(key, "") if isinstance(document, dict) else ""


def _is_bitbucket_properties(response: requests.Response) -> bool:
    return response.status_code == 200 and _json_field(response, "displayName") == "Bitbucket"


def _body_kind(response: requests.Response) -> str:
    kind = response.headers.get("Content-Type", "")
    if "json" in kind:
        return "JSON (from Bitbucket)"
    if "html" in kind:
        return "HTML (from the proxy?)"
    return kind or "no body type"


def _encoded_slash_hint(response: requests.Response) -> str:
    body = response.text
    if "json" not in response.headers.get("Content-Type", "") and response.status_code == 404:
        return ENCODED_SLASH_REFUSED.text
    if "refs/heads/feature/x" in body:
        return ("the proxy decoded %2F to / before Bitbucket saw it: nginx `proxy_pass` must have no URI "
                "part (`proxy_pass http://bitbucket:7990;`), Apache `ProxyPass … nocanon`")
    if "%252F" in body:
        return "the proxy encoded %2F again (%252F): add `nocanon` to Apache's ProxyPass"
    if response.status_code == 401:
        return "Bitbucket refused the credentials; is an authentication layer in front of it?"
    return "the encoded path did not reach Bitbucket unchanged; compare the proxy's rewrite rules"


NEIGHBOUR_HEADER = "X-Lab-Neighbour"
"""What the lab's stand-in for another application of the customer's proxy (Jira, …) answers with."""


def neighbour_hint(target: CheckTarget, app: str) -> str:
    return (f"the route for {target.context_path or '/'} ends at {app}, not Bitbucket: the proxy sends Bitbucket's "
            "path to another application — check which location / ProxyPass / use_backend matches it first")


def _context_hint(target: CheckTarget) -> str:
    return (f"the proxy path and Bitbucket's context path must match: with users on {target.public_url}, "
            f"set server.context-path={target.context_path or '(empty)'} and route the same path at the proxy, "
            "keeping it on the way to Bitbucket ("
            + hint_for(target.proxy_kind, "context-path").replace("{path}", target.context_path or "/bitbucket") + ")")


def _status_fix(target: CheckTarget, response: requests.Response) -> tuple[str, str | None]:
    """(fix, cause) for a /status that did not answer RUNNING: a neighbour's answer and a 404
    (the context path differs) name their cause; the other answers only a fix."""
    if neighbour := response.headers.get(NEIGHBOUR_HEADER):
        return neighbour_hint(target, neighbour), "route-to-neighbour"
    if response.status_code == 404:
        return _context_hint(target), CONTEXT_PATH.cause
    return _status_hint(target, response), None


def _status_hint(target: CheckTarget, response: requests.Response) -> str:
    if response.status_code in (502, 503, 504):
        return "the proxy cannot reach Bitbucket: check the upstream name, port and scheme in the proxy config"
    if response.status_code == 500 and "json" not in response.headers.get("Content-Type", ""):
        return PROXY_500_HINT
    if response.status_code == 401:
        return ("something in front of Bitbucket demands authentication (mod_auth_basic?): Bitbucket 4.0+ "
                "does not support it; remove it from the proxy")
    return connector_hint(target)
