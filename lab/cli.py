"""``python -m lab`` / ``bitbucket-lab``: reproduce a Bitbucket topology from one command.

Exit codes: 0 every applicable check passed; 1 a check failed; 2 bad input or
environment (unknown topology, unreadable file, config the proxy rejects, no Docker).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import subprocess
import sys
import faulthandler
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lab.errors import LabError
from lab.outputs import AUTO_REPORT, validate_output_paths, writing
from lab.pki import TLS_VARIANTS
from lab.progress import Progress
from lab.releases import DEFAULT_RELEASE, RELEASES
from lab.topology import catalog, check_public_url, load_topology, load_topology_file

if TYPE_CHECKING:  # the CLI imports Docker-facing modules only when a command needs them
    from lab.checks import CheckResult
    from lab.fix.verify import FixResult
    from lab.reproduce.model import CustomerSetup
    from lab.runtime import LabOptions, RunningTopology
    from lab.topology import Topology

DEFAULT_TOPOLOGY = "nginx-https"
STOP_REPORT_AFTER_S = 30
"""After Ctrl-C, if taking the topology down has not ended in this time, every thread's
stack goes to stderr (the lab's own hang report); the process keeps ending."""


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    # Ctrl-C always ends the lab, even when it was started from a shell or runner that
    # ignores SIGINT for its children (a background job, nohup): Python would then ignore it too.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return int(args.run(args))
    except (LabError, subprocess.SubprocessError) as error:
        return _fail(args, str(error))
    except Exception as error:  # the Docker engine's own refusals, in one line
        if type(error).__module__.startswith("docker."):
            return _fail(args, f"Docker refused: {str(error).splitlines()[0] if str(error) else type(error).__name__}")
        raise
    except KeyboardInterrupt:
        print("interrupted; everything the lab started is removed", file=sys.stderr)
        return 130


def _fail(args: argparse.Namespace, message: str) -> int:
    """One line on stderr (and a JSON object on stdout with --json); exit 2."""
    print(f"error: {message}", file=sys.stderr)
    if getattr(args, "json", False):
        from lab.report import error_json

        print(error_json(message))
    return 2


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    listing = commands.add_parser("list", help="the topology catalog, one line each")
    listing.add_argument("--versions", action="store_true",
                         help="instead: the exact nginx, Apache httpd, HAProxy and OpenSSL of each proxy release "
                              "(read from the built images; builds what is missing)")
    listing.set_defaults(run=_list)
    up = commands.add_parser("up", help="bring a topology up, check it, print commands; stay up until Ctrl-C")
    _topology_options(up, keep_default=True)
    up.set_defaults(run=_up)
    check = commands.add_parser("check", help="bring a topology up, check it, take it down")
    _topology_options(check, keep_default=False)
    check.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    check.add_argument("--junit", type=Path, metavar="PATH", help="also write JUnit XML there, one test case per check")
    check.add_argument("--all", action="store_true", help="check every catalog topology, one after another")
    check.add_argument("--shard", metavar="K/N", help="with --all: only shard K of N of the catalog (split by topology)")
    check.add_argument("--fix", action="store_true",
                       help="patch working copies of your --proxy-config/--properties for each finding with a file "
                            "remedy, reload, check again, and print the patch with what it proved")
    check.add_argument("--fix-out", type=Path, metavar="DIR",
                       help="with --fix: write the patched files (DIR/bundle) and the patches there")
    check.set_defaults(run=_check)
    reproduce = commands.add_parser(
        "reproduce", help="reproduce a customer's setup from their own files (a bundle directory or files)")
    reproduce.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                           help="the customer's files as sent: proxy config(s), bitbucket.properties, public "
                                "certificates; a directory is read recursively")
    reproduce.add_argument("--public-url", metavar="URL", help="where users arrive (default: inferred from the files)")
    reproduce.add_argument("--env", action="append", default=[], metavar="VAR=VALUE",
                           help="a value for ${VAR} in the customer's nginx or HAProxy files (wins over the bundle's .env)")
    reproduce.add_argument("--bitbucket-upstream", metavar="HOST:PORT",
                           help="which of the proxy's upstreams is Bitbucket, as the config writes it (when the files "
                                "leave it ambiguous)")
    reproduce.add_argument("--json", action="store_true", help="print one JSON document instead of the tables")
    reproduce.add_argument("--fix", action="store_true",
                           help="patch working copies of the customer's files for each finding with a file remedy, "
                                "reload, check again, and print the patch with what it proved")
    reproduce.add_argument("--fix-out", type=Path, metavar="DIR",
                           help="with --fix: write the patched bundle (DIR/bundle) and the patches (DIR/proxy.patch, "
                                "DIR/settings.patch) there")
    reproduce.add_argument("--keep", action=argparse.BooleanOptionalAction, default=True,
                           help="stay up until Ctrl-C after the checks (default; --no-keep ends at once)")
    reproduce.add_argument("--junit", type=Path, metavar="PATH", help="also write JUnit XML there, one test case per check")
    reproduce.add_argument("--save", metavar="NAME", help="keep the bundle and its verdicts as a regression case NAME")
    reproduce.add_argument("--cases-dir", type=Path, default=Path("tests/cases"), metavar="DIR",
                           help="where --save writes (default tests/cases)")
    reproduce.add_argument("--certs", type=Path, metavar="DIR", help="where the PKI goes (default certs/<name>)")
    _proxy_version_option(reproduce, default=None)
    _browser_and_report_options(reproduce)
    reproduce.set_defaults(run=_reproduce)
    down = commands.add_parser("down", help="remove what dead lab runs left behind (--all: everything the lab owns)")
    down.add_argument("--all", action="store_true", help="also remove live runs' containers and networks")
    down.set_defaults(run=_down)
    images = commands.add_parser("images", help="manage the lab's images")
    images.add_argument("action", choices=["build"], help="build: build what is missing (cached by content)")
    images.add_argument("names", nargs="*", metavar="NAME",
                        help="images to build (default: every image a topology needs; `browser` only when named)")
    images.set_defaults(run=_images)
    export = commands.add_parser("export", help="write a Docker Compose file per topology under compose/")
    export.add_argument("--topology", default=None, metavar="NAME", help="one catalog topology (default: every one)")
    export.add_argument("--out", type=Path, default=Path("compose"), help="output folder (default: compose/)")
    export.set_defaults(run=_export)
    return parser


