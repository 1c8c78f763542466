#!/bin/sh
# The lab's entrypoint: remove the default route Docker gives even on internal networks,
# then run the container's command without NET_ADMIN (setpriv drops it from the bounding
# set, so the service and everything it starts never hold it). A container that shares
# another's network namespace finds the route already gone.
ip route del default 2>/dev/null
if ip route show default | grep -q .; then
  echo "LAB-SEAL-ERROR: could not remove the default route (the container needs NET_ADMIN)" >&2
  exit 3
fi
exec setpriv --bounding-set -net_admin --inh-caps -net_admin --ambient-caps -net_admin -- "$@"
