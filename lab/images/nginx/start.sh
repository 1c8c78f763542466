#!/bin/sh
# Wait until the upstream names resolve, validate, then run nginx in the foreground.
# A rejected config prints one "LAB-CONFIG-ERROR:" line and exits 2; the lab reports that line.
. /usr/local/bin/lab-wait-hosts
if ! out=$(nginx -t -c /etc/lab/nginx.conf 2>&1); then
  echo "$out" >&2
  first=$(echo "$out" | grep -m1 -E '\[(emerg|alert|crit|error)\]' || echo "$out" | head -n1)
  # "2026/01/01 00:00:00 [emerg] 9#9: message" → "[emerg] message"
  echo "LAB-CONFIG-ERROR: $(echo "$first" | sed -E 's/^[0-9\/]+ [0-9:]+ //; s/ [0-9]+#[0-9]+: / /')" >&2
  exit 2
fi
exec nginx -c /etc/lab/nginx.conf -g 'daemon off;'
