"""Run a reproduction: read the bundle, map it, bring it up, check it, describe it."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Sequence
from collections.abc import Mapping as MappingOf
from dataclasses import dataclass
from pathlib import Path


from lab.checks import CheckResult
from lab.errors import LabError
from lab.images.versions import running_proxy_version as proxy_version
from lab.progress import SILENT, Progress
from lab.provision import DropIns
from lab.reproduce import read_bundle
from lab.reproduce.labmap import Mapping, Reproduction, case_name, proxy_rows, reproduction
from lab.reproduce.provisioning import provisioner
from lab.reproduce.model import CustomerSetup
from lab.proxies import KINDS
from lab.releases import DEFAULT_RELEASE, release_for
from lab.reload import reload_in_place
from lab.runtime import LabOptions, RunningTopology, up
from lab.targets import check_running



@dataclass
class ReproducedRun:
    """A reproduction that is up: the topology running, what the lab mapped, the results."""

    reproduction: Reproduction
    running: RunningTopology
    mapping: list[Mapping]
    proxy_version: str | None
    results: list[CheckResult]
    reread: Callable[[Path], CustomerSetup] | None = None
    """Read a bundle folder as this run read its paths (same --public-url, --env, --bitbucket-upstream)."""

    @property
    def results_by_id(self) -> dict[str, CheckResult]:
        return {result.id: result for result in self.results}

    @property
    def proxy_json(self) -> dict[str, object]:
        proxy = self.reproduction.setup.proxy
        return {"kind": proxy.kind if proxy else None, "version": self.proxy_version}


@contextlib.contextmanager
def reproduce(paths: Sequence[Path], public_url: str | None = None, certs_dir: Path | None = None,
              progress: Progress = SILENT, proxy_release: str | None = None,
              browser: bool = False, env: MappingOf[str, str] | None = None,
              bitbucket_upstream: str | None = None) -> Iterator[ReproducedRun]:
    """Bring the customer's setup up from ``paths``, run every check, yield; always take it down.
    ``browser``: the browser node runs too (the ``browser.*`` checks); ``env``: values of
    ``${VAR}`` in the customer's nginx/HAProxy files (``--env``); ``bitbucket_upstream``: which
    of the proxy's upstreams is Bitbucket (``--bitbucket-upstream``).
    The proxy's Debian release is ``proxy_release``, else the one closest to a version line
    in the bundle, else the default — the mapping says which and why."""
    def reread(folder: Path) -> CustomerSetup:
        return read_bundle([folder], public_url, env, bitbucket_upstream)

    setup = read_bundle(list(paths), public_url, env, bitbucket_upstream)
    plan = reproduction(setup, case_name(list(paths)))
    release, row = _release(setup, proxy_release)
    plan.mapping.append(row)
    options = LabOptions(_drop_ins(setup), certs_dir=certs_dir, provisioner=provisioner(plan),
                         backend_names=plan.backend_names,
                         ssh_base_url_known="plugin.ssh.baseurl" in plan.setup.properties_values,
                         proxy_release=release, browser=browser, leaf_key=plan.leaf_key)
    with _customer_paths_in_errors(plan), up(plan.topology, options, progress) as running:
        mapping = plan.mapping + proxy_rows(plan)
        progress.step("running checks")
        results = check_running(running, on_start=lambda id_: progress.detail(f"  checking {id_}"))
        progress.done()
        yield ReproducedRun(plan, running, mapping, proxy_version(running), results, reread)


def _drop_ins(setup: CustomerSetup) -> DropIns:
    """The customer's properties file is what Bitbucket reads only when no other source of settings overrides it."""
    return DropIns(None, setup.properties.path if setup.properties and not setup.settings else None)


def rerun_patched(run: ReproducedRun, folder: Path, progress: Progress = SILENT) -> list[CheckResult]:
    """Reload ``run``'s topology in place from the patched bundle ``folder`` and run every
    check again. LabError when the patch needs another topology (other nodes or names): then
    reproduce the folder itself."""
    assert run.reread is not None
    setup = run.reread(folder)
    plan = reproduction(setup, run.running.topology.name)
    if plan.topology.nodes != run.running.topology.nodes:
        raise LabError("the patch changes the topology itself (other nodes or names): reproduce the patched "
                       f"bundle on its own: python -m lab reproduce {folder}")
    options = dataclasses.replace(run.running.options, drop_ins=_drop_ins(setup), provisioner=provisioner(plan),
                                  backend_names=plan.backend_names, leaf_key=plan.leaf_key)
    progress.step("reloading with the patched files")
    with _customer_paths_in_errors(plan):
        reload_in_place(run.running, options)
    progress.step("running checks again")
    results = check_running(run.running, on_start=lambda id_: progress.detail(f"  checking {id_}"))
    progress.done()
    return results


def _release(setup: CustomerSetup, chosen: str | None) -> tuple[str, Mapping]:
    """The proxy's Debian release and the mapping row that says why it was chosen."""
    hint = setup.version_hint
    if chosen:
        return chosen, Mapping("proxy release", hint or "(no version line in the bundle)", f"{chosen}: --proxy-version")
    prefix = KINDS[setup.proxy.kind].version_prefix if setup.proxy and setup.proxy.kind in KINDS else None
    if setup.proxy is None or not hint or not prefix or not hint.startswith(prefix):
        return DEFAULT_RELEASE, Mapping("proxy release", hint or "(no version line in the bundle)",
                                        f"{DEFAULT_RELEASE}: the lab's default")
    release, why = release_for(setup.proxy.kind, hint.split("/", 1)[1])
    return release, Mapping("proxy release", hint, f"{release}: {why}")


@contextlib.contextmanager
def _customer_paths_in_errors(plan: Reproduction) -> Iterator[None]:
    """A proxy's refusal names the path inside the container; say which customer file it is."""
    try:
        yield
    except LabError as error:
        message = str(error)
        placed = plan.proxy_plan.placed if plan.proxy_plan else []
        for item in sorted(placed, key=lambda item: -len(item.path)):
            message = message.replace(item.path, f"{item.file.relpath} (at {item.path})")
        raise LabError(message) from None


def mapping_table(mapping: Sequence[Mapping]) -> str:
    """The mapping as a table a support engineer reads top to bottom."""
    width = max((len(row.what) for row in mapping), default=10)
    lines = ["what the lab mapped (customer → lab):"]
    for row in mapping:
        lines.append(f"  {row.what:<{width}}  {row.customer}")
        lines.append(f"  {'':<{width}}  → {row.lab}")
    return "\n".join(lines)
