#!/usr/bin/env bash
# generator.sh measures the generator's own cost (issue 4): CPU time per
# message (getrusage of the generator over its measuring window) and
# messages/s of `sockit bench` on each engine against the minimal
# goroutine-per-connection client bench/peers/echoclient, all driving a plain
# stdlib echo server (bench/peers/stdecho) on loopback, 1,000 connections.
#
# Cells: pingpong (--mode echo, 64 B) and pipeline (--mode pipeline
# --depth 16, 64 B). Generators, in this order in every round:
#   client           bench/peers/echoclient; in pipeline with -batch: it
#                    writes 16 messages at once and reads the 16 echoes back
#   client-plain     (pipeline only) bench/peers/echoclient without -batch:
#                    16 in flight, one write and one read per message
#   bench-goroutine  sockit bench --engine goroutine
#   bench-epoll      sockit bench --engine epoll
# each against a fresh stdecho, --warmup then --duration. Beside each
# generator's own messages/s the script samples the server's: the bytes it
# wrote over the middle half of the window (/proc/PID/io) ÷ 64 ("counted ÷
# server's count"; stdecho only: asyncio writes with send(2), not counted).
# Ratios are taken
# within a round (generator ÷ client, and generator ÷ client-plain; in
# pingpong the two clients are the same program doing the same thing, so
# client stands for both) and printed as median (min–max).
#
# usage: bench/generator.sh [--rounds N] [--duration D] [--warmup D]
#          [--cells pingpong,pipeline] [--conns N]
#          [--server stdecho|asyncio] [--pin]
#          [--sockit BIN] [--baseline BIN] [--out DIR]
# --server asyncio drives the seed's asyncio echo server
# (bench/peers/python/asyncio_echo.py) instead of stdecho;
# --pin runs the server on CPU 0 and the generators on CPU 1 (taskset);
# --sockit uses a prebuilt sockit instead of building this tree's;
# --baseline BIN adds base-goroutine and base-epoll (the same runs with
# another sockit binary, e.g. an older build) to every round, after the rest.
# Every run is bounded by `timeout` (warm-up + duration + 60 s).
set -euo pipefail

ROUNDS=5
DURATION=5s
WARMUP=1s
CELLS=pingpong,pipeline
CONNS=1000
SOCKIT=""
BASELINE=""
OUT=""
SERVER=stdecho
PIN=0
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) ROUNDS=$2; shift 2 ;;
	--duration) DURATION=$2; shift 2 ;;
	--warmup) WARMUP=$2; shift 2 ;;
	--cells) CELLS=$2; shift 2 ;;
	--conns) CONNS=$2; shift 2 ;;
	--sockit) SOCKIT=$2; shift 2 ;;
	--baseline) BASELINE=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	--server) SERVER=$2; shift 2 ;;
	--pin) PIN=1; shift ;;
	-h|--help) sed -n '2,34p' "$0"; exit 0 ;;
	*) echo "generator.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

case $SERVER in stdecho|asyncio) ;; *) echo "generator.sh: --server: stdecho or asyncio, not $SERVER" >&2; exit 2 ;; esac
SPIN=() GPIN=()
if [ "$PIN" = 1 ]; then
	SPIN=(taskset -c 0)
	GPIN=(taskset -c 1)
fi

seconds() { # a Go duration of s or ms to seconds, for sleep
	case $1 in
	*ms) awk -v v="${1%ms}" 'BEGIN { print v / 1000 }' ;;
	*s) echo "${1%s}" ;;
	*) echo "generator.sh: durations in s or ms, not $1" >&2; exit 2 ;;
	esac
}

wchar() { # bytes process $1 has written so far (/proc/PID/io), or nothing
	sed -n 's/^wchar: //p' "/proc/$1/io" 2>/dev/null || true
}

seconds "$WARMUP" >/dev/null && seconds "$DURATION" >/dev/null # exits 2 on a bad one
. "$(dirname "$0")/lib.sh"
bench_workdir generator

