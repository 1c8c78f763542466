"""The proxies' start scripts, as the lab's readiness reads them."""

from __future__ import annotations

import pytest

from lab.images.build import SPECS
from lab.proxies import KINDS
from lab.readiness import SERVER_STARTS

CONFIG_TEST = {"nginx": "nginx -t", "apache": "-f \"$conf\" -t", "haproxy": "haproxy -c", "caddy": "caddy validate",
               "traefik": None}  # Traefik has no config test: it refuses a static configuration as it starts


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_proxy_says_its_server_starts_only_after_its_config_test_and_just_before_the_server(kind):
    # nginx -t opens every listener for a moment: readiness counts a port that accepts only
    # once this line is in the log, or the front door may refuse just after "ready".
    lines = SPECS[kind].context["start.sh"].read_text().splitlines()
    code = [line.strip() for line in lines if not line.lstrip().startswith("#")]
    said = [i for i, line in enumerate(code) if SERVER_STARTS in line]
    test = CONFIG_TEST[kind]
    tested = [i for i, line in enumerate(code) if test and test in line] or [-1]
    program = KINDS[kind].program
    server = [i for i, line in enumerate(code)
              if line.startswith(("exec ", f"{program} -c", f"{program} --configFile")) and program in line]
    assert len(said) == 1 and code[said[0]].startswith("echo "), code
    assert (tested != [-1] or test is None) and server, code
    assert tested[-1] < said[0] < min(server), (tested, said, server)
