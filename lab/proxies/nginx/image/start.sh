#!/bin/sh
# Prepare the host, wait until the upstream names resolve, validate, then run nginx in the
# foreground. LAB_NGINX_CONF is the main config (the lab's wrapper, or a customer's own
# nginx.conf); LAB_NGINX_GLOBALS is passed with -g ("daemon off;" unless the config sets
# daemon itself, which nginx would refuse as a duplicate).
# A rejected config prints one "LAB-CONFIG-ERROR:" line and exits 2; the lab reports that line.
# A passed one prints "LAB-SERVER-STARTS:" first: the lab counts a listener only after it (the
# config test of nginx opens every listener for a moment, then closes them).
. /usr/local/bin/lab-prepare-host
. /usr/local/bin/lab-wait-hosts
conf=${LAB_NGINX_CONF:-/etc/lab/nginx.conf}
globals=${LAB_NGINX_GLOBALS-daemon off;}
if ! out=$(nginx -t -c "$conf" ${globals:+-g "$globals"} 2>&1); then
  echo "$out" >&2
  first=$(echo "$out" | grep -m1 -E '\[(emerg|alert|crit|error)\]' || echo "$out" | head -n1)
  # "2026/01/01 00:00:00 [emerg] 9#9: message" → "[emerg] message"
  echo "LAB-CONFIG-ERROR: $(echo "$first" | sed -E 's/^[0-9\/]+ [0-9:]+ //; s/ [0-9]+#[0-9]+: / /')" >&2
  exit 2
fi
echo "LAB-SERVER-STARTS: the config test passed (its listeners are closed); nginx starts now"
if [ -n "$globals" ]; then
  exec nginx -c "$conf" -g "$globals"
fi
nginx -c "$conf"  # the config daemonizes itself: stay as long as its master runs
sleep 1
while pidof nginx >/dev/null 2>&1; do sleep 1; done
