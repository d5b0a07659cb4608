#!/usr/bin/env bash
# Peers of the http tests and measurements (issue 6): wrk, hey and nginx
# from Debian for bench/http/compare.sh; curl for its checks. Idempotent and
# quiet: installs only what is missing. python3 (for the Python conformance
# tests) comes with the machine.
set -euo pipefail
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v hey >/dev/null 2>&1 || missing+=(hey)
command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >/dev/null
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