def _proxy_version_option(parser: argparse.ArgumentParser, default: str | None = DEFAULT_RELEASE) -> None:
    parser.add_argument("--proxy-version", choices=RELEASES, default=default, metavar="RELEASE",
                        help=f"Debian release the proxy comes from: {', '.join(RELEASES)} (default "
                             + (f"{default})" if default else "the one closest to a version line in the bundle, "
                                f"else {DEFAULT_RELEASE})") + "; `list --versions` shows what each ships")


def _topology_options(parser: argparse.ArgumentParser, keep_default: bool) -> None:
    parser.add_argument("--topology", default=DEFAULT_TOPOLOGY, metavar="NAME",
                        help=f"catalog name (default {DEFAULT_TOPOLOGY}); see `list`")
    parser.add_argument("--topology-file", type=Path, metavar="FILE",
                        help="a topology TOML of your own instead of a catalog name (its PKI still goes to certs/)")
    parser.add_argument("--proxy-config", type=Path, metavar="FILE",
                        help="your proxy site file, used verbatim instead of the generated one")
    parser.add_argument("--properties", type=Path, metavar="FILE",
                        help="your bitbucket.properties, used verbatim for the stub")
    parser.add_argument("--public-url", metavar="URL", help="the URL users use (default: the topology's)")
    parser.add_argument("--tls-variant", default="good", choices=list(TLS_VARIANTS),
                        help="PKI variant: " + "; ".join(f"{k}: {v}" for k, v in TLS_VARIANTS.items()))
    parser.add_argument("--certs", type=Path, metavar="DIR", help="where the PKI goes (default certs/<topology>)")
    _proxy_version_option(parser)
    parser.add_argument("--http2", action="store_true",
                        help="the recommended TLS front door also offers HTTP/2 (your own files are never edited)")
    parser.add_argument("--keep", action=argparse.BooleanOptionalAction, default=keep_default,
                        help="stay up until Ctrl-C after the checks" + (" (default)" if keep_default else ""))
    _browser_and_report_options(parser)


def _browser_and_report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-browser", dest="browser", action="store_false",
                        help="skip the browser node (Chromium on the users' network): faster; browser.* checks "
                             "are then not applicable")
    parser.add_argument("--report", nargs="?", const=AUTO_REPORT, metavar="PATH",
                        help="write one self-contained HTML report there (picture, checks, evidence, screenshots, "
                             "config, versions) and JUnit XML beside it; without PATH, or by default when stdout "
                             "is a terminal: reports/<topology>-<time>.html")
    parser.add_argument("--force", action="store_true",
                        help="let --report/--junit overwrite an existing file the lab did not write")


