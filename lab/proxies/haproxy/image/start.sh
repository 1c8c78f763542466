#!/bin/sh
# Prepare the host, wait until the upstream names resolve, validate, then run HAProxy in
# the foreground (-db wins over a `daemon` line in the config). LAB_HAPROXY_FILES lists the
# config files in order (the lab's base + site file, or a customer's own haproxy.cfg).
# A rejected config prints one "LAB-CONFIG-ERROR:" line and exits 2; the lab reports that line.
# A passed one prints "LAB-SERVER-STARTS:" first: the lab counts a listener only after it (the
# config test of nginx opens every listener for a moment, then closes them).
. /usr/local/bin/lab-prepare-host
. /usr/local/bin/lab-wait-hosts
files=""
for file in ${LAB_HAPROXY_FILES:-/etc/lab/haproxy.cfg /etc/lab/site.conf}; do
  files="$files -f $file"
done
if ! out=$(haproxy -c $files 2>&1); then
  echo "$out" >&2
  # "[ALERT]    (1) : config : parsing [...] : message" → "[ALERT] config : parsing [...] : message"
  first=$(echo "$out" | grep -m1 '\[ALERT\]' || echo "$out" | head -n1)
  echo "LAB-CONFIG-ERROR: $(echo "$first" | sed -E 's/^\[ALERT\] +\([0-9]+\) : /[ALERT] /')" >&2
  exit 2
fi
echo "LAB-SERVER-STARTS: the config test passed (its listeners are closed); HAProxy starts now"
exec haproxy -W -db $files
