#!/usr/bin/env bash
# Peers for the netcat/socat/TLS interop tests and the pipe benchmark
# (cmd/sockit/interop_test.go, bench/pipe/): ncat, socat, openssl; and
# nats-server for the chat hub test against the real binary
# (cmd/sockit/chat_cli_test.go).
# Idempotent and quiet; installs only what is missing.
set -euo pipefail
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
missing=()
command -v ncat >/dev/null 2>&1 || missing+=(ncat)
command -v socat >/dev/null 2>&1 || missing+=(socat)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)
if ((${#missing[@]})); then
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq >/dev/null
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
