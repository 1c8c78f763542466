"""HAProxy from Debian: the catalog's ``haproxy.cfg`` (global, defaults) is loaded before
the site file (``-f`` each)."""

import re

from lab.fix.remedies import PROXY_TIMEOUT
from lab.proxies import ProxyKind, Rejection, signature

KIND = ProxyKind(
    name="haproxy",
    label="HAProxy",
    program="haproxy",
    base_config=("haproxy.cfg", "/etc/lab/haproxy.cfg"),
    reload='files=""; for f in ${LAB_HAPROXY_FILES:-/etc/lab/haproxy.cfg /etc/lab/site.conf}; do '
           'files="$files -f $f"; done; haproxy -c -q $files && '
           'for p in $(pidof haproxy); do [ "$(cut -d" " -f4 /proc/$p/stat)" = 1 ] && kill -USR2 $p; done',
    version_command=("haproxy", "-v"),
    version_pattern=r"HA-?Proxy version ([\w.+~-]+)",
    version_prefix="HAProxy/",
    debian_versions={"bullseye": "2.2.9", "bookworm": "2.6.12", "trixie": "3.0.11", "forky": "3.2.26"},
    listener_words="`bind`",
    log_files=("/var/log/haproxy*.log",),
    hints={
        "affinity": "HAProxy: `cookie BBNODE insert indirect nocache` in the backend and `cookie <id>` on each "
                    "`server` line (or `balance source`)",
        "failover": "HAProxy: `option httpchk GET /status` in the backend and `check` on each `server` line, so a "
                    "dead node is taken out (plus `option redispatch`)",
        "context-path": "HAProxy `use_backend … if { path_beg {path} }`, no `replace-path`/`set-path`",
        "spooling": "HAProxy waits for the whole body with `option http-buffer-request`: remove it for /scm/",
    },
    http2_edit=("alpn http/1.1", "alpn h2,http/1.1"),
    rejections=(
        Rejection(re.compile(r"unknown keyword 'ssl-default-bind-curves'|unknown keyword 'curves'"),
                  ("bookworm", "trixie", "forky"), "curve selection needs HAProxy 2.4+"),
        Rejection(re.compile(r"'http-request return'|unknown keyword 'return'"), ("bookworm", "trixie", "forky"),
                  "`http-request return` needs HAProxy 2.2+ with its full syntax in 2.4+"),
    ),
    private_tls_files=("privkey.pem", "haproxy.pem"),
    reader="lab.proxies.haproxy.reader:parse_haproxy",
    config_words="an HAProxy config",
    file_signals=(
        r"^(?:global|defaults)(?:\s+\S+)?\s*$|^(?:frontend|backend|listen)\s+\S+\s*$",
        r"^\s+(?:bind|server|mode|default_backend|use_backend|option|timeout|maxconn|balance"
        r"|http-request|acl|chroot|stats)\s+[^;{}]*$",
    ),
    tie_rank=2,
    renders_templates=True,
    main_config_path="/etc/haproxy/haproxy.cfg",
    host="lab.proxies.haproxy.host:HaproxyHost",
    editor="lab.proxies.haproxy.edits:EDITOR",
    log_signatures=(
        signature("haproxy server timeout", r" s[HD]-- ",
                  "HAProxy's `timeout server` ended the request while Bitbucket was still working (termination state sH/sD): "
                  "raise it well above 60 s for big clones", PROXY_TIMEOUT.cause),
        signature("haproxy client timeout", r" c[DH]-- ",
                  "HAProxy's `timeout client` ended the transfer (termination state cD/cH): raise it for big pushes and clones",
                  PROXY_TIMEOUT.cause),
        signature("haproxy no server", r" SC-- | sC-- |<NOSRV>",
                  "HAProxy had no server to send the request to (down, or no use_backend matched): check the backend's "
                  "server line and health check, and the routing acl"),
    ),
)
