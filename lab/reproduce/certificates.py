"""What the customer's public certificate files hold, and which TLS path each is meant for.

A support engineer's first questions about a chain: whose names are on it, does it carry
the intermediate (``count``), is it in order, does it wrongly include the root, has it
expired. The lab serves its own keys; these facts shape the lab's PKI to match.
"""

from __future__ import annotations

import datetime
import posixpath
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from lab.errors import LabError
from lab.reproduce.model import BundleFile, CustomerCertificate, TlsReference

_CURVES = {"secp256r1": "p256", "secp384r1": "p384", "secp521r1": "p521"}


def read_certificates(files: Sequence[BundleFile], references: Sequence[TlsReference]) -> tuple[CustomerCertificate, ...]:
    """One record per ``certificate`` file of the bundle, matched to ``references``."""
    return tuple(read_certificate(file, references) for file in files if file.kind == "certificate")


def read_certificate(file: BundleFile, references: Sequence[TlsReference]) -> CustomerCertificate:
    """The facts of one PEM file; :class:`LabError` when a PEM block does not decode."""
    try:
        chain = x509.load_pem_x509_certificates(file.path.read_bytes())
    except ValueError as error:
        raise LabError(f"{file.relpath}: not a readable PEM certificate: {error}") from None
    now = datetime.datetime.now(datetime.timezone.utc)
    return CustomerCertificate(
        file=file,
        for_path=match_reference(file, references),
        subjects=subjects(chain[0]),
        count=len(chain),
        key_type=key_type(chain[0]),
        expired=any(cert.not_valid_after_utc < now for cert in chain),
        includes_root=any(cert.issuer == cert.subject for cert in chain),
        ordered=all(chain[i].issuer == chain[i + 1].subject for i in range(len(chain) - 1)),
    )


def match_reference(file: BundleFile, references: Sequence[TlsReference]) -> str | None:
    """The customer path this file is meant for: a reference naming its mirrored path, else
    one with its base name (``ssl/git.acme.example.crt`` ↔ ``ssl_certificate
    /etc/nginx/ssl/git.acme.example.crt``), or a file inside a referenced directory (HAProxy
    ``crt /etc/haproxy/certs/``). Keys and dhparams are never matched."""
    certificate_refs = [ref for ref in references if ref.role not in ("key", "dhparam")]
    for ref in certificate_refs:
        if file.mirrored_path and (file.mirrored_path == ref.path
                                   or ref.path.endswith("/") and file.mirrored_path.startswith(ref.path)):
            return ref.path
    name = posixpath.basename(file.relpath)
    return next((ref.path for ref in certificate_refs if posixpath.basename(ref.path) == name), None)


def subjects(cert: x509.Certificate) -> tuple[str, ...]:
    """SAN DNS names, else the subject's common name(s)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = ()
    if names:
        return names
    return tuple(str(attr.value) for attr in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME))


def key_type(cert: x509.Certificate) -> str:
    """``rsa-2048``, ``ec-p256``, ``ed25519``… of the certificate's public key."""
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return f"rsa-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ec-{_CURVES.get(key.curve.name, key.curve.name)}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "ed448"
    return type(key).__name__.lower()