echo "building in $WORK ..." >&2
if [ -z "$SOCKIT" ]; then
	(cd "$ROOT" && go build -o "$WORK/sockit" ./cmd/sockit)
	SOCKIT=$WORK/sockit
fi
(cd "$ROOT/bench/peers" && go build -o "$WORK/" ./stdecho ./echoclient)

LIMIT=$(awk -v w="$(seconds "$WARMUP")" -v d="$(seconds "$DURATION")" 'BEGIN { printf "%d", w + d + 60.999 }')

start_server() {
	local log="$WORK/server.out" i
	: >"$log"
	case $SERVER in
	stdecho) "${SPIN[@]}" "$WORK/stdecho" -l 127.0.0.1:0 >"$log" 2>&1 & ;;
	asyncio) "${SPIN[@]}" python3 "$ROOT/bench/peers/python/asyncio_echo.py" 127.0.0.1 0 >"$log" 2>&1 & ;;
	esac
	SERVER_PID=$!
	for i in $(seq 1 100); do
		EP=$(sed -n 's/^listening tcp:\/\/\(.*\)$/\1/p' "$log" | head -1)
		[ -n "$EP" ] && return 0
		sleep 0.05
	done
	echo "generator.sh: $SERVER did not start:" >&2
	cat "$log" >&2
	exit 1
}

