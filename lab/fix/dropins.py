"""``check --fix``: the drop-ins (``--proxy-config``, ``--properties``) read as a customer's
bundle under their own names, patched, reloaded into the running topology and checked again.

The catalog's failure variants and a customer's drop-ins go through the same two steps:
:func:`drop_in_bundle` (read them as a bundle) and :func:`fix_drop_ins` (verify the patch).
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path

from lab.checks.base import CheckResult
from lab.fix.verify import FixResult, verify_fix
from lab.provision import DropIns
from lab.reload import reload_in_place
from lab.reproduce import read_bundle
from lab.reproduce.model import CustomerSetup
from lab.runtime import RunningTopology

PROPERTIES_NAME = "bitbucket.properties"
"""What ``--properties`` is called in the bundle (the drop-in may have any name)."""


def drop_in_bundle(drop_ins: DropIns, folder: Path) -> CustomerSetup:
    """The drop-ins copied into ``folder`` under their own names (``bitbucket.properties``
    for the properties) and read as a customer's bundle. LabError when the lab cannot read them."""
    if drop_ins.proxy_config:
        shutil.copyfile(drop_ins.proxy_config, folder / drop_ins.proxy_config.name)
    if drop_ins.properties:
        shutil.copyfile(drop_ins.properties, folder / PROPERTIES_NAME)
    return read_bundle([folder])


def fix_drop_ins(running: RunningTopology, setup: CustomerSetup, results: list[CheckResult], work: Path,
                 check: Callable[[RunningTopology], list[CheckResult]],
                 step: Callable[[str], None] = lambda _: None) -> FixResult:
    """Patch copies of the drop-ins ``running`` was started with (``results``: its checks as
    sent), reload it with each patched copy and ``check`` it again, until the patch is verified
    or changes nothing. The patched files go to ``work``/bundle; the originals are never written."""
    sent = running.options.drop_ins

    def rerun(folder: Path) -> list[CheckResult]:
        patched = DropIns(folder / sent.proxy_config.name if sent.proxy_config else None,
                          folder / PROPERTIES_NAME if sent.properties else None)
        step("reloading with the patched files")
        reload_in_place(running, dataclasses.replace(running.options, drop_ins=patched))
        step("running checks again")
        return check(running)

    return verify_fix(setup, results, work, rerun)
