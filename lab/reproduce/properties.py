"""Read a customer's ``bitbucket.properties`` as Java would, values kept as strings.

``jproperties`` handles the Java syntax: ``key=value``, ``key: value``, ``key value``,
``#``/``!`` comments, ``\\`` continuations and escapes. Values are the customer's, under
test: nothing here corrects or defaults them.
"""

from __future__ import annotations

from collections.abc import Sequence

import jproperties  # type: ignore[import-untyped]

from lab.errors import LabError
from lab.reproduce.model import BundleFile

SHARED_HOME_SUFFIX = "/shared/bitbucket.properties"
"""Bitbucket reads ``$BITBUCKET_HOME/shared/bitbucket.properties``; a copy directly in the
home is ignored by Bitbucket, and so by the lab when both are sent."""


def read_properties(file: BundleFile) -> dict[str, str]:
    """{key: value} of one properties file; later keys win, as in Java."""
    properties = jproperties.Properties()
    try:
        properties.load(file.path.read_bytes(), "utf-8")
    except Exception as error:  # jproperties raises its own ParseError and UnicodeDecodeError
        raise LabError(f"{file.relpath}: not a Java properties file: {error}") from None
    return {str(key): str(value) for key, value in properties.properties.items()}


def pick_properties(files: Sequence[BundleFile]) -> BundleFile | None:
    """The properties file Bitbucket would read: the only one, or the one under ``shared/``.

    Raises :class:`LabError` when several are sent and none (or several) is under ``shared/``.
    """
    candidates = [file for file in files if file.kind == "properties"]
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    shared = [file for file in candidates if ("/" + file.relpath).endswith(SHARED_HOME_SUFFIX)]
    if len(shared) == 1:
        return shared[0]
    names = ", ".join(file.relpath for file in candidates)
    raise LabError(f"the bundle holds several bitbucket.properties ({names}): send the one in "
                   "$BITBUCKET_HOME/shared")
