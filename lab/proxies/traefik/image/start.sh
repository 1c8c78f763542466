#!/bin/sh
# Prepare the host, wait until the upstream names resolve, then run Traefik, restarting it
# when the lab's reload asks (Traefik takes a static configuration only when it starts).
# Traefik has no config test: a static configuration it refuses ends it at once, and this
# script then prints one "LAB-CONFIG-ERROR:" line (Traefik's own words) and exits 2.
# "LAB-SERVER-STARTS:" comes first: Traefik opens no listener before it runs for real.
. /usr/local/bin/lab-prepare-host
. /usr/local/bin/lab-wait-hosts
site=${LAB_TRAEFIK_CONF:-/etc/lab/site.conf}
conf=/etc/lab/traefik.yml  # Traefik reads a file's format from its extension
echo "LAB-SERVER-STARTS: traefik starts now (it checks its configuration as it starts)"
while :; do
  cp "$site" "$conf"
  traefik --configFile="$conf" 2>/run/lab-traefik.err &
  echo $! > /run/lab-traefik.pid
  wait $!
  code=$?
  if [ -f /run/lab-traefik.restart ]; then  # the lab's reload: run again with the new files
    rm -f /run/lab-traefik.restart
    continue
  fi
  cat /run/lab-traefik.err >&2
  # {"level":"error","error":"command traefik error: field not found, node: frobnicate",…}
  reason=$(sed -n 's/.*"error":"\([^"]*\)".*/\1/p' /run/lab-traefik.err | head -n1)
  echo "LAB-CONFIG-ERROR: ${reason:-traefik exited with code $code}" >&2
  exit 2
done
