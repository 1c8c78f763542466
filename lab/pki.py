"""The lab's PKI: root CA → intermediate → leaf, made with trustme, plus broken variants.

Files written to a directory (``certs/<topology>/`` by default), under the names the
proxies see in ``/etc/lab/tls/``:

=================  ==========================================================
``ca.pem``         the lab root: the only thing a client should trust
``ca-key.pem``     the root's key (mode 0600) — reused by later runs so trust lasts
``chain.pem``      the intermediate alone
``cert.pem``       the leaf alone
``fullchain.pem``  leaf + intermediate: what a proxy should serve
``privkey.pem``    the leaf's key (mode 0600)
``chain-key.pem``  the intermediate's key (mode 0600): reproductions issue look-alikes with it
``backend.pem``    (reproductions) Bitbucket's own leaf, naming its internal host
``haproxy.pem``    (proxies only) fullchain + key in one file, as HAProxy's ``crt`` wants
``keystore.p12``   PKCS12 for Tomcat: alias ``tomcat``, password ``changeit`` (mode 0600)
``chain.der``      the intermediate in DER, as the leaf's AIA URL (:data:`AIA_URL`) serves it
``.pki.lock``      held (``flock``) while ``make_pki`` writes, so runs never interleave
=================  ==========================================================

The leaf carries an Authority Information Access "CA Issuers" URL (:data:`AIA_URL`), as
public CAs' leaves do: a browser that is not sent the intermediate fetches it from there
(the lab's ``pki.lab.test`` node serves ``chain.der`` on the users' network), while git,
curl and Python never do — the ``no-intermediate`` variant shows that split.

Private files are created 0600 under a unique temporary name and renamed into place, so
no one else can read them at any moment and a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from lab.errors import LabError
from lab.hostnames import ascii_host, is_ip_address

AIA_HOST = "pki.lab.test"
AIA_PATH = "/lab-intermediate.crt"
AIA_URL = f"http://{AIA_HOST}{AIA_PATH}"
"""Where the leaf says its issuer's certificate can be fetched (served on the users' network)."""
KEYSTORE_ALIAS = "tomcat"
KEYSTORE_PASSWORD = "changeit"
TLS_VARIANTS: dict[str, str] = {
    "good": "leaf + intermediate, valid, for the public name",
    "no-intermediate": "the proxy serves the leaf without its intermediate",
    "expired": "the leaf expired yesterday",
    "wrong-host": "the leaf names wrong.lab.test instead of the public name",
    "self-signed": "a self-signed leaf, not issued by the lab CA",
}


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the PKI files of one topology run."""

    directory: Path
    variant: str

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def fullchain(self) -> Path:
        return self.directory / "fullchain.pem"

    @property
    def keystore(self) -> Path:
        return self.directory / "keystore.p12"

    def proxy_files(self) -> dict[str, bytes]:
        """{file name: bytes} of what a proxy gets under ``/etc/lab/tls/``; ``haproxy.pem``
        is HAProxy's one-file form: what fullchain.pem serves, then the key."""
        files = {name: (self.directory / name).read_bytes()
                 for name in ("ca.pem", "chain.pem", "cert.pem", "fullchain.pem", "privkey.pem")}
        files["haproxy.pem"] = files["fullchain.pem"] + files["privkey.pem"]
        return files


LEAF_KEYS = ("ecdsa", "rsa")
"""Key types of the lab's leaf: ECDSA P-256 (trustme's default, the catalog's) or RSA 2048."""


