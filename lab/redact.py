"""Secrets never leave the lab: what is written out (a report, a saved case) is masked.

A live run gives Bitbucket the customer's ``bitbucket.properties`` as sent; only copies the
lab writes for people to read or keep go through :func:`mask_secrets`, which replaces the
value of every secret-looking property with ``********`` and keeps everything else byte
for byte — keys, separators, comments, blank lines, line endings, continuation lines (a
masked value that continued keeps its ``\\``, so the line count and every other key stay).

Secret-looking: a key holding ``password``/``passwd``/``passphrase`` (``jdbc.password``,
``setup.sysadmin.password``, ``server.ssl.key-store-password``, env-style ``DB_PASSWORD``),
``secret``, ``token``, ``credential``, ``private-key``/``api-key`` or ``license``/``licence``
(``setup.license``). A value that is empty or a plain switch (``true``, ``off``) is kept:
it hides nothing. The password of a URL with credentials (``jdbc:postgresql://user:pw@db``)
is masked in any value.

:func:`is_key_material` tells, by content whatever a file is called, a file no one should
ever print: a PEM private key, a PuTTY key, a Java keystore, PKCS#12 or other DER data.
"""

from __future__ import annotations

import re

MASK = "********"
SECRET_KEY = re.compile(r"pass(?:word|wd|phrase)|secret|token|credential|private[-_.]?key|api[-_.]?key"
                        r"|licen[cs]e", re.I)
"""A key this matches anywhere holds a secret."""
SWITCHES = frozenset({"true", "false", "yes", "no", "on", "off"})

_ENTRY = re.compile(
    r"(?P<lead>[ \t\f]*)(?P<export>export[ \t]+)?(?P<key>(?:[^\s=:\\]|\\.)+)"
    r"(?P<sep>[ \t\f]*[=:][ \t\f]*|[ \t\f]+)(?P<value>.*)", re.S)
_URL_PASSWORD = re.compile(r"(?P<before>\b[a-z][a-z0-9+.\-]*://[^/\s:@]*:)[^@\s/]+(?=@)", re.I)
_PEM_PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_KEYSTORE_MAGIC = (b"\xfe\xed\xfe\xed", b"\xce\xce\xce\xce", b"PuTTY-User-Key-File-")


def mask_secrets(text: str) -> str:
    """``text`` (``bitbucket.properties`` or env-style ``KEY=value`` lines) with the value of
    every secret-looking entry replaced by :data:`MASK`; every other byte kept."""
    lines = text.splitlines(keepends=True)
    masked: list[str] = []
    continuing, secret = False, False
    for line in lines:
        body, end = _split_end(line)
        if continuing:
            masked.append(_masked_continuation(body) + end if secret else line)
            continuing = _continues(body)
            continue
        entry = None if body.lstrip(" \t\f")[:1] in ("#", "!", "") else _ENTRY.fullmatch(body)
        if entry is None:
            masked.append(line)
            continue
        continuing = _continues(body)
        secret = _is_secret(entry["key"], entry["value"], continuing)
        value = _masked_value(entry["value"], continuing) if secret else _URL_PASSWORD.sub(
            lambda match: match["before"] + MASK, entry["value"])
        masked.append(body[:entry.start("value")] + value + end)
    return "".join(masked)


def is_key_material(data: bytes) -> bool:
    """Whether ``data`` is a private key or keystore (PEM, PuTTY, JKS/JCEKS, PKCS#12/DER)."""
    if _PEM_PRIVATE_KEY.search(data) or data.startswith(_KEYSTORE_MAGIC):
        return True
    return _is_der(data)


def _is_secret(key: str, value: str, continuing: bool) -> bool:
    if not SECRET_KEY.search(key.replace("\\", "")):
        return False
    plain = value.strip().strip("\"'").lower()
    return continuing or (plain != "" and plain not in SWITCHES)


def _masked_value(value: str, continuing: bool) -> str:
    quote = value[:1] if value[:1] in ("'", '"') and value.rstrip()[-1:] == value[:1] and len(value.strip()) > 1 else ""
    return quote + MASK + quote + ("\\" if continuing else "")


def _masked_continuation(body: str) -> str:
    lead = body[:len(body) - len(body.lstrip(" \t\f"))]
    return lead + MASK + ("\\" if _continues(body) else "")


def _continues(body: str) -> bool:
    """A Java properties line continues when it ends in an odd number of backslashes."""
    trailing = len(body) - len(body.rstrip("\\"))
    return trailing % 2 == 1


def _split_end(line: str) -> tuple[str, str]:
    for end in ("\r\n", "\n", "\r"):
        if line.endswith(end):
            return line[:-len(end)], end
    return line, ""


def _is_der(data: bytes) -> bool:
    """One DER SEQUENCE filling ``data`` (PKCS#12, PKCS#8, a DER key or certificate), or
    BER's indefinite-length form PKCS#12 files from older tools use."""
    if len(data) < 4 or data[0] != 0x30:
        return False
    first = data[1]
    if first == 0x80:
        return True
    if first < 0x80:
        return 2 + first == len(data)
    count = first & 0x7F
    if not 1 <= count <= 4 or len(data) < 2 + count:
        return False
    return 2 + count + int.from_bytes(data[2:2 + count], "big") == len(data)
