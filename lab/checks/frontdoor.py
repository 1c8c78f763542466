"""The first hop: can users reach the public host and port at all?

Every other check goes through this hop; when it fails, they are blocked by it and the
report names this one cause instead of a dozen network errors. (A dead gateway of the lab
itself is found before any check runs: see ``lab.checks.runner``.)
"""

from __future__ import annotations

from lab.checks.base import FRONT_DOOR, USERS_TO_FRONT_DOOR, CheckTarget, Verdict, check, failed, passed
from lab.checks.network import describe


@check(FRONT_DOOR, "users reach the public host and port: the name is the lab's and something listens",
       USERS_TO_FRONT_DOOR)
def front_door(target: CheckTarget) -> Verdict:
    expected = f"a TCP connection to {target.host}:{target.port} from the users' network"
    try:
        target.users.connect(target.host, target.port, timeout=10).close()
    except OSError as error:
        observed, hint = describe(error, target)
        return failed(observed, expected, hint)
    return passed(f"{target.host}:{target.port} accepts connections from the users' network", expected)
