"""Turn a running topology into what the checks need, and run them with evidence."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from lab.checks import CheckResult, CheckTarget, run_checks
from lab.checks.base import LAB_FAULT, Evidence
from lab.evidence import attach_evidence
from lab.findings import with_findings
from lab.outage import node_stopper
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
        browser=running.browser if running.options.browser else None,  # a kept topology's may idle
        ssh_command=running.ssh_keys.ssh_command(running.gateway_ports["outside"])
        if running.ssh_keys.host_key.is_file() else None,
        ssh_base_url_known=running.options.ssh_base_url_known
        and (running.options.drop_ins.properties is None or "plugin.ssh.baseurl" in properties),
        proxy_kind=topology.proxy.kind if topology.proxy else None,
        bitbucket_nodes=tuple(node.name for node in topology.bitbucket_nodes),
        stop_node=node_stopper(running) if topology.clustered else None,
    )


def check_running(running: RunningTopology, ids: Iterable[str] | None = None,
                  on_start: Callable[[str], None] | None = None) -> list[CheckResult]:
    """Run checks on a running topology; failed ones carry the proxy's and Bitbucket's log lines
    tied to their own requests, and the number of the finding that explains them."""
    results = attach_evidence(running, run_checks(check_target(running), ids, on_start))
    return with_findings(blame_lab_faults(results, running.exited_nodes()))


"""The cause of every failure in a run during which one of the lab's own nodes stopped."""


def blame_lab_faults(results: list[CheckResult], stopped: list[str]) -> list[CheckResult]:
    """When a node of the lab stopped during the run (``stopped``: one line per node, as
    :meth:`RunningTopology.exited_nodes` says), the failures are the lab's, not the
    topology's: each failed check says so, with the node's last log lines, so they make one
    finding instead of a list of configuration fixes."""
    if not stopped:
        return results
    hint = (f"the lab's own {'node' if len(stopped) == 1 else 'nodes'} stopped during the run — "
            f"{'; '.join(line.split(':', 1)[0] for line in stopped)}: these failures are the lab's, not the topology's; "
            "run it again (the log lines below say why it stopped)")
    evidence = Evidence(tuple(stopped), (), "a node of the lab itself stopped while the checks ran")
    return [result.explained(hint, LAB_FAULT, evidence) if result.outcome.failed else result for result in results]
