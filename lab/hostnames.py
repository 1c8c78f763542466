"""Host names as the lab needs them: in ASCII (IDNA A-labels), checked before anything starts.

Users type ``https://bücher.example``; certificates, Docker aliases, the users' gateway and
git all need ``xn--bcher-kva.example``. :func:`ascii_host` makes that conversion the way
trustme names a certificate (IDNA 2008 with UTS #46 mapping, so ``BÜCHER.Example`` works
too), and says in words what is wrong with a name it cannot convert — an empty label
(``a..b``), a label over 63 characters, a name over 253, a character IDNA does not allow.

:func:`ascii_public_url` checks a whole ``--public-url`` the same way, plus what the lab
itself cannot serve: a scheme other than http/https, a port outside 1–65535, and an IP
address (the sealed lab reaches its front door by name only: its users' gateway never
connects to an address).
"""

from __future__ import annotations

import ipaddress
import urllib.parse

import idna

from lab.errors import LabError

MAX_NAME = 253
MAX_LABEL = 63


def ascii_host(host: str) -> str:
    """``host`` in IDNA A-labels, lower-cased (``bücher.example`` → ``xn--bcher-kva.example``).

    Raises ``ValueError`` whose message says what is wrong, in words a user can act on.
    A leading ``*.`` (a certificate wildcard) is kept as it is.
    """
    wildcard, name = ("*.", host[2:]) if host.startswith("*.") else ("", host)
    labels = name.split(".")
    if not name or any(not label for label in labels):
        raise ValueError("it has an empty label (two dots in a row, or a dot at its start or end)")
    try:
        encoded = idna.encode(name, uts46=True).decode("ascii").lower()
    except idna.IDNAError as error:
        long_label = next((label for label in labels if len(label) > MAX_LABEL), None)
        if long_label is not None:
            raise ValueError(f"its label {long_label[:12]}… has {len(long_label)} characters "
                             f"(at most {MAX_LABEL})") from None
        if len(name) > MAX_NAME:
            raise ValueError(f"it has {len(name)} characters (at most {MAX_NAME})") from None
        raise ValueError(f"it cannot be written in IDNA: {error}") from None
    if len(encoded) > MAX_NAME:
        raise ValueError(f"it has {len(encoded)} characters (at most {MAX_NAME})")
    return wildcard + encoded


def is_ip_address(host: str) -> bool:
    """Whether ``host`` is an IPv4 or IPv6 literal (brackets allowed)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def ascii_public_url(url: str) -> str:
    """``url`` with its host in A-labels; :class:`LabError` (one line) when the lab cannot
    use it as the public URL: not ``http(s)://host[:port][/path]``, a bad host name, a
    port outside 1–65535, an IP address, a query, fragment or credentials."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise LabError(f"public URL {url!r} is not an http:// or https:// URL")
    try:
        port = parts.port
    except ValueError:
        raise LabError(f"public URL {url!r} has a bad port: give a number from 1 to 65535") from None
    if port == 0:
        raise LabError(f"public URL {url!r} has port 0: give a number from 1 to 65535")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise LabError(f"public URL {url!r} must not carry a query, fragment or credentials")
    host = parts.hostname or ""
    if not host:
        raise LabError(f"public URL {url!r} has no usable host name")
    if is_ip_address(host):
        raise LabError(f"public URL {url!r} names an IP address, and the sealed lab reaches its front door "
                       "by name only: give the host name users type (the one in the certificate)")
    try:
        encoded = ascii_host(host)
    except ValueError as error:
        raise LabError(f"public URL {url!r} has no usable host name: {error}; give the name users type") from None
    netloc = encoded + (f":{port}" if port is not None else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