# measure ROUND CELL GEN: one run against a fresh server, one line of results.tsv
# (round, cell, generator, msgs/s, CPU/msg µs, errors, the server's msgs/s or NA).
measure() {
	local round=$1 cell=$2 gen=$3 depth mode bin engine
	case $cell in
	pingpong) depth=1; mode=echo ;;
	pipeline) depth=16; mode=pipeline ;;
	*) echo "generator.sh: unknown cell $cell" >&2; exit 2 ;;
	esac
	start_server
	local json="$WORK/run.json" ok=1
	case $gen in
	client|client-plain)
		local batch=-batch
		[ "$gen" = client-plain ] && batch=-batch=false
		"${GPIN[@]}" timeout "$LIMIT" "$WORK/echoclient" -addr "$EP" -conns "$CONNS" -size 64 -depth "$depth" $batch \
			-warmup "$WARMUP" -duration "$DURATION" >"$json" 2>"$WORK/gen.err" &
		GEN_PID=$! ;;
	bench-*|base-*)
		bin=$SOCKIT
		case $gen in base-*) bin=$BASELINE ;; esac
		engine=${gen#*-}
		"${GPIN[@]}" timeout "$LIMIT" "$bin" bench "tcp://$EP" --mode "$mode" --depth "$depth" --size 64 \
			--conns "$CONNS" --engine "$engine" --warmup "$WARMUP" --duration "$DURATION" \
			--progress never --json >"$json" 2>"$WORK/gen.err" &
		GEN_PID=$! ;;
	esac
	# The server's own count over the middle half of the window: the bytes
	# it wrote (wchar of /proc/PID/io: write(2) and the like, which stdecho
	# uses; a server that writes with send(2), as asyncio does, shows
	# nothing) ÷ 64. The generator's window starts after its connections
	# are up (0.1–0.5 s here), so the middle half of the script's own
	# window (from launch) lies inside it; in steady state its rate is the
	# window's.
	local d w0 w1 t0 t1 smps=NA
	d=$(seconds "$DURATION")
	sleep "$(awk -v w="$(seconds "$WARMUP")" -v d="$d" 'BEGIN { print w + d / 4 }')"
	w0=$(wchar "$SERVER_PID"); t0=$EPOCHREALTIME
	sleep "$(awk -v d="$d" 'BEGIN { print d / 2 }')"
	w1=$(wchar "$SERVER_PID"); t1=$EPOCHREALTIME
	wait "$GEN_PID" || ok=0
	GEN_PID=""
	if [ -n "$w0" ] && [ -n "$w1" ] && [ "$w1" != "$w0" ]; then
		smps=$(awk -v a="$w0" -v b="$w1" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.0f", (b - a) / 64 / (t1 - t0) }')
	fi
	stop_server
	if [ $ok = 0 ]; then
		echo "generator.sh: $gen ($cell, round $round) failed:" >&2
		cat "$WORK/gen.err" >&2
		printf '%s\t%s\t%s\tNA\n' "$round" "$cell" "$gen" >>"$RESULTS"
		return
	fi
	python3 - "$json" "$round" "$cell" "$gen" "$smps" >>"$RESULTS" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
if "generator" in d:
    cpu, errs = d["generator"]["cpu_per_message_us"], d["error_total"]
else:
    cpu, errs = d["cpu_per_message_us"], 0
print("\t".join(str(x) for x in sys.argv[2:5] + [d["messages_per_second"], cpu, errs, sys.argv[5]]))
EOF
}

GENS=(client client-plain bench-goroutine bench-epoll)
[ -n "$BASELINE" ] && GENS+=(base-goroutine base-epoll)
IFS=, read -r -a cells <<<"$CELLS"
echo "server $SERVER$([ "$PIN" = 1 ] && echo ', pinned: server CPU 0, generators CPU 1')" | tee "$OUT/load.txt" >&2
echo "start $(date -u +%H:%M:%S) loadavg $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/load.txt" >&2
for round in $(seq 1 "$ROUNDS"); do
	for cell in "${cells[@]}"; do
		for gen in "${GENS[@]}"; do
			[ "$cell" = pingpong ] && [ "$gen" = client-plain ] && continue
			echo "round $round/$ROUNDS $cell $gen (loadavg $(cut -d' ' -f1 /proc/loadavg))" >&2
			measure "$round" "$cell" "$gen"
		done
	done
done
echo "end $(date -u +%H:%M:%S) loadavg $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/load.txt" >&2

echo "results: $RESULTS" >&2
python3 - "$RESULTS" "$OUT/load.txt" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
data, cells, gens = {}, [], []
for r in rows:
    rnd, cell, gen = r[:3]
    if cell not in cells: cells.append(cell)
    if gen not in gens: gens.append(gen)
    if r[3] == "NA":
        continue
    data.setdefault((cell, gen), {})[rnd] = {"mps": float(r[3]), "cpu": float(r[4]), "errs": int(float(r[5])),
                                             "srv": float(r[6]) if len(r) > 6 and r[6] != "NA" else 0}

def ratio(cell, gen, key, ref="client"):
    a, b = data.get((cell, gen), {}), data.get((cell, ref), {})
    if not b and cell == "pingpong":
        b = data.get((cell, "client"), {})  # one client stands for both
    rs = [a[k][key] / b[k][key] for k in a if k in b and b[k][key] > 0]
    if not rs:
        return "-"
    return f"{statistics.median(rs):.2f} ({min(rs):.2f}–{max(rs):.2f})"

print("".join("; " + l.strip() for l in open(sys.argv[2]))[2:])
def counted(runs):
    rs = [x["mps"] / x["srv"] for x in runs.values() if x["srv"] > 0]
    if not rs:
        return "-"
    return f"{statistics.median(rs):.3f} ({min(rs):.3f}–{max(rs):.3f})"

print("| cell | generator | msgs/s (median) | msgs/s ratio | counted ÷ server's count | CPU/msg µs (median) | CPU/msg ratio | CPU/msg ratio to client-plain | errors |")
print("|---|---|---:|---|---|---:|---|---|---:|")
for cell in cells:
    for gen in gens:
        runs = data.get((cell, gen))
        if not runs and not any(r[1] == cell and r[2] == gen for r in rows):
            continue  # not run in this cell (client-plain in pingpong)
        if not runs:
            print(f"| {cell} | {gen} | n/a | | | | | | |")
            continue
        med = lambda k: statistics.median(x[k] for x in runs.values())
        print(f"| {cell} | {gen} | {med('mps'):,.0f} | {ratio(cell, gen, 'mps')} | {counted(runs)} | {med('cpu'):.3f} | "
              f"{ratio(cell, gen, 'cpu')} | {ratio(cell, gen, 'cpu', 'client-plain')} | "
              f"{sum(x['errs'] for x in runs.values())} |")
EOF
