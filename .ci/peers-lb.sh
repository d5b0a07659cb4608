#!/usr/bin/env bash
# Peers of the load-balancer tests (issue 14): HAProxy and nginx's stream
# module, which put PROXY protocol headers in front of sockit's servers.
# Idempotent and quiet: installs only what is missing.
set -euo pipefail
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
missing=()
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || missing+=(libnginx-mod-stream)
if [ ${#missing[@]} -gt 0 ]; then
  $sudo apt-get update -qq >/dev/null
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
