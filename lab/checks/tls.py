"""TLS checks on the public endpoint, exactly as served: chain, host name, protocols.

Python's ssl module never fetches missing intermediates (no AIA chasing), so it judges
the chain the way git and curl do — not the way a forgiving browser does.
"""

from __future__ import annotations

import ssl
import warnings

from cryptography import x509

from lab.checks.base import (FRONT_DOOR, USERS_TO_FRONT_DOOR, CheckTarget, Verdict, check, failed, not_applicable, only_https,
                             passed)
from lab.checks.probe import open_socket
from lab.checks.tls_client import client_speaks
from lab.fix.remedies import CHAIN_INCOMPLETE, LEGACY_TLS


CHAIN_HINTS = {
    "unable to get local issuer certificate": CHAIN_INCOMPLETE.text,
    "certificate has expired": "the leaf certificate has expired: renew it",
    "self-signed certificate": "the server presents a self-signed certificate: serve one issued by your CA, with its chain",
    "self signed certificate": "the server presents a self-signed certificate: serve one issued by your CA, with its chain",
}


@check("tls.chain", "the chain exactly as served verifies against the lab root alone (no AIA fetching)",
       USERS_TO_FRONT_DOOR, needs=(FRONT_DOOR,), applies=only_https)
def tls_chain(target: CheckTarget) -> Verdict:
    expected = f"the chain from {target.host}:{target.port} verifies against {target.users.ca_file}"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.load_verify_locations(cafile=str(target.users.ca_file))
    try:
        open_socket(target, context).close()
    except ssl.SSLCertVerificationError as error:
        message = error.verify_message or str(error)
        hint = next((text for key, text in CHAIN_HINTS.items() if key in message),
                    "the served chain does not lead to the lab root: serve leaf + intermediate")
        return failed(f"verification failed: {message}", expected, hint,
                      CHAIN_INCOMPLETE.cause if hint == CHAIN_INCOMPLETE.text else None)
    return passed("verified against the lab root alone", expected)


@check("tls.hostname", "the certificate matches the public host name", USERS_TO_FRONT_DOOR, needs=(FRONT_DOOR,),
       applies=only_https)
def tls_hostname(target: CheckTarget) -> Verdict:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with open_socket(target, context) as sock:
        assert isinstance(sock, ssl.SSLSocket)
        der = sock.getpeercert(binary_form=True) or b""
    names = _dns_names(x509.load_der_x509_certificate(der))
    expected = f"a certificate naming {target.host}"
    if any(_matches(pattern, target.host) for pattern in names):
        return passed(f"certificate names {', '.join(names)}", expected)
    return failed(f"certificate names {', '.join(names) or 'nothing'}", expected,
                  f"issue the certificate for {target.host} (as a subjectAltName DNS name), or point users at a name it has")


@check("tls.protocols", "TLS 1.0 and 1.1 are refused; TLS 1.2 or 1.3 accepted", USERS_TO_FRONT_DOOR,
       needs=(FRONT_DOOR,), applies=only_https)
def tls_protocols(target: CheckTarget) -> Verdict:
    versions = (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)
    untestable = [version.name for version in versions if not client_speaks(version)]
    accepted = [version.name for version in versions
                if version.name not in untestable and _accepts(target, version)]
    expected = "accepts TLSv1_2 and/or TLSv1_3 only"
    observed = f"accepts {', '.join(accepted) or 'nothing'}"
    legacy = [name for name in accepted if name in ("TLSv1", "TLSv1_1")]
    if legacy:
        return failed(observed, expected, f"{' and '.join(legacy)} {LEGACY_TLS.text}", cause=LEGACY_TLS.cause)
    if not any(name in ("TLSv1_2", "TLSv1_3") for name in accepted):
        return failed(observed, expected, "enable TLS 1.2 and 1.3")
    if untestable:
        return not_applicable(f"{observed}; cannot tell whether the server refuses {', '.join(untestable)}: "
                              "this machine's OpenSSL will not speak it (FIPS or a strict policy)")
    return passed(observed, expected)


def _accepts(target: CheckTarget, version: ssl.TLSVersion) -> bool:
    try:
        open_socket(target, legacy_context(version)).close()
        return True
    except (ssl.SSLError, OSError):
        return False


def legacy_context(version: ssl.TLSVersion) -> ssl.SSLContext:
    """A client context that speaks ``version`` only and verifies nothing (a probe)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated: probing for them is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = context.maximum_version = version
    if version < ssl.TLSVersion.TLSv1_2:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 refuses TLS 1.0/1.1 otherwise
    return context


def _dns_names(cert: x509.Certificate) -> list[str]:
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return extension.value.get_values_for_type(x509.DNSName)


def _matches(pattern: str, host: str) -> bool:
    if pattern.startswith("*."):
        return host.count(".") == pattern.count(".") and host.endswith(pattern[1:])
    return pattern.lower() == host.lower()
