"""Turn a running topology into what the checks need."""

from __future__ import annotations

from lab.checks import CheckTarget
from lab.provision import effective_properties
from lab.runtime import RunningTopology


def check_target(running: RunningTopology) -> CheckTarget:
    """Users stand on the outside network; an admin on the inside one, if there is one."""
    topology = running.topology
    properties = effective_properties(topology, running.options.drop_ins)
    slow = tuple(item.rpartition(":")[0].strip() for item in properties.get("lab.slow-repos", "").split(",")
                 if item.strip())
    return CheckTarget(
        public_url=running.public_url,
        users=running.vantage("outside"),
        inside=running.vantage("inside") if "inside" in running.gateway_ports else None,
        http_url=topology.http_url,
        tomcat_url=topology.tomcat_url,
        tomcat_reachable_by_users=topology.tomcat_reachable_by_users,
        applicable=topology.checks,
        slow_repos=slow,
    )
