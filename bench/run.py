"""Benchmarks of the lab; prints figures, asserts nothing.

    python bench/run.py                 # everything but the cold image build
    python bench/run.py --cold          # also remove the lab's images and time a cold build
    python bench/run.py images|updown|matrix|stub|checks|reload|reproduce|browser|cli|suite

- images: `images build` cold (with --cold) and warm.
- updown: topology up and down through the lab runtime, next to raw docker-SDK calls
  that create and start the same containers in parallel (ratio = lab / raw).
- matrix: the seed matrix (tests/e2e/test_matrix.py) serially and with -n 2 --dist loadgroup, as a
          ratio to its floor (raw docker up + down of its topologies' containers, two at a time).
- suite:  the README's main pytest run (-n 2, loadgroup, not exclusive/versions) wall time.
- cli:    `check --topology T --no-keep` end to end, with and without the browser node,
          against raw docker's up + down of the same containers (ratio).
- stub:   the stub's memory idle and during a 50 MB git push (VmRSS, VmHWM).
- checks: per catalog topology, up time, check-phase wall time and the slowest check
  (the critical path), as the ratio check-phase / slowest check (1.0 = fully concurrent).
- reproduce: each customer case in tests/cases, bundle to verdicts, end to end.
- fix:    `reproduce --fix` on each case that fails: the first run (up + checks), a second
          check phase alone, and each round of the fix (reload in place + check phase) as a
          ratio to that check phase (one reload plus one check phase per round: ≈ 1.0–1.3).
- reload: a failure-catalog variant by reload in place vs by recreate.
- browser: the browser image's cold build (with --cold) and, warm, what the browser node
  adds to a topology's up time and check phase (median of --repeats; not in the default set).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lab.docker_env import LAB_LABEL, docker_client  # noqa: E402
from lab.images import IMAGE_NAMES, ensure_images  # noqa: E402
from lab.pki import make_pki  # noqa: E402
from lab.provision import DropIns, node_files  # noqa: E402
from lab.runtime import SHARED_REPOSITORIES, LabOptions, start, sweep_dead_runs  # noqa: E402
from lab.topology import catalog, load_topology  # noqa: E402


def bench_images(cold: bool) -> None:
    client = docker_client()
    if cold:
        for image in client.images.list(name="bitbucket-lab/*"):
            for tag in image.tags:
                client.images.remove(tag, force=True)
        started = time.monotonic()
        ensure_images()
        print(f"images cold build (base + {len(IMAGE_NAMES)} images):         {time.monotonic() - started:6.1f} s")
    ensure_images()
    started = time.monotonic()
    ensure_images()
    print(f"images warm `images build` (nothing to do):        {time.monotonic() - started:6.2f} s")


def bench_updown(name: str, repeats: int) -> None:
    topology = load_topology(name)
    ensure_images()
    ups, downs, raws, raw_downs = [], [], [], []
    with tempfile.TemporaryDirectory() as certs:
        for _ in range(repeats):
            started = time.monotonic()
            running = start(topology, LabOptions(certs_dir=Path(certs)))
            ups.append(time.monotonic() - started)
            started = time.monotonic()
            running.stop()
            downs.append(time.monotonic() - started)
            raw_up, raw_down = _raw_docker(topology, Path(certs))
            raws.append(raw_up)
            raw_downs.append(raw_down)
    up, raw = statistics.median(ups), statistics.median(raws)
    down, raw_down = statistics.median(downs), statistics.median(raw_downs)
    print(f"{name} up   (lab, to first answer through the gateway): {up:5.2f} s   "
          f"raw docker parallel create+start: {raw:5.2f} s   ratio {up / raw:4.2f}")
    print(f"{name} down (lab):                                      {down:5.2f} s   "
          f"raw docker parallel remove:       {raw_down:5.2f} s   ratio {down / raw_down:4.2f}")


def _raw_docker(topology, certs: Path, browser: bool = False) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """The same containers, networks and files through the docker SDK alone, no readiness wait;
    ``browser``: with the browser node (Chromium starting) and the PKI node, as a browser run has."""
    client, tags = docker_client(), ensure_images() | (ensure_images(("browser",)) if browser else {})
    tls = make_pki(certs, topology.tls_names)
    suffix = os.urandom(3).hex()
    started = time.monotonic()
    networks = {net: client.networks.create(f"bench-{suffix}-{net}", labels={LAB_LABEL: "1"})
                for net in topology.networks}
    shared = client.volumes.create(f"bench-{suffix}-shared", labels={LAB_LABEL: "1"}) if topology.clustered else None

    def run(node) -> object:  # type: ignore[no-untyped-def]
        primary = next(iter(node.networks))
        volumes = {shared.name: {"bind": SHARED_REPOSITORIES, "mode": "rw"}} if shared and node.kind == "stub" else None
        container = client.containers.create(tags[node.kind], init=True, labels={LAB_LABEL: "1"},
                                             network=networks[primary].name, volumes=volumes)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for item in node_files(topology, node, tls, DropIns()):
                info = tarfile.TarInfo(item.path.lstrip("/"))
                info.size, info.mode = len(item.data), item.mode
                tar.addfile(info, io.BytesIO(item.data))
        container.put_archive("/", buffer.getvalue())
        container.start()
        for net in list(node.networks)[1:]:
            networks[net].connect(container, aliases=list(node.networks[net]))
        return container

    gateways = [client.containers.run(tags["gateway"], detach=True, init=True, labels={LAB_LABEL: "1"},
                                      network=networks[net].name, ports={"1080/tcp": ("127.0.0.1", None)})
                for net in networks]
    if browser:  # on the users' network, as the lab puts them
        users = networks[next(iter(networks))].name
        gateways += [client.containers.run(tags["browser"], detach=True, init=True, labels={LAB_LABEL: "1"},
                                           network=users, ports={"9223/tcp": ("127.0.0.1", None)}),
                     client.containers.run(tags["gateway"], ["python3", "/usr/local/bin/lab-aia.py"], detach=True,
                                           init=True, labels={LAB_LABEL: "1"}, network=users)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(topology.nodes)) as pool:
        containers = list(pool.map(run, topology.nodes)) + gateways
    up = time.monotonic() - started
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(containers)) as pool:
        list(pool.map(lambda c: c.remove(force=True), containers))
    for network in networks.values():
        network.remove()
    if shared is not None:
        shared.remove(force=True)
    return up, time.monotonic() - started


def bench_matrix() -> None:
    """The seed matrix serially and under -n 2, against its floor: raw docker's up + down of
    every topology it starts (with the browser and PKI nodes it asks for), two at a time —
    what the matrix would take if the lab waited for nothing and checked nothing."""
    floor = _matrix_floor()
    print(f"seed matrix floor (raw docker up+down of its {len(catalog())} topologies with browser, "
          f"two at a time): {floor:6.1f} s")
    for label, extra in (("serial", []), ("-n 2  ", ["-n", "2", "--dist", "loadgroup"])):
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                 "tests/e2e/test_matrix.py", *extra], cwd=REPO, capture_output=True, text=True)
        took = time.monotonic() - started
        summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-200:]
        print(f"seed matrix {label}: {took:6.1f} s   ratio to the floor {took / floor:4.1f}   ({summary})")


def _matrix_floor() -> float:
    with tempfile.TemporaryDirectory() as certs:
        def up_and_down(name: str) -> None:
            _raw_docker(load_topology(name), Path(certs) / name, browser=True)

        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(up_and_down, catalog()))
        return time.monotonic() - started


def bench_suite() -> None:
    """The README's main test run (nox -s tests' first pytest), from this checkout."""
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "--dist",
                             "loadgroup", "-m", "not exclusive and not versions"], cwd=REPO, capture_output=True,
                            text=True)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-200:]
    print(f"suite (-n 2, not exclusive/versions): {time.monotonic() - started:6.1f} s   ({summary})")


def bench_cli(name: str, repeats: int) -> None:
    """``python -m lab check --topology NAME --no-keep`` end to end (process start to exit),
    without and with the browser node, next to raw docker's up + down of the same containers."""
    with tempfile.TemporaryDirectory() as certs:
        floor = statistics.median(sum(_raw_docker(load_topology(name), Path(certs))) for _ in range(repeats))
        for label, extra in (("--no-browser", ["--no-browser"]), ("browser     ", [])):
            runs = []
            for _ in range(repeats):
                started = time.monotonic()
                subprocess.run([sys.executable, "-m", "lab", "check", "--topology", name, "--no-keep", "--certs",
                                certs, *extra], cwd=REPO, capture_output=True, timeout=300)
                runs.append(time.monotonic() - started)
            took = statistics.median(runs)
            print(f"check {name} {label} end to end: {took:5.2f} s   raw docker up+down: {floor:5.2f} s   "
                  f"ratio {took / floor:4.2f}")