def make_pki(directory: Path, hostnames: Sequence[str], variant: str = "good",
             backend_names: Sequence[str] | None = None, leaf_key: str = "ecdsa") -> TlsFiles:
    """Write the lab PKI for ``hostnames`` (first = public name) in ``variant``.

    ``backend_names``: Bitbucket's own certificate (``keystore.p12``) gets a leaf of its
    own for these names — as a customer's Bitbucket has its internal name, not the public
    one — instead of sharing the front door's leaf (the catalog's default).

    ``leaf_key``: the leaf's key type (:data:`LEAF_KEYS`). A TLS 1.2 cipher suite names the
    key type it authenticates with (ECDHE-RSA-…, ECDHE-ECDSA-…): a customer's cipher list
    written for an RSA certificate accepts no ECDSA leaf, so reproduce picks the type to match.

    Runs on one directory are serialised (threads and processes alike): two runs at once
    would otherwise each create a root and leave keys and certificates that do not match.
    """
    if leaf_key not in LEAF_KEYS:
        raise LabError(f"unknown leaf key type {leaf_key!r}; choose one of: {', '.join(LEAF_KEYS)}")
    if variant not in TLS_VARIANTS:
        raise LabError(f"unknown TLS variant {variant!r}; choose one of: {', '.join(TLS_VARIANTS)}")
    check_certificate_names([*hostnames, *(backend_names or ())])
    directory.mkdir(parents=True, exist_ok=True)
    with _exclusive(directory):
        _write_pki(directory, hostnames, variant, backend_names, leaf_key)
    return TlsFiles(directory, variant)


def check_certificate_names(names: Sequence[str]) -> None:
    """:class:`LabError` (one line) for a name a certificate cannot carry — ``a..b``, a label
    over 63 characters, a character IDNA does not allow — instead of trustme's IDNAError.
    IP addresses are fine (they become IP SANs); unicode names become A-labels, as in trustme."""
    for name in names:
        if is_ip_address(name):
            continue
        try:
            ascii_host(name)
        except ValueError as error:
            raise LabError(f"the lab certificate cannot name {name!r}: {error}; correct the name where it "
                           "is written (server_name, ServerName, the topology's aliases)") from None


@contextlib.contextmanager
def _exclusive(directory: Path) -> Iterator[None]:
    # flock belongs to the open file description: a fresh open per call excludes other
    # threads of this process as well as other processes; closing the fd releases it.
    fd = os.open(directory / ".pki.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write_pki(directory: Path, hostnames: Sequence[str], variant: str,
               backend_names: Sequence[str] | None, leaf_key: str) -> None:
    root = _load_or_create_root(directory)
    intermediate = root.create_child_ca()
    key_pem, leaf_pem = _leaf(intermediate, hostnames, variant, leaf_key)
    chain_pem = intermediate.cert_pem.bytes()
    served_chain = b"" if variant in ("no-intermediate", "self-signed") else chain_pem
    _write(directory / "chain.pem", chain_pem)
    _write(directory / "chain.der", x509.load_pem_x509_certificate(chain_pem).public_bytes(serialization.Encoding.DER))
    _write(directory / "chain-key.pem", intermediate.private_key_pem.bytes(), private=True)
    _write(directory / "cert.pem", leaf_pem)
    _write(directory / "fullchain.pem", leaf_pem + served_chain)
    _write(directory / "privkey.pem", key_pem, private=True)
    if backend_names:
        backend = intermediate.issue_cert(*backend_names)
        backend_key, backend_leaf = backend.private_key_pem.bytes(), backend.cert_chain_pems[0].bytes()
        _write(directory / "backend.pem", backend_leaf)
        _write(directory / "keystore.p12", _keystore(backend_key, backend_leaf, chain_pem), private=True)
    else:
        _write(directory / "keystore.p12", _keystore(key_pem, leaf_pem, served_chain), private=True)
    _write(directory / "README.md", _readme(hostnames[0], variant).encode())


def _load_or_create_root(directory: Path) -> trustme.CA:
    ca_path, key_path = directory / "ca.pem", directory / "ca-key.pem"
    if ca_path.is_file() and key_path.is_file():
        return trustme.CA.from_pem(ca_path.read_bytes(), key_path.read_bytes())
    root = trustme.CA(organization_name="Bitbucket Lab", organization_unit_name="Lab root CA")
    _write(key_path, root.private_key_pem.bytes(), private=True)
    _write(ca_path, root.cert_pem.bytes())
    return root


