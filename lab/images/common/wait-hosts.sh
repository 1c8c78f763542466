#!/bin/sh
# Wait (at most ~10 s per name) until every name in LAB_WAIT_FOR_HOSTS resolves.
# Containers of a topology start in parallel; nginx refuses a config whose upstream
# name does not resolve yet, so the proxy waits for Docker's DNS to know the stub.
for host in ${LAB_WAIT_FOR_HOSTS:-}; do
  i=0
  until getent hosts "$host" >/dev/null 2>&1; do
    i=$((i + 1)); [ "$i" -gt 100 ] && break; sleep 0.1
  done
done