def bench_checks() -> None:
    from lab.topology import catalog

    ensure_images()
    for name in catalog():
        with tempfile.TemporaryDirectory() as certs:
            up, phase, results = _up_and_check(name, LabOptions(certs_dir=Path(certs)))
        slowest = max(results, key=lambda r: r.seconds)
        print(f"{name:<26} up {up:4.1f} s  checks {phase:4.1f} s  slowest {slowest.id} {slowest.seconds:4.1f} s  "
              f"ratio {phase / max(slowest.seconds, 0.01):4.2f}")


def bench_browser(name: str, repeats: int, cold: bool) -> None:
    """The browser node: its image's cold build (``--cold``), and what it adds to a
    topology warm — up (it starts in parallel) and the checks (it runs beside the others)."""
    client = docker_client()
    if cold:
        for image in client.images.list(name="bitbucket-lab/browser"):
            for tag in image.tags:
                client.images.remove(tag, force=True)
        started = time.monotonic()
        ensure_images(("browser",))
        print(f"browser image cold build (apt-get chromium):        {time.monotonic() - started:6.1f} s")
    ensure_images(("browser",))
    timings: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as certs:
        for _ in range(repeats):
            for browser in (False, True):
                up, phase, results = _up_and_check(name, LabOptions(certs_dir=Path(certs), browser=browser))
                assert not [r.id for r in results if r.ok is False], results
                timings[browser].append((up, phase))
    for index, label in ((0, "up    "), (1, "checks")):
        without = statistics.median(t[index] for t in timings[False])
        with_browser = statistics.median(t[index] for t in timings[True])
        print(f"{name} {label} without browser {without:5.2f} s   with browser {with_browser:5.2f} s   "
              f"adds {with_browser - without:+5.2f} s")