def _list(args: argparse.Namespace) -> int:
    if args.versions:
        from lab.images.versions import release_versions

        from lab.proxies import KINDS

        columns = [*KINDS, "openssl"]  # "-": the release does not package that proxy
        print(f"{'release':<10} " + " ".join(f"{name:<20}" for name in columns).rstrip())
        for release, versions in release_versions(Progress()).items():
            print(f"{release:<10} " + " ".join(f"{versions.get(name, '-'):<20}" for name in columns).rstrip())
        return 0
    for name in catalog():
        topology = load_topology(name)
        print(f"{name:<24} {topology.public_url:<40} {topology.summary}")
    return 0


def _options(args: argparse.Namespace) -> LabOptions:
    from lab.provision import DropIns
    from lab.runtime import LabOptions

    return LabOptions(DropIns(args.proxy_config, args.properties), args.tls_variant, args.certs,
                      proxy_release=args.proxy_version, http2=args.http2, browser=args.browser)


def _topology(args: argparse.Namespace) -> Topology:
    """The topology the options name, reached at ``--public-url`` when given."""
    topology = load_topology_file(args.topology_file) if args.topology_file else load_topology(args.topology)
    return topology.with_public_url(args.public_url) if args.public_url else topology


def _run_topology(args: argparse.Namespace, as_json: bool) -> int:
    topology = _topology(args)
    progress = Progress(quiet=as_json)
    try:
        return _check_and_keep(args, topology, progress, as_json)
    finally:
        faulthandler.cancel_dump_traceback_later()  # it ended: no hang report


def _check_and_keep(args: argparse.Namespace, topology: Topology, progress: Progress, as_json: bool) -> int:
    from lab.commands import user_commands
    from lab.images.versions import running_proxy
    from lab.report import results_json, results_table, topology_picture
    from lab.runtime import up
    from lab.targets import check_running

    with _drop_in_setup(args, topology) as drop_in_setup, up(topology, _options(args), progress) as running, \
            _fix_folder(args) as work:
        progress.step("running checks")
        results = check_running(running, on_start=lambda id_: progress.detail(f"  checking {id_}"))
        progress.done()
        fix = _fix_drop_ins(running, drop_in_setup, results, work, args, progress) if drop_in_setup else None
        _write_junit(args, [(topology.name, running.public_url, results)])
        report = _write_report(args, running, results, progress, fix=fix)
        if as_json:
            extra: dict[str, object] = {"proxy": running_proxy(running)}
            if fix is not None:
                extra["fix"] = fix.to_json()
            print(results_json(topology.name, running.public_url, results, extra))
        else:
            print(results_table(results, timings=sys.stdout.isatty()))
            print()
            print(topology_picture(topology, running.public_url, results))
            if proxy := running_proxy(running)["version"]:
                print(f"proxy: {proxy} (Debian {running.options.proxy_release})")
            if fix is not None:
                from lab.fix.report import fix_text

                print()
                print(fix_text(fix, args.fix_out))
            if args.keep:  # the commands only work while the topology is up
                print()
                print(user_commands(running))
            if report:
                print(f"\nreport: {report}")
        if args.keep:
            progress.step(f"\n{topology.name} stays up; press Ctrl-C to take it down")
            if not keep_watching(running):
                return 1
    return 1 if any(r.outcome.failed for r in results) else 0


@contextlib.contextmanager
def _drop_in_setup(args: argparse.Namespace, topology: Topology) -> Iterator[CustomerSetup | None]:
    """The drop-ins read as a customer's bundle (their own file names), for ``check --fix``
    (None without it): LabError before anything starts when there is nothing to patch or the
    lab cannot read it. Their copies live as long as the run."""
    from lab.fix.dropins import drop_in_bundle
    from lab.provision import DropIns
    from lab.proxies import KINDS
    from lab.reproduce.bundle import PARSED_KINDS

    if not getattr(args, "fix", False):
        yield None
        return
    if not (args.proxy_config or args.properties):
        raise LabError("--fix patches the files you pass: give --proxy-config and/or --properties")
    kind = topology.proxy.kind if topology.proxy else None
    fixable = [name for name in PARSED_KINDS if not (name in KINDS and KINDS[name].translated)]
    if args.proxy_config and kind not in fixable:
        raise LabError(f"--fix reads the files of {', '.join(fixable)}; {topology.name} runs {kind}")
    with tempfile.TemporaryDirectory(prefix="lab-fix-in-") as folder:
        yield drop_in_bundle(DropIns(args.proxy_config, args.properties), Path(folder))


