#!/usr/bin/env bash
# overhead.sh measures what --metrics and --proxy-protocol cost a server:
# `sockit serve echo` plain, with --metrics (scraped once a second while
# the load runs, as Prometheus would) and with --proxy-protocol (the bench
# client sends a PROXY v2 header on every connection, as a load balancer
# would), side by side, on both engines. Per cell and round each variant runs
# once in a fresh process, in an order rotated every round; ratios against
# "plain" are taken within a round and reported as median (min–max).
#
# Cells: pingpong (64 B × 1,000 conns), pipeline (100 conns × 16 in flight),
# churn (connect mode: a connection per message, where a header is read on
# every message).
#
# usage: bench/overhead.sh [--rounds N] [--duration D] [--warmup D]
#          [--cells pingpong,pipeline,churn] [--engines goroutine,epoll] [--out DIR]
# The documented numbers use --rounds 5 --duration 5s.
set -euo pipefail

ROUNDS=1
DURATION=2s
WARMUP=1s
CELLS=pingpong,pipeline,churn
ENGINES=goroutine,epoll
OUT=""
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) ROUNDS=$2; shift 2 ;;
	--duration) DURATION=$2; shift 2 ;;
	--warmup) WARMUP=$2; shift 2 ;;
	--cells) CELLS=$2; shift 2 ;;
	--engines) ENGINES=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	-h|--help) sed -n '2,16p' "$0"; exit 0 ;;
	*) echo "overhead.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

. "$(dirname "$0")/lib.sh"
bench_workdir overhead
echo "building sockit in $WORK ..." >&2
(cd "$ROOT" && go build -o "$WORK/sockit" ./cmd/sockit)
PY=python3
SCRAPER_PID=""

# start VARIANT ENGINE: starts the server, sets SERVER_PID and TCP_EP; for
# "metrics" it also starts a scraper (curl once a second) until stop.
start() {
	local variant=$1 engine=$2 log="$WORK/server.out" extra=()
	: >"$log"
	case $variant in
	plain) ;;
	metrics) extra=(--metrics 0) ;;
	proxy) extra=(--proxy-protocol --proxy-protocol-from 127.0.0.1) ;;
	esac
	"$WORK/sockit" serve echo --engine "$engine" -l tcp://127.0.0.1:0 "${extra[@]}" >"$log" 2>&1 &
	SERVER_PID=$!
	local i url=""
	for i in $(seq 1 100); do
		TCP_EP=$(sed -n 's/^listening \(tcp:\/\/.*\)$/\1/p' "$log" | head -1)
		url=$(sed -n 's/^metrics \(http:.*\)$/\1/p' "$log" | head -1)
		[ -n "$TCP_EP" ] && break
		sleep 0.1
	done
	if [ -z "$TCP_EP" ]; then
		echo "overhead.sh: the server did not start:" >&2
		cat "$log" >&2
		exit 1
	fi
	if [ "$variant" = metrics ]; then
		(while curl -s -o /dev/null --max-time 2 "$url"; do sleep 1; done) &
		SCRAPER_PID=$!
	fi
}

stop() {
	if [ -n "$SCRAPER_PID" ]; then kill "$SCRAPER_PID" 2>/dev/null || true; wait "$SCRAPER_PID" 2>/dev/null || true; SCRAPER_PID=""; fi
	stop_server
}

measure() {
	local round=$1 cell=$2 engine=$3 variant=$4 args=()
	start "$variant" "$engine"
	case $cell in
	pingpong) args=(--mode echo --conns 1000 --size 64) ;;
	pipeline) args=(--mode pipeline --conns 100 --depth 16 --size 64) ;;
	churn) args=(--mode connect --conns 50 --size 64) ;;
	esac
	[ "$variant" = proxy ] && args+=(--send-proxy v2)
	local json="$WORK/run.json"
	if ! "$WORK/sockit" bench "$TCP_EP" "${args[@]}" --duration "$DURATION" --warmup "$WARMUP" \
		--pid "$SERVER_PID" --json >"$json" 2>"$WORK/bench.err"; then
		echo "overhead.sh: bench ($cell $engine $variant) failed:" >&2
		cat "$WORK/bench.err" >&2
		stop
		exit 1
	fi
	$PY - "$json" "$round" "$cell" "$engine" "$variant" >>"$RESULTS" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
t = d.get("target") or {}
lat = d.get("latency") or {}
print("\t".join(str(x) for x in [*sys.argv[2:6],
    t.get("cpu_per_message_us", 0), d["messages_per_second"],
    lat.get("p99_us", 0), lat.get("p99_9_us", 0), lat.get("max_us", 0), d["error_total"]]))
EOF
	stop
}

IFS=, read -r -a cells <<<"$CELLS"
IFS=, read -r -a engines <<<"$ENGINES"
variants=(plain metrics proxy)
for round in $(seq 1 "$ROUNDS"); do
	for cell in "${cells[@]}"; do
		for engine in "${engines[@]}"; do
			for k in 0 1 2; do
				v=${variants[$(((k + round - 1) % 3))]}
				echo "round $round/$ROUNDS $cell $engine $v" >&2
				measure "$round" "$cell" "$engine" "$v"
			done
		done
	done
done

echo "results: $RESULTS" >&2
$PY - "$RESULTS" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
data = {}
for r in rows:
    data.setdefault((r[1], r[2], r[3]), {})[r[0]] = dict(zip(["cpu", "mps", "p99", "p999", "max", "err"], map(float, r[4:])))
def ratio(cell, eng, var, key):
    a, b = data.get((cell, eng, var), {}), data.get((cell, eng, "plain"), {})
    rs = [a[k][key] / b[k][key] for k in a if k in b and b[k][key] > 0]
    return f"{statistics.median(rs):.3f} ({min(rs):.3f}–{max(rs):.3f})" if rs else "-"
print("| cell | engine | variant | msgs/s | × plain | CPU/msg (µs) | × plain | p99 / p99.9 / max (ms) | errors |")
print("|---|---|---|---:|---|---:|---|---|---:|")
for (cell, eng, var), runs in data.items():
    m = lambda k: statistics.median([x[k] for x in runs.values()])
    print(f"| {cell} | {eng} | {var} | {m('mps'):.0f} | {ratio(cell, eng, var, 'mps')} | {m('cpu'):.2f} | {ratio(cell, eng, var, 'cpu')} | {m('p99')/1e3:.2f} / {m('p999')/1e3:.2f} / {m('max')/1e3:.2f} | {m('err'):.0f} |")
print(f"\n(median over {len(set(r[0] for r in rows))} round(s); ratios are per-round ratios against plain, median (min–max))")
EOF
