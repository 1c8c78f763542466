#!/bin/sh
# Prepare the host, wait until the upstream names resolve, validate, then run Caddy in the
# foreground. LAB_CADDY_CONF is the main Caddyfile (the lab's, which imports the site file).
# A rejected config prints one "LAB-CONFIG-ERROR:" line and exits 2; the lab reports that line.
# A passed one prints "LAB-SERVER-STARTS:" first: the lab counts a listener only after it.
. /usr/local/bin/lab-prepare-host
. /usr/local/bin/lab-wait-hosts
conf=${LAB_CADDY_CONF:-/etc/lab/Caddyfile}
if ! out=$(caddy validate --config "$conf" --adapter caddyfile 2>&1); then
  echo "$out" >&2
  # Caddy logs JSON lines; the last "Error: …" line is the reason ("adapting config using caddyfile: …").
  echo "LAB-CONFIG-ERROR: $(echo "$out" | grep -E '^Error: ' | tail -n1 | sed -E 's/^Error: //')" >&2
  exit 2
fi
echo "LAB-SERVER-STARTS: the config test passed; caddy starts now"
exec caddy run --config "$conf" --adapter caddyfile
