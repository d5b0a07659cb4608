#!/usr/bin/env bash
# Chat fan-out, side by side: ncat -l --chat against sockit serve chat
# (goroutine and epoll engines, and two epoll instances sharing rooms
# through nats-server with --hub), on the same loads in one run:
#   - 1,000 clients in one room, one sender at a fixed rate (-r, per room);
#   - the same as fast as the slowest receiver allows (a window of 64);
#   - 10 rooms × 100 clients as fast as allowed (ncat has no rooms: one
#     ncat per room).
# Reports delivered messages per second, delivery latency p50/p99/p99.9/max
# (sender's write → receiver's read), messages missing, receivers dropped,
# and server CPU per delivery (every server process: both instances and
# nats-server for --hub), with ratios against ncat.
#
#   bench/chat/chat.sh [--rounds 2] [--duration 5s] [--rate 100]
#
# Needs ncat and nats-server (.ci/peers-netcat.sh). Loopback only.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
rounds=2 duration=5s rate=100
while (($#)); do
	case $1 in
	--rounds) rounds=$2; shift 2 ;;
	--duration) duration=$2; shift 2 ;;
	--rate) rate=$2; shift 2 ;;
	*) echo "usage: $0 [--rounds N] [--duration D] [--rate MSGS_PER_S]" >&2; exit 2 ;;
	esac
done
nats=$(command -v nats-server || echo /usr/sbin/nats-server)
for p in ncat "$nats" python3; do
	command -v "$p" >/dev/null || { echo "needs $p (.ci/peers-netcat.sh)" >&2; exit 1; }
done
ulimit -n 8192
work=$(mktemp -d "${TMPDIR:-/tmp}/sockit-chat-bench.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
(cd "$root" && go build -o "$work/sockit" ./cmd/sockit && go build -o "$work/fanout" ./bench/chat/fanout)

port=$((20000 + RANDOM % 20000))
# nextport sets p to a port not used before in this run (not in a subshell,
# or the counter would never move).
nextport() { port=$((port + 1)); p=$port; }
waitport() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

# start VARIANT ROOMS: starts the servers, sets addrs (comma separated),
# spids (comma separated) and extra fanout flags.
start() {
	local variant=$1 rooms=$2 p
	addrs="" spids="" extra=""
	case $variant in
	ncat)
		local n=1
		[ "$rooms" -gt 1 ] && { n=$rooms; extra="-room-per-addr"; }
		for _ in $(seq "$n"); do
			nextport
			ncat -l --chat --max-conns 2000 127.0.0.1 "$p" </dev/null >/dev/null 2>&1 &
			pids+=($!); spids+="${spids:+,}$!"; addrs+="${addrs:+,}127.0.0.1:$p"
		done
		for a in ${addrs//,/ }; do waitport "${a##*:}"; done ;;
	goroutine | epoll)
		nextport
		"$work/sockit" serve chat -l "tcp://127.0.0.1:$p" --engine "$variant" --max-conns 0 --log-level warn >/dev/null 2>"$work/server.log" &
		pids+=($!); spids=$!; addrs="127.0.0.1:$p"
		waitport "$p" ;;
	hub)
		local np; nextport; np=$p
		"$nats" -a 127.0.0.1 -p "$np" >/dev/null 2>&1 &
		pids+=($!); spids=$!
		waitport "$np"
		for inst in a b; do
			nextport
			"$work/sockit" serve chat -l "tcp://127.0.0.1:$p" --engine epoll --max-conns 0 --log-level warn \
				--hub "nats://127.0.0.1:$np" --instance "$inst" >/dev/null 2>"$work/server-$inst.log" &
			pids+=($!); spids+=",$!"; addrs+="${addrs:+,}127.0.0.1:$p"
			waitport "$p"
		done ;;
	esac
}

stop() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	pids=()
}

out="$work/results.jsonl"
: >"$out"
for round in $(seq "$rounds"); do
	for scenario in "1000x1 rate" "1000x1 max" "100x10 max"; do
		read -r shape mode <<<"$scenario"
		clients=${shape%x*}; rooms=${shape#*x}; total=$((clients * rooms))
		r=0; [ "$mode" = rate ] && r=$rate
		for variant in ncat goroutine epoll hub; do
			start "$variant" "$rooms"
			label="$variant"
			if "$work/fanout" -addr "$addrs" -clients "$total" -rooms "$rooms" $extra -rate "$r" \
				-duration "$duration" -pid "$spids" -label "$label" -json >"$work/one.json" 2>"$work/fanout.err"; then
				python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["scenario"]=sys.argv[2]; d["round"]=int(sys.argv[3]); print(json.dumps(d))' \
					"$work/one.json" "$shape $mode" "$round" >>"$out"
			else
				echo "round $round $scenario $variant: $(cat "$work/fanout.err")" >&2
				for l in "$work"/server*.log; do [ -s "$l" ] && { echo "$l:"; tail -n 5 "$l"; } >&2; done
			fi
			stop
		done
	done
done

python3 - "$out" "$rate" <<'EOF'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1])]
rate = sys.argv[2]
scen = []
for r in rows:
    if r["scenario"] not in scen:
        scen.append(r["scenario"])
print(f"fixed rate: {rate} messages/s per room; medians over rounds; ratio = sockit / ncat (delivered/s), ncat / sockit (p99, CPU)")
print(f"{'scenario':<14} {'server':<10} {'delivered/s':>12} {'×ncat':>7} {'p50 µs':>9} {'p99 µs':>9} {'p99.9 µs':>9} {'max µs':>9} {'missing':>8} {'dropped':>7} {'CPU µs/dlv':>10}")
for s in scen:
    base = None
    for v in ["ncat", "goroutine", "epoll", "hub"]:
        rs = [r for r in rows if r["scenario"] == s and r["label"] == v]
        if not rs:
            continue
        med = lambda k: statistics.median(r[k] for r in rs)
        dps = med("delivered_per_second")
        if v == "ncat":
            base = dps
        ratio = f"{dps/base:.2f}" if base else "-"
        print(f"{s:<14} {v:<10} {dps:>12.0f} {ratio:>7} {med('p50_us'):>9.0f} {med('p99_us'):>9.0f} {med('p999_us'):>9.0f} {med('max_us'):>9.0f} {sum(r['missing'] for r in rs):>8} {sum(r['disconnected'] for r in rs):>7} {med('server_cpu_us_per_delivery'):>10.2f}")
EOF
