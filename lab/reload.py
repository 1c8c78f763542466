"""Change a running topology in place: new proxy config, TLS files or Bitbucket properties
without recreating it — the proxy reloads (nginx ``-s reload``, Apache ``-k graceful``,
HAProxy's master reload) and Bitbucket restarts only when its own files changed.

Convergence is observed, not slept on: the lab waits until every worker process of the
old configuration has exited, then until the topology answers as at start.
"""

from __future__ import annotations

import time

from docker.models.containers import Container

from lab import browser as browser_node
from lab.errors import LabError
from lab.pki import make_pki
from lab.provision import NodeSetup, catalog_provisioner
from lab.proxies import KINDS
from lab.readiness import wait_until_ready, workers
from lab.releases import rejection_hint
from lab.stub.server import RESTARTING as STUB_RESTARTING
from lab.runtime import LabOptions, RunningTopology, replace_node, tar_files
from lab.topology import Node

CONVERGE_TIMEOUT_S = 15
# Validate the new config, then tell the running proxy to take it, as an admin would.
def reload_in_place(running: RunningTopology, options: LabOptions) -> None:
    """Give ``running`` the files ``options`` imply and wait until it runs them; the PKI is
    made anew only for another TLS variant, so a config-only change reloads the proxy alone;
    another proxy release (``--proxy-version``) recreates the proxy's container alone.
    LabError when the proxy rejects the new config (the old one keeps running) or when
    the change needs a new container (another environment)."""
    same_pki = (options.tls_variant, options.backend_names, options.leaf_key) == (
        running.options.tls_variant, running.options.backend_names, running.options.leaf_key)
    tls = running.tls if same_pki else make_pki(running.tls.directory, running.topology.tls_names,
                                                options.tls_variant, backend_names=options.backend_names,
                                                leaf_key=options.leaf_key)
    provision = options.provisioner or catalog_provisioner(options.drop_ins, options.http2)
    setups = {node.name: provision(running.topology, node, tls) for node in running.topology.nodes}
    # Another proxy release is another image: the proxy's container is made anew, the rest stays.
    renewed = {node.name for node in running.topology.nodes
               if node.kind in KINDS and options.proxy_release != running.options.proxy_release}
    for node in running.topology.nodes:
        if node.name not in renewed and setups[node.name].environment != running.provisioned[node.name].environment:
            raise LabError(f"{node.name}: the change needs another environment; recreate the topology instead")
    running.options, running.tls = options, tls
    for node in running.topology.nodes:
        if node.name in renewed:
            replace_node(running, node)
        elif _files(setups[node.name]) != _files(running.provisioned[node.name]):
            _apply(running, node, setups[node.name])
        running.provisioned[node.name] = setups[node.name]
    if browser_node.PKI_NODE in running.containers:  # a new intermediate: the AIA URL serves it now
        running.containers[browser_node.PKI_NODE].put_archive("/", tar_files(browser_node.pki_files(tls)))
    wait_until_ready(running)
    running.settled_at = time.time()


def _files(setup: NodeSetup) -> dict[str, bytes]:
    return {item.path: item.data for item in setup.files}


def _apply(running: RunningTopology, node: Node, setup: NodeSetup) -> None:
    container = running.containers[node.name]
    container.put_archive("/", tar_files(setup.files))
    if node.kind == "stub":
        restart_stub(running, node)  # Bitbucket reads its properties at start only
        return
    try:
        reload_proxy(running, node)
    except LabError:  # the old config keeps running: its files go back on disk too
        container.put_archive("/", tar_files(running.provisioned[node.name].files))
        raise


def restart_stub(running: RunningTopology, node: Node) -> None:
    """Restart Bitbucket's process in its container (SIGHUP: the stub closes every listener,
    says so, and runs anew, reading its files again) — as an admin restarts Bitbucket after
    editing bitbucket.properties, without Docker recreating the host. Returns once the old
    process serves nothing; readiness then waits for the new one."""
    container = running.containers[node.name]
    since = time.time()
    container.kill(signal="SIGHUP")
    deadline = time.monotonic() + CONVERGE_TIMEOUT_S
    while STUB_RESTARTING not in container.logs(since=since).decode("utf-8", "replace"):
        if time.monotonic() > deadline:
            raise LabError(f"{node.name} did not restart within {CONVERGE_TIMEOUT_S} s of SIGHUP; its log: "
                           f"{' | '.join(running.logs(node.name, 10).splitlines())}")
        time.sleep(0.02)


def reload_proxy(running: RunningTopology, node: Node) -> None:
    """The proxy validates and takes its config again (names resolved anew), as an admin's
    reload does; returns once no worker of the old configuration is left."""
    container = running.containers[node.name]
    kind = KINDS[node.kind]
    program, command = kind.program, kind.reload
    old_workers = workers(container, program) if kind.reload_waits_for_workers else set()
    result = container.exec_run(["sh", "-c", command])
    if result.exit_code != 0:
        message = result.output.decode("utf-8", "replace").strip().splitlines()
        first = next((line for line in message if any(word in line for word in ("emerg", "ALERT", "AH0", "Error: "))),
                     message[-1] if message else "")
        raise LabError(f"{node.kind} rejected the proxy config: {first}"
                       f"{rejection_hint(node.kind, first, running.options.proxy_release)}")
    _wait_for_exit(container, program, old_workers)


def _wait_for_exit(container: Container, program: str, old_workers: set[int]) -> None:
    """Until no worker of the old configuration is left (bounded)."""
    deadline = time.monotonic() + CONVERGE_TIMEOUT_S
    while old_workers & workers(container, program):
        if time.monotonic() > deadline:
            raise LabError(f"{program} kept workers of the old configuration for {CONVERGE_TIMEOUT_S} s after "
                           "the reload (a long request still running?)")
        time.sleep(0.05)