def _fix_drop_ins(running: RunningTopology, setup: CustomerSetup, results: list[CheckResult], work: Path,
                  args: argparse.Namespace, progress: Progress) -> FixResult:
    """Patch the drop-ins' copies, reload the running topology with them, check again."""
    from lab.fix.dropins import fix_drop_ins
    from lab.fix.report import write_fix_out
    from lab.targets import check_running

    fix = fix_drop_ins(running, setup, results, work, check_running, progress.step)
    write_fix_out(fix, args.fix_out)
    return fix


def _report_path(args: argparse.Namespace, topology: str) -> Path | None:
    """``--report PATH``; else ``reports/<topology>-<time>.html`` when stdout is a terminal."""
    from lab.html_report import default_report_path

    chosen = getattr(args, "report", None)
    if chosen and chosen != AUTO_REPORT:
        return Path(chosen)
    return default_report_path(topology) if chosen == AUTO_REPORT or sys.stdout.isatty() else None


def _write_report(args: argparse.Namespace, running: RunningTopology, results: list[CheckResult],
                  progress: Progress, mapping: Sequence[object] = (), fix: object = None) -> Path | None:
    """The HTML report (and JUnit XML beside it), when asked for or on a terminal."""
    path = _report_path(args, running.topology.name)
    if path is None:
        return None
    from lab.html_report import write_report
    from lab.images.versions import lab_versions, running_kinds

    try:
        versions = lab_versions(running.options.proxy_release, running_kinds(running))
    except LabError as error:
        versions = {"versions": f"not read: {error}"}
    with writing(path):  # a full disk or a lost permission at the end: one line, exit 2
        junit = write_report(path, running, results, mapping=mapping, versions=versions, fix=fix)  # type: ignore[arg-type]
    progress.step(f"wrote {path} (JUnit: {junit})")
    return path


def _write_junit(args: argparse.Namespace, suites: list[tuple[str, str, list[CheckResult]]]) -> None:
    if getattr(args, "junit", None):
        from lab.junit import write_junit

        with writing(args.junit):
            write_junit(args.junit, suites)


def keep_watching(running: RunningTopology, interval: float = 2.0) -> bool:
    """Wait until Ctrl-C (True) or until a container of the run dies (False, said on stderr)."""
    try:  # time.sleep, not Event.wait: a second Ctrl-C inside a Condition breaks its lock (Python 3.11)
        while True:
            time.sleep(interval)
            dead = running.exited_nodes()
            if dead:
                for line in dead:
                    print(f"error: {line}", file=sys.stderr)
                print(f"{running.topology.name} is no longer whole; taking it down", file=sys.stderr)
                return False
    except KeyboardInterrupt:
        # Taking the topology down is bounded; should it ever hang, say where, on stderr.
        faulthandler.dump_traceback_later(STOP_REPORT_AFTER_S, exit=False)
        return True


def _validate(args: argparse.Namespace) -> None:
    """Refuse bad output paths and public URLs before anything starts; the public URL's
    host goes on in ASCII (``bücher.example`` → ``xn--bcher-kva.example``)."""
    from lab.hostnames import ascii_public_url

    validate_output_paths(args)
    if args.public_url:
        args.public_url = ascii_public_url(args.public_url)


def _up(args: argparse.Namespace) -> int:
    _validate(args)
    return _run_topology(args, as_json=False)


def _check(args: argparse.Namespace) -> int:
    _validate(args)
    if args.shard and not args.all:
        raise LabError("--shard goes with --all")
    if args.fix_out and not args.fix:
        raise LabError("--fix-out goes with --fix")
    if args.fix and args.all:
        raise LabError("--fix patches one topology's drop-ins: leave out --all")
    if args.all:
        return _check_all(args)
    return _run_topology(args, as_json=args.json)


def _check_all(args: argparse.Namespace) -> int:
    """Every catalog topology (of this shard) in turn, with the options given."""
    import json

    from lab.findings import findings
    from lab.images.versions import running_proxy
    from lab.report import results_table
    from lab.runtime import up
    from lab.sharding import in_shard, parse_shard
    from lab.targets import check_running

    shard = parse_shard(args.shard) if args.shard else (1, 1)
    if args.proxy_config or args.topology_file or args.public_url:
        raise LabError("--all checks the catalog as it is: no --proxy-config, --topology-file or --public-url")
    if args.report:
        raise LabError("--report writes one topology's report: leave out --all, or use --junit")
    progress = Progress(quiet=args.json)
    suites, proxies = [], {}
    for name in (name for name in catalog() if in_shard(name, shard)):
        with up(load_topology(name), _options(args), progress) as running:
            results = check_running(running)
            suites.append((name, running.public_url, results))
            proxies[name] = running_proxy(running)
        if not args.json:
            print(f"\n{name} ({running.public_url})\n{results_table(results)}")
    _write_junit(args, suites)
    if args.json:
        print(json.dumps({"shard": f"{shard[0]}/{shard[1]}", "topologies": [
            {"topology": name, "public_url": url, "proxy": proxies[name],
             "findings": [finding.to_json() for finding in findings(results)],
             "checks": [r.to_json() for r in results]}
            for name, url, results in suites]}, indent=2, ensure_ascii=False))
    return 1 if any(r.outcome.failed for _, _, results in suites for r in results) else 0


