#!/usr/bin/env bash
# compare.sh drives echo servers with `sockit bench` and prints, per cell, the
# server CPU time per message (utime+stime from /proc/PID/stat over the
# measuring window ÷ messages), messages/s, p99 latency, server RSS per idle
# connection and UDP loss, with ratios against the stdlib echo and the floor.
#
# Servers: stdlib (bench/peers/stdecho), netpoll, floor (single-loop epoll on
# x/sys/unix), Python asyncio/selectors/socketserver (the seeds'), and
# `sockit serve echo --engine goroutine|epoll`.
# Cells: pingpong (64 B × 1,000 conns), pipeline (100 conns × 16 in flight),
# idle (10,000 conns held), udp (64 B × 16 sockets × 32 in flight).
#
# Each round runs every server once per cell, in an order rotated every round
# (A B C …, B C … A, …), each in a fresh process; ratios are taken within a
# round and reported as median (min–max) over the rounds.
#
# usage: bench/compare.sh [--rounds N] [--duration D] [--warmup D]
#          [--cells pingpong,pipeline,idle,udp] [--servers a,b,...]
#          [--idle-conns N] [--engine goroutine|epoll] [--out DIR]
# The default is a quick look (1 round of 2 s); the documented numbers use
# --rounds 5 --duration 5s.
set -euo pipefail

ROUNDS=1
DURATION=2s
WARMUP=1s
CELLS=pingpong,pipeline,idle,udp
SERVERS=stdlib,netpoll,floor,asyncio,selectors,socketserver,sockit-goroutine,sockit-epoll
IDLE_CONNS=10000
GEN_ENGINE=epoll
OUT=""
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) ROUNDS=$2; shift 2 ;;
	--duration) DURATION=$2; shift 2 ;;
	--warmup) WARMUP=$2; shift 2 ;;
	--cells) CELLS=$2; shift 2 ;;
	--servers) SERVERS=$2; shift 2 ;;
	--idle-conns) IDLE_CONNS=$2; shift 2 ;;
	--engine) GEN_ENGINE=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	-h|--help) sed -n '2,24p' "$0"; exit 0 ;;
	*) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

. "$(dirname "$0")/lib.sh"
bench_workdir compare

echo "building sockit and the peers in $WORK ..." >&2
(cd "$ROOT" && go build -o "$WORK/sockit" ./cmd/sockit)
(cd "$ROOT/bench/peers" && go build -o "$WORK/" ./stdecho ./netpollecho ./floor ./echoclient)
PY=python3
PEERS="$ROOT/bench/peers"

# start_server NAME: starts it on 127.0.0.1 port 0 (TCP and UDP), sets
# SERVER_PID, TCP_EP and UDP_EP (empty when it has no UDP).
start_server() {
	local name=$1 log="$WORK/server.out"
	: >"$log"
	case $name in
	stdlib) "$WORK/stdecho" -l 127.0.0.1:0 -u 127.0.0.1:0 >"$log" 2>&1 & ;;
	netpoll) "$WORK/netpollecho" -l 127.0.0.1:0 >"$log" 2>&1 & ;;
	floor) "$WORK/floor" -l 127.0.0.1:0 -u 127.0.0.1:0 >"$log" 2>&1 & ;;
	asyncio) $PY "$PEERS/python/asyncio_echo.py" 127.0.0.1 0 udp >"$log" 2>&1 & ;;
	selectors) $PY "$PEERS/python/selectors_echo.py" 127.0.0.1 0 udp >"$log" 2>&1 & ;;
	socketserver) $PY "$PEERS/python/socketserver_echo.py" 127.0.0.1 0 udp >"$log" 2>&1 & ;;
	sockit-goroutine|sockit-epoll)
		"$WORK/sockit" serve echo --engine "${name#sockit-}" -l tcp://127.0.0.1:0 -l udp://127.0.0.1:0 >"$log" 2>&1 & ;;
	*) echo "compare.sh: unknown server $name" >&2; exit 2 ;;
	esac
	SERVER_PID=$!
	local i
	for i in $(seq 1 100); do
		TCP_EP=$(sed -n 's/^listening \(tcp:\/\/.*\)$/\1/p' "$log" | head -1)
		UDP_EP=$(sed -n 's/^listening \(udp:\/\/.*\)$/\1/p' "$log" | head -1)
		if [ -n "$TCP_EP" ]; then
			case $name in netpoll) return 0 ;; esac
			[ -n "$UDP_EP" ] && return 0
		fi
		sleep 0.1
	done
	echo "compare.sh: $name did not start:" >&2
	cat "$log" >&2
	exit 1
}

