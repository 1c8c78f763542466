"""nginx from Debian: the catalog's ``nginx.conf`` includes the site file."""

import re

from lab.fix.remedies import BODY_LIMIT, PROXY_TIMEOUT
from lab.proxies import ProxyKind, Rejection, signature, TLS_TO_PLAIN_PORT

KIND = ProxyKind(
    name="nginx",
    label="nginx",
    program="nginx",
    base_config=("nginx.conf", "/etc/lab/nginx.conf"),
    reload='nginx -t -q -c "${LAB_NGINX_CONF:-/etc/lab/nginx.conf}" && '
           'nginx -c "${LAB_NGINX_CONF:-/etc/lab/nginx.conf}" -s reload',
    version_command=("nginx", "-v"),
    version_pattern=r"nginx/([\w.]+)",
    version_prefix="nginx/",
    debian_versions={"bullseye": "1.18.0", "bookworm": "1.22.1", "trixie": "1.26.3", "forky": "1.30.6"},
    listener_words="`listen`",
    log_files=("/var/log/nginx/*.log",),
    hints={
        "affinity": "nginx (open source): `ip_hash;` (or `hash $remote_addr consistent;`) in the upstream — "
                    "`hash $cookie_…` does not work: the login request has no session cookie yet",
        "failover": "nginx: `proxy_next_upstream error timeout http_502 http_503;` with `max_fails`/`fail_timeout` "
                    "on each `server`, and a `proxy_connect_timeout` of a few seconds",
        "context-path": "nginx `location {path}` + `proxy_pass http://bitbucket:7990;` without URI part",
        "spooling": "nginx needs `proxy_request_buffering off;` (on by default) and `proxy_http_version 1.1;` — git "
                    "sends pushes chunked, and nginx spools chunked bodies to an HTTP/1.0 upstream whatever the "
                    "buffering says",
    },
    http2_edit=("listen 443 ssl;", "listen 443 ssl http2;"),
    reader="lab.proxies.nginx.reader:parse_nginx",
    config_words="an nginx config",
    file_signals=(
        r"^\s*(?:(?:server|http|events|stream|types)\s*|(?:upstream|map|geo|location)\s[^{;]*)\{",
        r"^\s*(?:proxy_pass|listen|server_name|ssl_certificate(?:_key)?|proxy_set_header|server"
        r"|worker_processes|client_max_body_size|include|return|root|error_log|access_log)"
        r"\s[^;{}]*;",
    ),
    tie_rank=0,
    renders_templates=True,
    main_config_path="/etc/nginx/nginx.conf",
    host="lab.proxies.nginx.host:NginxHost",
    editor="lab.proxies.nginx.edits:EDITOR",
    openssl_command=("nginx", "-V"),
    openssl_pattern=r"(?:built|running) with OpenSSL ([\w.]+)",
    rejections=(
        Rejection(re.compile(r'unknown directive "http2"'), ("trixie", "forky"), "`http2 on;` exists from nginx 1.25.1"),
        Rejection(re.compile(r'unknown directive "quic_|invalid parameter "quic"'), ("trixie", "forky"),
                  "HTTP/3 (QUIC) directives exist from nginx 1.25"),
    ),
    log_signatures=(
        TLS_TO_PLAIN_PORT,
        signature("nginx body limit", r"client intended to send too large (chunked )?body",
                  "nginx refused the request body: `client_max_body_size 0;` (the default 1m stops git pushes)", BODY_LIMIT.cause),
        signature("nginx read timeout", r"upstream timed out .*while reading",
                  "nginx stopped waiting for Bitbucket: raise `proxy_read_timeout` (and `proxy_send_timeout`) well above "
                  "60 s — Bitbucket may think for minutes before a big clone streams", PROXY_TIMEOUT.cause),
        signature("nginx upstream TLS verify", r"upstream SSL certificate verify error|upstream SSL certificate does not match",
                  "nginx could not verify Bitbucket's certificate: `proxy_ssl_trusted_certificate` must hold the "
                  "issuing CA, `proxy_ssl_name` the name in Bitbucket's certificate, `proxy_ssl_verify_depth` its depth"),
        signature("nginx upstream handshake", r"SSL_do_handshake\(\) failed .*upstream",
                  "nginx's TLS handshake with Bitbucket failed: does the upstream port speak TLS (`proxy_pass https://`), "
                  "and `proxy_ssl_server_name on` when Bitbucket needs SNI?"),
        signature("nginx upstream closed", r"upstream prematurely closed connection",
                  "Bitbucket closed the connection: an http:// upstream to Tomcat's TLS port, or Bitbucket restarted"),
        signature("nginx connect refused", r"connect\(\) failed \(111: Connection refused\) while connecting to upstream",
                  "nothing listens where nginx's `proxy_pass` points: check the upstream host and port"),
    ),
)
