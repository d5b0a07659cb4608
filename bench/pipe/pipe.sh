#!/usr/bin/env bash
# Pipe throughput: SIZE bytes from a pipe (head -c SIZE /dev/zero) through a
# netcat-class client into `sockit serve discard`, sockit vs ncat vs socat,
# and through a relay (sockit relay vs socat) vs a direct connection.
# Paired rounds (every variant once per round, order rotated), median
# seconds and median per-round ratios. Loopback only.
#
#   bench/pipe/pipe.sh [ROUNDS] [SIZE]      (defaults: 7 rounds, 1G)
#   SOCKIT=/path/to/sockit bench/pipe/pipe.sh
#
# Needs ncat and socat (.ci/peers-netcat.sh) and python3 for the medians.
set -euo pipefail
ROUNDS=${1:-7}
SIZE=${2:-1G}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
if [[ -z "${SOCKIT:-}" ]]; then
	(cd "$root" && go build -o "$work/sockit" ./cmd/sockit)
	SOCKIT=$work/sockit
fi
command -v ncat >/dev/null && command -v socat >/dev/null || {
	echo "needs ncat and socat: run .ci/peers-netcat.sh" >&2
	exit 1
}

# start VAR CMD... : runs a server, waits for its "listening" line and sets
# VAR to its port. Not run in a subshell, so that cleanup knows its pid.
start() {
	local var=$1 out=$work/out.$RANDOM
	shift
	"$@" >"$out" 2>"$out.err" &
	pids+=($!)
	for _ in $(seq 200); do
		if grep -q '^listening ' "$out" 2>/dev/null; then
			printf -v "$var" '%s' "$(sed -n 's/^listening .*:\([0-9]*\)$/\1/p' "$out" | head -1)"
			return
		fi
		sleep 0.05
	done
	echo "server $* did not start" >&2
	cat "$out.err" >&2
	exit 1
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start DISCARD "$SOCKIT" serve discard -l tcp://127.0.0.1:0
start RELAY "$SOCKIT" relay tcp://127.0.0.1:0 "tcp://127.0.0.1:$DISCARD"
SOCAT_RELAY=$(free_port)
socat "TCP-LISTEN:$SOCAT_RELAY,bind=127.0.0.1,reuseaddr,fork" "TCP:127.0.0.1:$DISCARD" &
pids+=($!)
sleep 0.3

declare -A CMDS=(
	[sockit]="$SOCKIT connect tcp://127.0.0.1:$DISCARD"
	[ncat]="ncat --send-only 127.0.0.1 $DISCARD"
	[socat]="socat -u - TCP:127.0.0.1:$DISCARD"
	[sockit-relay]="$SOCKIT connect tcp://127.0.0.1:$RELAY"
	[socat-relay]="$SOCKIT connect tcp://127.0.0.1:$SOCAT_RELAY"
)
ORDER=(sockit ncat socat sockit-relay socat-relay)
results=$work/results
: >"$results"
echo "size=$SIZE rounds=$ROUNDS cpus=$(nproc) kernel=$(uname -r)" >&2
for r in $(seq "$ROUNDS"); do
	n=${#ORDER[@]}
	for i in $(seq 0 $((n - 1))); do
		name=${ORDER[$(((i + r) % n))]}
		t0=$(date +%s.%N)
		head -c "$SIZE" /dev/zero | ${CMDS[$name]}
		t1=$(date +%s.%N)
		echo "$r $name $(awk "BEGIN{print $t1 - $t0}")" >>"$results"
	done
	echo "round $r done" >&2
done

python3 - "$results" "$SIZE" <<'PY'
import sys, statistics, collections
path, size = sys.argv[1], sys.argv[2]
mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
nbytes = int(size[:-1]) * mult[size[-1]] if size[-1] in mult else int(size)
t = collections.defaultdict(dict)
for line in open(path):
    r, name, s = line.split()
    t[name][int(r)] = float(s)
rounds = sorted(t["sockit"])
def med(name): return statistics.median(t[name][r] for r in rounds)
def ratio(a, b): return statistics.median(t[a][r] / t[b][r] for r in rounds)
print("| variant | median s | MiB/s | median ratio (time / sockit direct) |")
print("|---|---:|---:|---:|")
for name in ["sockit", "ncat", "socat", "sockit-relay", "socat-relay"]:
    m = med(name)
    print(f"| {name} | {m:.3f} | {nbytes / m / (1 << 20):.0f} | {ratio(name, 'sockit'):.2f} |")
print()
print(f"rounds: {len(rounds)}; per-round times: " + "; ".join(f"{n}=" + ",".join(f"{t[n][r]:.2f}" for r in rounds) for n in t))
PY
