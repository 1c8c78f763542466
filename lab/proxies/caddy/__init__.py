"""Caddy from Debian (bookworm and later): the catalog's Caddyfile imports the site file,
which holds the global options block and the site blocks."""

from lab.fix.remedies import BODY_LIMIT, PROXY_TIMEOUT
from lab.proxies import GO_CUT_RESPONSES, ProxyKind, signature

KIND = ProxyKind(
    name="caddy",
    label="Caddy",
    program="caddy",
    base_config=("Caddyfile.conf", "/etc/lab/Caddyfile"),
    reload='caddy reload --config "${LAB_CADDY_CONF:-/etc/lab/Caddyfile}" --adapter caddyfile',
    reload_waits_for_workers=False,  # one process; `caddy reload` returns once the new config runs
    version_command=("caddy", "version"),
    version_pattern=r"v?(\d+\.\d+\.\d+)",
    version_prefix="Caddy/",
    debian_versions={"bookworm": "2.6.2", "trixie": "2.6.2", "forky": "2.11.4"},
    listener_words="site addresses (`example.com`, `:443`)",
    log_files=(),
    hints={
        "affinity": "Caddy: `lb_policy cookie` in the `reverse_proxy` block (or `lb_policy ip_hash`)",
        "failover": "Caddy: `health_uri /status` (active checks) or `fail_duration 30s` (passive) in the "
                    "`reverse_proxy` block, with `lb_try_duration 5s` so a request retries another node",
        "path-rewrite": "Caddy: no `uri` or `rewrite` before `reverse_proxy`, and `reverse_proxy` to an "
                        "upstream without a path",
        "context-path": "Caddy `handle {path}*` with `reverse_proxy` — not `handle_path`, which strips the "
                        "path before Bitbucket sees it",
        "spooling": "Caddy buffers a request body only with `request_buffers` (or `buffer_requests`) in "
                    "`reverse_proxy`: remove it for /scm/",
    },
    http2_edit=("protocols h1  #", "protocols h1 h2  #"),
    reader="lab.proxies.caddy.reader:parse_caddy",
    file_names=r"(?i)^caddyfile$|\.caddyfile$",
    file_signals=(r"^\s*reverse_proxy\s", r"^\s*(?:handle_path|file_server|encode|php_fastcgi)\b[^;]*$"),
    main_config_path="/etc/caddy/Caddyfile",
    config_env="LAB_CADDY_CONF",
    lab_files="lab.proxies.caddy.reader:storage_meta",
    editor="lab.proxies.caddy.edits:EDITOR",
    cuts_answered_responses=GO_CUT_RESPONSES.format(
        label="Caddy", avoid="Caddy 2.7 and later avoid it with `servers { enable_full_duplex }` in the global "
        "options (measured with Debian forky's 2.11.4: 0 cut in 600 clones, 2 in 600 without it); Debian "
        "bookworm's and trixie's 2.6.2 has no such option."),
    log_signatures=(
        signature("caddy body limit", r'"status":\s*413|http: request body too large',
                  "Caddy refused the request body: remove `request_body { max_size … }`, or make it `max_size 0` "
                  "(Caddy sets no limit of its own)", BODY_LIMIT.cause),
        signature("caddy read timeout", r'"status":\s*504|timeout awaiting response headers',
                  "Caddy stopped waiting for Bitbucket: raise or remove `transport http { response_header_timeout … "
                  "read_timeout … }` in `reverse_proxy` — Bitbucket may think for minutes before a big clone "
                  "streams", PROXY_TIMEOUT.cause),
    ),
)