# measure ROUND CELL SERVER: one bench run, one line of results.tsv.
measure() {
	local round=$1 cell=$2 name=$3 ep args
	start_server "$name"
	case $cell in
	pingpong) ep=$TCP_EP; args=(--mode echo --conns 1000 --size 64) ;;
	pipeline) ep=$TCP_EP; args=(--mode pipeline --conns 100 --depth 16 --size 64) ;;
	idle) ep=$TCP_EP; args=(--mode idle --conns "$IDLE_CONNS" --source 127.0.0.2-127.0.0.9 --timeout 30s) ;;
	udp) ep=$UDP_EP; args=(--mode udp --conns 16 --depth 32 --size 64) ;;
	esac
	if [ -z "$ep" ]; then
		printf '%s\t%s\t%s\tNA\n' "$round" "$cell" "$name" >>"$RESULTS"
		stop_server
		return
	fi
	local json="$WORK/run.json"
	if ! "$WORK/sockit" bench "$ep" "${args[@]}" --engine "$GEN_ENGINE" --duration "$DURATION" \
		--warmup "$WARMUP" --pid "$SERVER_PID" --json >"$json" 2>"$WORK/bench.err"; then
		echo "compare.sh: bench against $name ($cell) failed:" >&2
		cat "$WORK/bench.err" >&2
		printf '%s\t%s\t%s\tNA\n' "$round" "$cell" "$name" >>"$RESULTS"
		stop_server
		return
	fi
	$PY - "$json" "$round" "$cell" "$name" >>"$RESULTS" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
t = d.get("target") or {}
lat = d.get("latency") or {}
udp = d.get("udp") or {}
print("\t".join(str(x) for x in [
    sys.argv[2], sys.argv[3], sys.argv[4],
    t.get("cpu_per_message_us", 0), d["messages_per_second"], lat.get("p99_us", 0),
    t.get("rss_per_conn", 0), (d.get("idle") or {}).get("held", 0), udp.get("loss", 0),
    d["error_total"], d["generator"].get("cpu_per_message_us", 0)]))
EOF
	stop_server
}

IFS=, read -r -a cells <<<"$CELLS"
IFS=, read -r -a servers <<<"$SERVERS"
n=${#servers[@]}
for round in $(seq 1 "$ROUNDS"); do
	for cell in "${cells[@]}"; do
		for k in $(seq 0 $((n - 1))); do
			name=${servers[$(((k + round - 1) % n))]}
			echo "round $round/$ROUNDS $cell $name" >&2
			measure "$round" "$cell" "$name"
		done
	done
done

echo "results: $RESULTS" >&2
$PY - "$RESULTS" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
cols = ["cpu", "mps", "p99", "rss", "held", "loss", "errors", "gen"]
data = {}  # (cell, server) -> {round: {...}}
order_cells, order_servers = [], []
for r in rows:
    rnd, cell, srv = r[0], r[1], r[2]
    if cell not in order_cells: order_cells.append(cell)
    if srv not in order_servers: order_servers.append(srv)
    if r[3] == "NA":
        continue
    data.setdefault((cell, srv), {})[rnd] = dict(zip(cols, map(float, r[3:])))

def med(xs):
    return statistics.median(xs) if xs else float("nan")

def ratio(cell, srv, ref, key):
    a, b = data.get((cell, srv), {}), data.get((cell, ref), {})
    rs = [a[k][key] / b[k][key] for k in a if k in b and b[k][key] > 0 and a[k][key] > 0]
    if not rs:
        return "-"
    return f"{med(rs):.2f} ({min(rs):.2f}–{max(rs):.2f})"

for cell in order_cells:
    key = "rss" if cell == "idle" else "cpu"
    print(f"\n## {cell}")
    if cell == "idle":
        print("| server | RSS/conn (B) | held | vs stdlib | vs floor | errors |")
        print("|---|---:|---:|---|---|---:|")
    else:
        extra = " loss |" if cell == "udp" else ""
        print(f"| server | CPU/msg (µs) | vs stdlib | vs floor | msgs/s | p99 (ms) |{extra} errors |")
        print("|---|---:|---|---|---:|---:|" + ("---:|" if cell == "udp" else "") + "---:|")
    for srv in order_servers:
        runs = data.get((cell, srv))
        if not runs:
            print(f"| {srv} | n/a |")
            continue
        v = lambda k: med([x[k] for x in runs.values()])
        if cell == "idle":
            print(f"| {srv} | {v('rss'):.0f} | {v('held'):.0f} | {ratio(cell, srv, 'stdlib', key)} | {ratio(cell, srv, 'floor', key)} | {v('errors'):.0f} |")
        else:
            loss = f" {100*v('loss'):.2f}% |" if cell == "udp" else ""
            print(f"| {srv} | {v('cpu'):.2f} | {ratio(cell, srv, 'stdlib', key)} | {ratio(cell, srv, 'floor', key)} | {v('mps'):.0f} | {v('p99')/1e3:.2f} |{loss} {v('errors'):.0f} |")
print(f"\n(median over {len(set(r[0] for r in rows))} round(s); ratios are per-round ratios, median (min–max))")
EOF