def _up_and_check(name: str, options: LabOptions) -> tuple[float, float, list]:  # type: ignore[type-arg]
    """(seconds to up, seconds of the check phase, results) of one run of topology ``name``."""
    from lab.targets import check_running

    started = time.monotonic()
    running = start(load_topology(name), options)
    up = time.monotonic() - started
    try:
        started = time.monotonic()
        results = check_running(running)
        return up, time.monotonic() - started, results
    finally:
        running.stop()


def bench_reload(repeats: int) -> None:
    """A failure-catalog variant (nginx without client_max_body_size) applied by reload in
    place, next to the same variant by recreate (up + down)."""
    from lab.reload import reload_in_place
    from lab.topology import PROXIES_DIR

    with tempfile.TemporaryDirectory() as work:
        site = Path(work) / "site.conf"
        site.write_text((PROXIES_DIR / "nginx/https.conf").read_text().replace("client_max_body_size 0;", ""))
        recreates, reloads = [], []
        for _ in range(repeats):
            started = time.monotonic()
            start(load_topology("nginx-https"), LabOptions(DropIns(site, None), certs_dir=Path(work))).stop()
            recreates.append(time.monotonic() - started)
        running = start(load_topology("nginx-https"), LabOptions(certs_dir=Path(work)))
        try:
            for index in range(repeats):
                drop_ins = DropIns(site, None) if index % 2 == 0 else DropIns()
                started = time.monotonic()
                reload_in_place(running, LabOptions(drop_ins, certs_dir=Path(work)))
                reloads.append(time.monotonic() - started)
        finally:
            running.stop()
    recreate, reload = statistics.median(recreates), statistics.median(reloads)
    print(f"variant by recreate (up + down): {recreate:5.2f} s   by reload in place: {reload:5.2f} s   "
          f"ratio {reload / recreate:4.2f}")


def bench_reproduce() -> None:
    from lab.reproduce.session import reproduce

    for case in sorted((REPO / "tests" / "cases").glob("*/case.toml")):
        with tempfile.TemporaryDirectory() as certs:
            started = time.monotonic()
            with reproduce([case.parent / "bundle"], certs_dir=Path(certs)) as run:
                failed = sum(1 for r in run.results if r.ok is False)
            print(f"reproduce {case.parent.name:<46} {time.monotonic() - started:5.1f} s ({failed} failed)")


