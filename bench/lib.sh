# Shared by bench/compare.sh and bench/generator.sh (sourced, not run).

# bench_workdir NAME: sets ROOT (the repository), WORK (a fresh temporary
# directory), OUT (--out, else WORK) and RESULTS (OUT/results.tsv, emptied);
# on exit stops the server still running and removes WORK, or, when WORK is
# OUT, the binaries in it.
# Raises the open-file soft limit to the hard one (1,000 connections need
# 2,000 descriptors on loopback, both ends ours and the server's; the hard
# limit here is 20,000 per process).
bench_workdir() {
	ROOT=$(cd "$(dirname "$0")/.." && pwd)
	WORK=$(mktemp -d "/tmp/sockit-$1.XXXXXX")
	OUT=${OUT:-$WORK}
	mkdir -p "$OUT"
	RESULTS="$OUT/results.tsv"
	: >"$RESULTS"
	SERVER_PID=""
	trap bench_cleanup EXIT
	ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
}

bench_cleanup() {
	# A generator still running in the background (generator.sh) goes too.
	if [ -n "${GEN_PID:-}" ]; then kill "$GEN_PID" 2>/dev/null || true; wait "$GEN_PID" 2>/dev/null || true; fi
	if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
	if [ "$OUT" = "$WORK" ]; then
		# The results stay; the binaries built for the run (~35 MB) go.
		find "$WORK" -maxdepth 1 -type f -perm -u+x -delete 2>/dev/null || true
	else
		rm -rf "$WORK"
	fi
}

# stop_server: stops the server started last.
stop_server() {
	kill "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=""
}
