#!/bin/sh
# Wait until the upstream names resolve, validate, then run HAProxy in the foreground.
# A rejected config prints one "LAB-CONFIG-ERROR:" line and exits 2; the lab reports that line.
. /usr/local/bin/lab-wait-hosts
if ! out=$(haproxy -c -f /etc/lab/haproxy.cfg -f /etc/lab/site.conf 2>&1); then
  echo "$out" >&2
  # "[ALERT]    (1) : config : parsing [...] : message" → "[ALERT] config : parsing [...] : message"
  first=$(echo "$out" | grep -m1 '\[ALERT\]' || echo "$out" | head -n1)
  echo "LAB-CONFIG-ERROR: $(echo "$first" | sed -E 's/^\[ALERT\] +\([0-9]+\) : /[ALERT] /')" >&2
  exit 2
fi
exec haproxy -W -db -f /etc/lab/haproxy.cfg -f /etc/lab/site.conf
