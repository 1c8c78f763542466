#!/bin/sh
# Wait until the upstream names resolve, validate, then run httpd in the foreground.
# A rejected config prints one "LAB-CONFIG-ERROR:" line and exits 2; the lab reports that line.
. /usr/local/bin/lab-wait-hosts
if ! out=$(apache2 -f /etc/lab/httpd.conf -t 2>&1); then
  echo "$out" >&2
  # "AH00526: Syntax error on line 3 of FILE:" is followed by the reason on the next line.
  echo "LAB-CONFIG-ERROR: $(echo "$out" | grep -v '^Syntax OK' | head -n2 | tr '\n' ' ')" >&2
  exit 2
fi
exec apache2 -f /etc/lab/httpd.conf -DFOREGROUND
