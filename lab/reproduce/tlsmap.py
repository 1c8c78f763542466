"""The customer's TLS paths, filled with the lab's PKI in the shape each directive means.

nginx ``ssl_certificate`` serves leaf + intermediate, Apache ``SSLCertificateChainFile``
the intermediate alone, HAProxy ``crt`` leaf + intermediate + key in one file, and so on
(``model.TLS_ROLES``). When the bundle holds the customer's public certificate for a path,
the lab issues a look-alike — same names, key type, expiry and shape (leaf only, root
included, out of order) — so a broken chain stays broken in the lab.
"""

from __future__ import annotations

import datetime
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

import trustme

from lab.pki import TlsFiles, with_aia
from lab.provision import ContainerFile
from lab.reproduce.model import CustomerCertificate, ProxySetup, TlsReference

# RFC 7919's ffdhe2048 group: a public, well-known Diffie-Hellman parameter set (what
# Mozilla's TLS guidance hands out as dhparam), so the lab never waits on `openssl dhparam`.
FFDHE2048 = b"""-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
"""


LEAF_ROLES = ("fullchain", "leaf", "fullchain+key", "leaf+key")
"""Paths whose file starts with the server's own certificate: only these get a look-alike
of the customer's certificate (a chain or CA file the customer sent stays the lab's)."""
_DNS_NAME = re.compile(r"(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*")


_CIPHER_LISTS = re.compile(r"^[ \t]*(ssl_ciphers|SSLCipherSuite|ssl-default-bind-ciphers)[ \t]+([^;#\n]+)"
                           r"|^[ \t]*bind[ \t].*?[ \t]ciphers[ \t]+(\S+)", re.M | re.I)


def leaf_key_type(proxy: ProxySetup | None) -> tuple[str, str]:
    """The lab leaf's key type (``lab.pki.LEAF_KEYS``) and why: ECDSA (the lab's default)
    unless a TLS 1.2 cipher list of the customer's (nginx ``ssl_ciphers``, Apache
    ``SSLCipherSuite``, HAProxy ``ciphers``/``ssl-default-bind-ciphers``) accepts no ECDSA
    suite but RSA ones — written for an RSA certificate, it would refuse every handshake with
    an ECDSA leaf, a failure of the lab's certificate, not of the customer's setup. The list is
    read by this machine's OpenSSL (``SSLContext.set_ciphers``); one it cannot read changes nothing."""
    for file in proxy.files if proxy else ():
        text = file.path.read_text(encoding="utf-8-sig", errors="replace")
        for match in _CIPHER_LISTS.finditer(text):
            written = (match.group(2) or match.group(3) or "").strip().strip("\"'")
            if re.match(r"TLSv1\.3\s", written):
                continue  # Apache's TLS 1.3 suites: no key type in them
            auths = _tls12_authentications(written.split()[-1].strip("\"'"))
            if auths and "auth-ecdsa" not in auths and "auth-rsa" in auths:
                line = text.count("\n", 0, match.start()) + 1
                return "rsa", f"{match.group(1) or 'ciphers'} at {file.relpath}:{line} accepts RSA certificates only"
    return "ecdsa", ""


def _tls12_authentications(ciphers: str) -> set[str]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.set_ciphers(ciphers)
    except ssl.SSLError:
        return set()
    return {suite["auth"] for suite in context.get_ciphers() if suite["protocol"] != "TLSv1.3"}


@dataclass(frozen=True)
class TlsPlacement:
    """What the lab puts at one customer TLS path, and how to say it in the mapping — decided
    from the customer's files alone; :func:`tls_container_files` fills it from the lab's PKI."""

    reference: TlsReference
    path: str
    lab: str
    content: str
    """What fills it: a role of ``model.TLS_ROLES`` (the lab's own file of that shape), or
    ``look-alike`` / ``look-alike key`` of :attr:`lookalike`."""
    lookalike: CustomerCertificate | None = None
    """The customer's certificate whose look-alike (or its key) goes here."""

    @property
    def mode(self) -> int:
        return 0o600 if "key" in self.reference.role else 0o644


def plan_tls(references: Sequence[TlsReference], certificates: Sequence[CustomerCertificate],
             public_host: str) -> list[TlsPlacement]:
    """One placement per TLS reference (a path named twice is placed once)."""
    served_roles = {ref.path for ref in references if ref.role in LEAF_ROLES}
    lookalikes = {cert.for_path: cert for cert in certificates if cert.for_path and cert.for_path in served_roles}
    placed: dict[str, TlsPlacement] = {}
    for ref in references:
        if ref.path in placed:
            continue
        customer = lookalikes.get(ref.path)
        if customer is not None:
            placed[ref.path] = TlsPlacement(ref, _path(ref, public_host),
                                            f"lab look-alike of {customer.file.relpath}: {_describe(customer)}",
                                            "look-alike", customer)
        else:
            placed[ref.path] = TlsPlacement(ref, _path(ref, public_host), _LAB_FILES[ref.role][1], ref.role)
    for key_path, cert_path in _pair_keys(references, lookalikes).items():  # a look-alike's key goes where its pair expects it
        placed[key_path] = TlsPlacement(placed[key_path].reference, key_path, f"the key of the look-alike at {cert_path}",
                                        "look-alike key", lookalikes[cert_path])
    return list(placed.values())


