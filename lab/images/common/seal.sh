#!/bin/sh
# The lab's entrypoint. With NET_ADMIN, it seals the container's network namespace, then
# runs the container's command without NET_ADMIN (setpriv drops it from the bounding set,
# so the service and everything it starts never hold it):
# - no default route (Docker adds one even on internal networks);
# - no connection to the Docker host: Docker leaves the host's INPUT open and the host's
#   address on each bridge (the network's gateway) is on-link, so a "prohibit" rule
#   closes each one: LAB_SEAL_HOST_ADDRESSES (the runtime's IPAM gateways), the old default
#   route's gateway and the first address of every on-link subnet (where Docker puts the
#   bridge's). Other host addresses (docker0, the LAN) have no route without a default one.
#   Ports Docker publishes (LAB_SEAL_ANSWER_PORTS) still answer Docker's port proxy, which
#   connects from the host's address on the publishing bridge: TCP from those ports only;
# - no IPv6 at all: the lab uses none, and the host's link-local addresses are on-link.
# Fails closed: a seal it cannot verify ends the container with a LAB-SEAL-ERROR line.
# A container that shares another's network namespace finds it sealed already.
seal_error() {
  echo "LAB-SEAL-ERROR: $*" >&2
  exit 3
}

to_number() {
  IFS=. read -r a b c d <<EOF
$1
EOF
  echo $(((a << 24) | (b << 16) | (c << 8) | d))
}

to_address() {
  echo "$((($1 >> 24) & 255)).$((($1 >> 16) & 255)).$((($1 >> 8) & 255)).$(($1 & 255))"
}

first_hosts() {
  ip -o -4 addr show scope global | while read -r _ _ _ cidr _; do
    length=${cidr#*/}
    mask=$(((0xffffffff << (32 - length)) & 0xffffffff))
    to_address $((($(to_number "${cidr%/*}") & mask) + 1))
  done
}

old_gateway=$(ip -4 route show default | { read -r _ _ via _ && echo "$via"; })
ip route del default 2>/dev/null
if ip route show default | grep -q .; then
  seal_error "could not remove the default route (the container needs NET_ADMIN)"
fi

host_addresses=$(printf '%s\n' ${LAB_SEAL_HOST_ADDRESSES:-} $old_gateway $(first_hosts) | sort -u)
for address in $host_addresses; do
  for port in ${LAB_SEAL_ANSWER_PORTS:-}; do
    ip rule add pref 90 to "$address" ipproto 6 sport "$port" lookup main 2>/dev/null
  done
  ip rule add pref 100 to "$address" prohibit 2>/dev/null
done
for address in $host_addresses; do
  if ip route get "$address" >/dev/null 2>&1; then
    seal_error "could not close the way to the Docker host at $address (the container needs NET_ADMIN; the kernel, policy routing)"
  fi
  for port in ${LAB_SEAL_ANSWER_PORTS:-}; do
    if ! ip route get "$address" ipproto 6 sport "$port" >/dev/null 2>&1; then
      seal_error "port $port cannot answer Docker's port proxy at $address (the kernel needs ip rule sport, Linux 4.17+)"
    fi
  done
done

if [ -e /proc/net/if_inet6 ]; then
  ip -6 rule add pref 100 prohibit 2>/dev/null
  if ! ip -6 rule show | grep -q '^100:.*prohibit'; then
    seal_error "could not close IPv6 (the container needs NET_ADMIN)"
  fi
fi

exec setpriv --bounding-set -net_admin --inh-caps -net_admin --ambient-caps -net_admin -- "$@"
