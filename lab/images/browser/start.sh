#!/bin/sh
# Start headless chromium with a throwaway profile whose NSS database trusts the lab root
# (/etc/lab/tls/ca.pem) and nothing else, its DevTools on 127.0.0.1:9222; socat relays
# 0.0.0.0:9223 to it, the port the lab publishes on the host's 127.0.0.1 only.
set -eu
export HOME=/tmp/lab-browser
mkdir -p "$HOME/.pki/nssdb" "$HOME/profile"
certutil -d "sql:$HOME/.pki/nssdb" -N --empty-password
if [ -s /etc/lab/tls/ca.pem ]; then
  certutil -d "sql:$HOME/.pki/nssdb" -A -t "C,," -n "Bitbucket Lab root" -i /etc/lab/tls/ca.pem
fi
socat TCP-LISTEN:9223,fork,reuseaddr TCP:127.0.0.1:9222 &
# Users' firewall: the browser resolves only the names users may reach on the web
# (LAB_BROWSER_NAMES, the gateway's allow-list); every other name is "not found".
rules="MAP * ~NOTFOUND"
for name in ${LAB_BROWSER_NAMES:-}; do rules="$rules, EXCLUDE $name"; done
# HttpsUpgrades off: a user's http:// URL is tried as typed, so http topologies are judged as they are.
exec chromium --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage \
  --remote-debugging-address=127.0.0.1 --remote-debugging-port=9222 \
  --user-data-dir="$HOME/profile" --no-first-run --no-default-browser-check \
  --disable-background-networking --disable-component-update --disable-sync \
  --disable-domain-reliability --disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable,MediaRouter \
  --password-store=basic --use-mock-keychain --window-size=1280,800 \
  --host-resolver-rules="$rules" about:blank