def tls_container_files(placements: Sequence[TlsPlacement], tls: TlsFiles) -> list[ContainerFile]:
    """The placements' files, from the lab's PKI in ``tls`` (a look-alike is issued once per
    customer certificate, so its key matches it)."""
    issued: dict[str, tuple[bytes, bytes]] = {}  # path the customer certificate is for → (served PEM, key PEM)
    files = []
    for placement in placements:
        customer = placement.lookalike
        if customer is None:
            data = b"".join(FFDHE2048 if name == "dhparam" else (tls.directory / name).read_bytes()
                            for name in _LAB_FILES[placement.content][0])
        else:
            if str(customer.for_path) not in issued:
                issued[str(customer.for_path)] = _lookalike(customer, tls)
            served, key = issued[str(customer.for_path)]
            data = (key if placement.content == "look-alike key" else
                    served + key if placement.reference.role.endswith("+key") else served)
        files.append(ContainerFile(placement.path, data, placement.mode))
    return files


_LAB_FILES: dict[str, tuple[tuple[str, ...], str]] = {
    "fullchain": (("fullchain.pem",), "lab leaf + intermediate"),
    "leaf": (("cert.pem",), "lab leaf alone"),
    "chain": (("chain.pem",), "lab intermediate"),
    "key": (("privkey.pem",), "lab leaf's key"),
    "ca": (("ca.pem",), "lab root CA"),
    "fullchain+key": (("fullchain.pem", "privkey.pem"), "lab leaf + intermediate + key in one file"),
    "leaf+key": (("cert.pem", "privkey.pem"), "lab leaf + key in one file"),
    "dhparam": (("dhparam",), "RFC 7919 ffdhe2048 parameters"),
}
"""{role: (files of the lab's TLS directory, joined; "dhparam" is :data:`FFDHE2048`), how the mapping says it}."""


def _path(ref: TlsReference, public_host: str) -> str:
    """A directory reference (HAProxy ``crt /etc/haproxy/certs/``) gets one file in it."""
    return ref.path + f"{public_host}.pem" if ref.path.endswith("/") else ref.path


def _pair_keys(references: Sequence[TlsReference], lookalikes: dict[str, CustomerCertificate]) -> dict[str, str]:
    """{key path: certificate path} for look-alikes: the nearest key directive in the same file."""
    pairs = {}
    keys = [ref for ref in references if ref.role == "key"]
    for ref in references:
        if ref.path not in lookalikes or ref.role.endswith("+key"):
            continue
        same_file = [key for key in keys if key.source.file == ref.source.file]
        if same_file:
            nearest = min(same_file, key=lambda key: abs(key.source.line - ref.source.line))
            pairs[nearest.path] = ref.path
    return pairs


def _lookalike(customer: CustomerCertificate, tls: TlsFiles) -> tuple[bytes, bytes]:
    """(served PEM, key PEM): a lab leaf with the customer's names, key type and expiry
    and the lab's AIA URL, served in the customer's shape."""
    issuer = trustme.CA.from_pem((tls.directory / "chain.pem").read_bytes(),
                                 (tls.directory / "chain-key.pem").read_bytes())
    now = datetime.datetime.now(datetime.timezone.utc)
    window = ((now - datetime.timedelta(days=60), now - datetime.timedelta(days=1)) if customer.expired
              else (now - datetime.timedelta(hours=1), now + datetime.timedelta(days=90)))
    key_type = trustme.KeyType.RSA if customer.key_type.startswith("rsa") else trustme.KeyType.ECDSA
    names = [name for name in customer.subjects if _DNS_NAME.fullmatch(name)] or ["lab.invalid"]
    leaf = issuer.issue_cert(*names, not_before=window[0], not_after=window[1], key_type=key_type)
    served = with_aia(leaf.cert_chain_pems[0].bytes(), issuer)  # as a public CA's leaf: browsers can fetch the issuer
    return b"".join(_shape(customer, served, tls)), leaf.private_key_pem.bytes()


def _shape(customer: CustomerCertificate, leaf: bytes, tls: TlsFiles) -> list[bytes]:
    """The customer's file, certificate by certificate, with the lab's: the leaf always
    first (the key must match it), then an intermediate only where the customer has one —
    the lab's when theirs is in order, an unrelated CA's when it is not (a wrong
    intermediate) — then the root when they include theirs."""
    intermediates = customer.count - 1 - (1 if customer.includes_root else 0)
    parts = [leaf]
    if intermediates >= 1:
        parts.append((tls.directory / "chain.pem").read_bytes() if customer.ordered
                     else trustme.CA(organization_name="Not the issuer").cert_pem.bytes())
    if customer.includes_root:
        parts.append(tls.ca.read_bytes())
    return parts


def _describe(customer: CustomerCertificate) -> str:
    shape = "leaf only" if customer.count == 1 else f"{customer.count} certificates"
    extras = [shape, customer.key_type, "names " + ", ".join(customer.subjects)]
    if customer.expired:
        extras.append("expired")
    if customer.includes_root:
        extras.append("root included")
    if not customer.ordered:
        extras.append("out of order")
    return "; ".join(extras)