def _leaf(issuer: trustme.CA, hostnames: Sequence[str], variant: str, leaf_key: str) -> tuple[bytes, bytes]:
    now = datetime.datetime.now(datetime.timezone.utc)
    if variant == "self-signed":
        return _self_signed(hostnames, now)
    names = ["wrong.lab.test"] if variant == "wrong-host" else list(hostnames)
    key_type = trustme.KeyType.RSA if leaf_key == "rsa" else trustme.KeyType.ECDSA
    if variant == "expired":
        leaf = issuer.issue_cert(*names, not_before=now - datetime.timedelta(days=30),
                                 not_after=now - datetime.timedelta(days=1), key_type=key_type)
    else:
        leaf = issuer.issue_cert(*names, key_type=key_type)
    return leaf.private_key_pem.bytes(), with_aia(leaf.cert_chain_pems[0].bytes(), issuer)


def with_aia(leaf_pem: bytes, issuer: trustme.CA, url: str = AIA_URL) -> bytes:
    """``leaf_pem`` re-signed by ``issuer`` with an AIA "CA Issuers" URL added; every other
    field (names, validity, serial, extensions) is kept."""
    leaf = x509.load_pem_x509_certificate(leaf_pem)
    builder = (x509.CertificateBuilder().subject_name(leaf.subject).issuer_name(leaf.issuer)
               .public_key(leaf.public_key()).serial_number(leaf.serial_number)
               .not_valid_before(leaf.not_valid_before_utc).not_valid_after(leaf.not_valid_after_utc))
    for extension in leaf.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    builder = builder.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
        AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(url))]), critical=False)
    key = serialization.load_pem_private_key(issuer.private_key_pem.bytes(), password=None)
    assert isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey))
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _self_signed(hostnames: Sequence[str], now: datetime.datetime) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hostnames]), False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def _keystore(key_pem: bytes, leaf_pem: bytes, chain_pem: bytes) -> bytes:
    return keystore(key_pem, leaf_pem, chain_pem, KEYSTORE_ALIAS, KEYSTORE_PASSWORD)


def keystore(key_pem: bytes, leaf_pem: bytes, chain_pem: bytes, alias: str, password: str) -> bytes:
    """A PKCS12 keystore holding the key under ``alias``, encrypted with ``password``."""
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey))
    cas = x509.load_pem_x509_certificates(chain_pem) if chain_pem else None
    return pkcs12.serialize_key_and_certificates(
        alias.encode(), key, x509.load_pem_x509_certificate(leaf_pem), cas,
        serialization.BestAvailableEncryption(password.encode()))


def _write(path: Path, data: bytes, private: bool = False) -> None:
    """Atomically replace ``path``: mode 0600 (``private``) from creation on, else 0644."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # 0600
    try:
        try:
            if not private:
                os.fchmod(fd, 0o644)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _readme(public_name: str, variant: str) -> str:
    return f"""# Lab PKI for {public_name} (variant: {variant})

{TLS_VARIANTS[variant]}.

Trust `ca.pem` and nothing else; never install it system-wide on a machine you care about.

- git:  `git -c http.sslCAInfo=$PWD/ca.pem clone https://{public_name}/...`
  (unset `GIT_SSL_CAINFO` first: it wins over `http.sslCAInfo`)
- curl: `curl --cacert $PWD/ca.pem https://{public_name}/...`
  (unset `CURL_CA_BUNDLE` and `SSL_CERT_FILE`)
- Chromium: start with a fresh profile and import `ca.pem` under
  Settings → Privacy and security → Security → Manage certificates → Authorities,
  or use the command `nox -s lab` prints.

`fullchain.pem` is what a proxy should serve (leaf + intermediate); `cert.pem` alone is
the leaf, which browsers may accept by fetching the intermediate while git will not.
"""


def write_file(path: Path, data: bytes, private: bool = False) -> None:
    """Atomically replace ``path`` (0600 from creation when ``private``): for the lab's
    other key material (SSH keys)."""
    _write(path, data, private)
