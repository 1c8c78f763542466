#!/bin/sh
# Make the proxy host look like the one the config was written for, without touching the
# config: directories it expects (LAB_DIRS: logs, pid, chroot, sockets) and the accounts
# it runs as (LAB_ACCOUNTS, created as system accounts when Debian lacks them).
for dir in ${LAB_DIRS:-}; do
  mkdir -p "$dir"
done
for account in ${LAB_ACCOUNTS:-}; do
  getent group "$account" >/dev/null 2>&1 || groupadd --system "$account"
  id "$account" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin -g "$account" "$account"
done
