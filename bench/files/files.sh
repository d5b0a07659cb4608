#!/usr/bin/env bash
# One large sparse file over loopback: sockit download against socat, ncat
# and iperf3 -Z, side by side (bench/files/compare.py), and this machine's
# single-core SHA-256 rate (verification can bound a download).
#
#   bench/files/files.sh [--rounds 5] [--size 4G] [--engine epoll]
#
# Needs socat, ncat (.ci/peers-netcat.sh) and iperf3 (apt-get install iperf3).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/sockit-files-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
for p in socat ncat iperf3 python3; do
	command -v "$p" >/dev/null || { echo "needs $p" >&2; exit 1; }
done
(cd "$root" && go build -o "$work/sockit" ./cmd/sockit)
echo "== SHA-256, one core (go test -bench SHA256 ./client)"
(cd "$root" && go test -run '^$' -bench 'SHA256' -benchtime 2s ./client | grep -E '^Benchmark')
echo
echo "== one file, side by side"
python3 "$here/compare.py" --sockit "$work/sockit" "$@"