def _reproduce(args: argparse.Namespace) -> int:
    from lab.commands import user_commands
    from lab.report import results_json, results_table, summary_line, topology_picture
    from lab.reproduce.cases import save_case
    from lab.reproduce.infer import parse_upstream_option
    from lab.fix.report import fix_text, write_fix_out
    from lab.fix.verify import verify_fix
    from lab.reproduce.session import mapping_table, reproduce, rerun_patched
    from lab.reproduce.variables import parse_env_option

    _validate(args)
    if args.public_url:
        check_public_url(args.public_url)
    progress = Progress(quiet=args.json)
    env = parse_env_option(args.env)
    if args.bitbucket_upstream:
        parse_upstream_option(args.bitbucket_upstream)
    if args.fix_out and not args.fix:
        raise LabError("--fix-out goes with --fix")
    with reproduce(args.paths, args.public_url, args.certs, progress, args.proxy_version, args.browser, env,
                   args.bitbucket_upstream) as run, _fix_folder(args) as work:
        fix = verify_fix(run.reproduction.setup, run.results, work, lambda folder: rerun_patched(run, folder, progress)) \
            if args.fix else None
        if fix is not None:
            write_fix_out(fix, args.fix_out)
        topology, results = run.running.topology, run.results
        _write_junit(args, [(topology.name, run.running.public_url, results)])
        report = _write_report(args, run.running, results, progress, run.mapping, fix)
        if args.json:
            extra: dict[str, object] = {"proxy": run.proxy_json, "mapping": [row.to_json() for row in run.mapping]}
            if fix is not None:
                extra["fix"] = fix.to_json()
            print(results_json(topology.name, run.running.public_url, results, extra))
        else:
            print(topology_picture(topology, run.running.public_url, results))
            print()
            print(mapping_table(run.mapping))
            print()
            print(results_table(results, timings=sys.stdout.isatty()))
            if fix is not None:
                print()
                print(fix_text(fix, args.fix_out))
            if args.keep:
                print()
                print(user_commands(run.running))
            if report:
                print(f"\nreport: {report}")
        if args.save:
            setup = run.reproduction.setup
            kind = run.proxy_json["kind"]
            case = save_case(args.cases_dir, args.save, setup.bundle, run.running.public_url,
                             str(kind) if kind else None, fix.before if fix else results)
            progress.step(f"saved the bundle and its verdicts as {case} ({summary_line(results)})")
        if args.keep:
            progress.step(f"\n{topology.name} stays up; press Ctrl-C to take it down")
            if not keep_watching(run.running):
                return 1
    return 1 if any(r.outcome.failed for r in results) else 0


@contextlib.contextmanager
def _fix_folder(args: argparse.Namespace) -> Iterator[Path]:
    """Where --fix writes the patched bundle: --fix-out, else a temporary folder removed after."""
    out = getattr(args, "fix_out", None)  # `up` has no --fix
    if out:
        out.mkdir(parents=True, exist_ok=True)
        yield out
        return
    with tempfile.TemporaryDirectory(prefix="lab-fix-") as folder:
        yield Path(folder)


def _down(args: argparse.Namespace) -> int:
    from lab.runtime import remove_everything, sweep_dead_runs

    removed = remove_everything() if args.all else sweep_dead_runs()
    print(f"removed {removed} container(s) and network(s)")
    if args.all:
        from lab.sweep import STUCK_NETWORK, stuck_networks

        for name in stuck_networks():
            print(f"warning: network {name} is left: {STUCK_NETWORK}", file=sys.stderr)
    return 0


def _images(args: argparse.Namespace) -> int:
    from lab.images import ensure_images

    tags = ensure_images(tuple(args.names) or None, progress=Progress())
    for name, tag in tags.items():
        print(f"{name:<8} {tag}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from lab.export import export_compose

    names = [args.topology] if args.topology else catalog()
    for name in names:
        print(export_compose(load_topology(name), args.out))
    return 0
