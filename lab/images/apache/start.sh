#!/bin/sh
# Wait until the upstream names resolve, validate, then run httpd in the foreground.
# A rejected config prints one "LAB-CONFIG-ERROR:" line and exits 2; the lab reports that line.
. /usr/local/bin/lab-wait-hosts
if ! out=$(apache2 -f /etc/lab/httpd.conf -t 2>&1); then
  echo "$out" >&2
  echo "LAB-CONFIG-ERROR: $(echo "$out" | grep -v '^Syntax OK' | head -n1)" >&2
  exit 2
fi
exec apache2 -f /etc/lab/httpd.conf -DFOREGROUND
