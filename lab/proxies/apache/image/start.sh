#!/bin/sh
# Prepare the host, wait until the upstream names resolve, validate, then run httpd in the
# foreground. LAB_APACHE_CONF is the main config (the lab's wrapper by default); Debian's
# envvars (APACHE_LOG_DIR, APACHE_RUN_USER, ...) are always defined, as on a Debian host.
# A rejected config prints one "LAB-CONFIG-ERROR:" line and exits 2; the lab reports that line.
# A passed one prints "LAB-SERVER-STARTS:" first: the lab counts a listener only after it (the
# config test of nginx opens every listener for a moment, then closes them).
. /usr/local/bin/lab-prepare-host
. /usr/local/bin/lab-wait-hosts
. /etc/apache2/envvars
mkdir -p "$APACHE_RUN_DIR" "$APACHE_LOCK_DIR" "$APACHE_LOG_DIR"
conf=${LAB_APACHE_CONF:-/etc/lab/httpd.conf}
# Evidence: each error line names the request it is about (-C comes before the config files, so an
# ErrorLogFormat of the customer's own still wins).
rid_format='ErrorLogFormat "[%{u}t] [%-m:%l] [pid %P:tid %T] %7F: %E: [client\ %a] %M% ,\ referer\ %{Referer}i rid=%{X-Request-ID}i"'
# LAB_APACHE_PRELOAD: a directive read before the config too (an MPM for an official-image httpd.conf
# of the days that image built its MPM in); one more -C, or none.
set -- -C "$rid_format"
[ -n "${LAB_APACHE_PRELOAD:-}" ] && set -- -C "$LAB_APACHE_PRELOAD" "$@"
if ! out=$(apache2 "$@" -f "$conf" -t 2>&1); then
  echo "$out" >&2
  # "AH00526: Syntax error on line 3 of FILE:" is followed by the reason on the next line.
  echo "LAB-CONFIG-ERROR: $(echo "$out" | grep -v '^Syntax OK' | head -n2 | tr '\n' ' ')" >&2
  exit 2
fi
echo "LAB-SERVER-STARTS: the config test passed (its listeners are closed); httpd starts now"
exec apache2 "$@" -f "$conf" -DFOREGROUND
