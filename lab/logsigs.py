"""What a proxy's log line means: known signatures → cause and fix.

Each kind's package (``lab/proxies/<kind>``) lists its signatures: a regular expression over
one log line (error or access log) and the fix a support engineer would give. Unknown lines are still
quoted verbatim as evidence; only the hint comes from here.
"""

from __future__ import annotations

import re

from lab.proxies import KINDS, Signature

SIGNATURES: tuple[Signature, ...] = tuple(dict.fromkeys(
    signature for kind in KINDS.values() for signature in kind.log_signatures))
"""Every kind's signatures (``lab/proxies/<kind>``), each once."""


def explain(lines: list[str], kind: str) -> tuple[Signature, str] | None:
    """The first known signature among ``lines`` written by a ``kind`` proxy, with its line."""
    for signature in KINDS[kind].log_signatures if kind in KINDS else ():
        for line in lines:
            if signature.pattern.search(line):
                return signature, line
    return None


_ERROR_LINE = re.compile(r"^(?:\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} \[\w+\]|\[\w{3} \w{3} [ \d]\d )")
"""nginx's (``2026/12/06 03:31:10 [error]``) and Apache's (``[Sun Dec 06 …``) error-log lines."""


def is_error_line(text: str) -> bool:
    """An error-log line of nginx or Apache, as opposed to an access-log line."""
    return bool(_ERROR_LINE.match(text))
