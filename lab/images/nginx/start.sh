#!/bin/sh
# Wait until the upstream names resolve, validate, then run nginx in the foreground.
# A rejected config prints one "LAB-CONFIG-ERROR:" line and exits 2; the lab reports that line.
. /usr/local/bin/lab-wait-hosts
if ! out=$(nginx -t -c /etc/lab/nginx.conf 2>&1); then
  echo "$out" >&2
  echo "LAB-CONFIG-ERROR: $(echo "$out" | grep -m1 -E 'emerg|error|\[crit\]' || echo "$out" | head -n1)" >&2
  exit 2
fi
exec nginx -c /etc/lab/nginx.conf -g 'daemon off;'
