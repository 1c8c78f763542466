"""TLS on a connector from a PKCS12 keystore, as ``server.ssl.*`` configures Tomcat.

The standard library cannot read PKCS12, so the ``openssl`` CLI unpacks it to PEM once
at start; the key entry is chosen by its alias (the PKCS12 friendlyName), as Tomcat's
``key-alias`` does.
"""

from __future__ import annotations

import os
import re
import ssl
import subprocess
import tempfile

from lab.stub.config import ConfigError, TlsSettings

_BAG = re.compile(r"Bag Attributes(?P<attrs>.*?)(?P<pem>-----BEGIN (?P<kind>[A-Z ]+)-----.*?-----END [A-Z ]+-----)",
                  re.S)


def server_context(tls: TlsSettings, prefix: str) -> ssl.SSLContext:
    """An SSLContext serving the keystore's ``key_alias`` entry with its chain."""
    pem = _unpack_pkcs12(tls, prefix)
    key, certs = _select_entry(pem, tls.key_alias, prefix)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as bundle:
        bundle.write(key + "\n" + "\n".join(certs) + "\n")
        bundle.flush()
        context.load_cert_chain(bundle.name)
    return context


def _unpack_pkcs12(tls: TlsSettings, prefix: str) -> str:
    env = {**os.environ, "LAB_P12_PASS": tls.key_store_password}
    command = ["openssl", "pkcs12", "-in", str(tls.key_store), "-nodes",
               "-passin", "env:LAB_P12_PASS"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=30)
        if result.returncode != 0 and "unsupported" in result.stderr.lower():
            # Keystores from older keytool use RC2/3DES, which OpenSSL 3 keeps in "legacy".
            result = subprocess.run([*command, "-legacy"], capture_output=True, text=True,
                                    env=env, timeout=30)
    except FileNotFoundError:
        raise ConfigError(f"{prefix}.ssl.key-store: the openssl CLI is needed to read PKCS12") from None
    if result.returncode != 0:
        if "mac verify failure" in result.stderr.lower() or "invalid password" in result.stderr.lower():
            raise ConfigError(f"{prefix}.ssl.key-store-password: wrong password for keystore {tls.key_store}")
        raise ConfigError(f"{prefix}.ssl.key-store={tls.key_store}: not a readable PKCS12 keystore")
    return result.stdout


def _select_entry(pem: str, alias: str, prefix: str) -> tuple[str, list[str]]:
    """The private key named ``alias`` and the certificates: its own first, then the chain."""
    key, own, chain = None, None, []
    for match in _BAG.finditer(pem):
        named = re.search(r"friendlyName:\s*(.+)", match["attrs"])
        name = named.group(1).strip() if named else None
        if "PRIVATE KEY" in match["kind"]:
            key = match["pem"] if name == alias else key
        elif name == alias:
            own = match["pem"]
        else:
            chain.append(match["pem"])
    if key is None or own is None:
        raise ConfigError(f"{prefix}.ssl.key-alias={alias}: no key entry with that alias in the keystore")
    return key, [own, *chain]
