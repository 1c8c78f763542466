"""Apache httpd from Debian (and a build laid out as the official ``httpd`` image): the
catalog's ``httpd.conf`` loads Debian's modules and includes the site file."""

from lab.fix.remedies import APACHE_VERIFY_DEPTH
from lab.proxies import TLS_TO_PLAIN_PORT, ProxyKind, signature

KIND = ProxyKind(
    name="apache",
    label="Apache httpd",
    program="apache2",
    base_config=("httpd.conf", "/etc/lab/httpd.conf"),
    # LAB_APACHE_PRELOAD: a directive the start script reads before the config (an MPM the
    # official image of its day built in); the reload must read it too.
    reload='. /etc/apache2/envvars && set -- && if [ -n "${LAB_APACHE_PRELOAD:-}" ]; then '
           'set -- -C "$LAB_APACHE_PRELOAD"; fi && apache2 "$@" -f "${LAB_APACHE_CONF:-/etc/lab/httpd.conf}" -t && '
           'apache2 "$@" -f "${LAB_APACHE_CONF:-/etc/lab/httpd.conf}" -k graceful',
    version_command=("apache2", "-v"),
    version_pattern=r"Apache/([\w.]+)",
    version_prefix="Apache/",
    debian_versions={"bullseye": "2.4.62", "bookworm": "2.4.68", "trixie": "2.4.71", "forky": "2.4.69"},
    listener_words="`Listen`/<VirtualHost>",
    log_files=("/var/log/apache2/*.log", "/var/log/httpd/*log", "/etc/httpd/logs/*log", "/usr/local/apache2/logs/*log"),
    hints={
        "affinity": "Apache: a `balancer://` with `route=` on each BalancerMember, `ProxySet stickysession=ROUTEID` "
                    "and `Header add Set-Cookie \"ROUTEID=.%{BALANCER_WORKER_ROUTE}e; path=/\" "
                    "env=BALANCER_ROUTE_CHANGED`",
        "failover": "Apache: mod_proxy_balancer takes a failed member out after a connection error (`retry=`); "
                    "add `hcmethod=GET hcuri=/status` (mod_proxy_hcheck) for active checks",
        "context-path": "Apache `ProxyPass {path} http://…{path}` (the same path on both sides)",
        "spooling": "Apache spools a chunked body when it must send Bitbucket a Content-Length: remove "
                    "`SetEnv proxy-sendcl` (and `force-proxy-request-1.0`, `proxy-nokeepalive` for HTTP/1.0)",
    },
    http2_edit=("    SSLEngine on\n", "    SSLEngine on\n    Protocols h2 http/1.1\n"),
    image_variants={"apache-official": "image-official"},
    reader="lab.proxies.apache.reader:parse_apache",
    config_words="an Apache config",
    file_signals=(
        r"(?i)^\s*</?(?:VirtualHost|IfModule|Directory|Location|LocationMatch|Proxy|Files)\b",
        r"(?i)^\s*(?:ProxyPass|ProxyPassReverse|ServerName|ServerAlias|LoadModule|SSLEngine"
        r"|SSLCertificateFile|DocumentRoot|ServerRoot|IncludeOptional|RewriteEngine"
        r"|ProxyPreserveHost|AllowEncodedSlashes)\s+[^;{}]*$",
    ),
    tie_rank=1,
    main_config_path="/etc/apache2/apache2.conf",
    host="lab.proxies.apache.host:ApacheHost",
    editor="lab.proxies.apache.edits:EDITOR",
    log_signatures=(
        signature("AH02040 chain too long", r"AH02040|Certificate Chain too long", APACHE_VERIFY_DEPTH.text,
                  APACHE_VERIFY_DEPTH.cause),
        signature("AH02411 peer name", r"AH02411|AH02005|Peer certificate CN mismatch|does not match the expected",
                  "Bitbucket's certificate does not name the host Apache checks (SSLProxyCheckPeerName; with "
                  "ProxyPreserveHost On Apache checks the public name): give Bitbucket's certificate that name, or use "
                  "`ProxyPreserveHost Off` with server.proxy-name, or `SSLProxyCheckPeerName off`"),
        TLS_TO_PLAIN_PORT,
        signature("TLS to port 7990", r"AH01084: pass request body failed to \S+:7990\b",
                  "Apache speaks TLS to port 7990, Bitbucket's plain HTTP connector: the upstream scheme does not match the "
                  "port (use http:// there, or point https:// at the TLS connector: server.port with server.ssl.*)"),
        signature("AH00898/AH01084 TLS to Bitbucket", r"AH00898|AH01084|AH01961|AH02039|Error during SSL Handshake with remote",
                  "Apache's TLS handshake with Bitbucket failed: it needs `SSLProxyEngine on`, a "
                  "`SSLProxyCACertificateFile` holding the CA that issued Bitbucket's certificate, and a certificate that "
                  "names the host Apache checks (SSLProxyCheckPeerName; with ProxyPreserveHost On that is the public name) — "
                  "`LogLevel ssl:info` makes Apache log which one failed"),
        signature("AH01102 status line", r"AH01102|error reading status line from remote server",
                  "Bitbucket closed the connection before answering: the upstream scheme does not match the port "
                  "(http:// to Tomcat's TLS port, or https:// to a plain one)"),
        signature("AH00957 connect", r"AH00957|AH01114|AH00959|failed to make connection to backend",
                  "Apache cannot connect to Bitbucket: check the host and port in ProxyPass"),
    ),
)