def bench_fix() -> None:
    from lab.targets import check_running
    from lab.fix.verify import verify_fix
    from lab.reproduce.session import reproduce, rerun_patched

    for case in sorted((REPO / "tests" / "cases").glob("*/case.toml")):
        if "refused" in case.read_text() or '"fail"' not in case.read_text():
            continue
        with tempfile.TemporaryDirectory() as certs, tempfile.TemporaryDirectory() as work:
            started = time.monotonic()
            with reproduce([case.parent / "bundle"], certs_dir=Path(certs), browser=False) as run:
                first = time.monotonic() - started
                checked = time.monotonic()
                check_running(run.running)
                check_phase = time.monotonic() - checked
                rounds: list[float] = []

                def timed_rerun(folder: Path, run=run, rounds=rounds) -> list:
                    began = time.monotonic()
                    results = rerun_patched(run, folder)
                    rounds.append(time.monotonic() - began)
                    return results

                fix = verify_fix(run.reproduction.setup, run.results, Path(work), timed_rerun)
        per_round = ", ".join(f"{r / check_phase:4.2f}" for r in rounds) or "-"
        print(f"fix {case.parent.name:<52} first run {first:5.1f} s, check phase {check_phase:5.1f} s; "
              f"{fix.rounds} round(s) ×check phase: {per_round}; {'verified' if fix.verified else 'not verified'}")


def bench_stub() -> None:
    with tempfile.TemporaryDirectory() as home:
        (Path(home) / "shared").mkdir()
        (Path(home) / "shared" / "bitbucket.properties").write_text("server.port=0\n")
        process = subprocess.Popen([sys.executable, "-m", "lab.stub", "--home", home], cwd=REPO,
                                   stdout=subprocess.PIPE, text=True)
        port = int(process.stdout.readline().split(":")[-1].split()[0])
        time.sleep(0.5)
        idle = _memory(process.pid)
        peak = {"rss": 0}
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak["rss"] = max(peak["rss"], _memory(process.pid)["VmRSS"])
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        elapsed = _push_50mb(port, Path(home))
        done.set()
        sampler.join()
        after = _memory(process.pid)
        process.terminate()
        process.wait()
    print(f"stub idle: VmRSS {idle['VmRSS'] / 1024:5.1f} MiB")
    print(f"stub during a 50 MB push ({elapsed:4.1f} s): peak VmRSS {peak['rss'] / 1024:5.1f} MiB, "
          f"VmHWM {after['VmHWM'] / 1024:5.1f} MiB (git http-backend runs in its own process)")


def _push_50mb(port: int, home: Path) -> float:
    from lab.client import Vantage

    direct = Vantage(None, None)
    work = home / "clone"
    url = f"http://admin:admin@127.0.0.1:{port}/scm/LAB/repo.git"
    direct.git(["clone", "-q", url, str(work)])
    (work / "big.bin").write_bytes(os.urandom(50 * 1024 * 1024))
    direct.git(["add", "big.bin"], cwd=work)
    direct.git(["commit", "-q", "-m", "big"], cwd=work)
    started = time.monotonic()
    pushed = direct.git(["push", "-q", "origin", "HEAD:refs/heads/big"], cwd=work)
    assert pushed.returncode == 0, pushed.stderr
    return time.monotonic() - started


def _memory(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*",
                        default=["images", "updown", "reload", "checks", "cli", "matrix", "stub", "suite"])
    parser.add_argument("--cold", action="store_true", help="remove the lab's images first and time a cold build")
    parser.add_argument("--topology", default="nginx-https,haproxy-https-cluster",
                        help="comma-separated topologies for updown (a single node and a Data Center cluster)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    sweep_dead_runs()
    for part in args.parts:
        {"images": lambda: bench_images(args.cold), "updown": lambda: [bench_updown(name, args.repeats) for name in args.topology.split(",")],
         "matrix": bench_matrix, "stub": bench_stub, "checks": bench_checks, "suite": bench_suite,
         "cli": lambda: [bench_cli(name, args.repeats) for name in args.topology.split(",")[:1]],
         "reproduce": bench_reproduce, "fix": bench_fix, "reload": lambda: bench_reload(args.repeats),
         "browser": lambda: [bench_browser(name, args.repeats, args.cold and index == 0)
                             for index, name in enumerate(args.topology.split(","))]}[part]()


if __name__ == "__main__":
    main()
