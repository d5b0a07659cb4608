#!/usr/bin/env bash
# Side-by-side HTTP measurements for docs/PERFORMANCE.md (issue 6, "Measure").
#
# 1. Requests/s for GET / under wrk: `sockit serve http --access-log=false`
#    vs a plain net/http hello server (bench/http/plain) vs nginx serving a
#    static <h1>Index</h1>, in ROUNDS interleaved rounds (the order rotates
#    each round), reported per round and as median ratios.
# 2. Fetching N URLs at once from `sockit serve http --delay DELAY`:
#    `sockit fetch -c N` vs seed 001's asyncio fetcher (bench/http/
#    asyncio_fetch.py) vs hey, FETCH_ROUNDS rounds each, median wall time.
#
# Everything is on 127.0.0.1; the load generator shares the machine's cores
# with the server. Needs go, python3, wrk, hey, nginx (.ci/peers-http.sh).
#
#   bash bench/http/compare.sh            # defaults below
#   ROUNDS=7 DURATION=10s CONNS=100 bash bench/http/compare.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-50}
THREADS=${THREADS:-1}
N=${N:-1000}
DELAY=${DELAY:-200ms}
FETCH_ROUNDS=${FETCH_ROUNDS:-3}

for tool in go python3 wrk hey nginx; do
  command -v "$tool" >/dev/null || { echo "compare.sh: $tool not found (run .ci/peers-http.sh)" >&2; exit 1; }
done

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/sockit" ./cmd/sockit
(cd bench/http/plain && go build -o "$work/plainhttp" .)

# start NAME CMD... runs a server that prints "listening tcp://HOST:PORT"
# and sets ADDR to HOST:PORT.
start() {
  local name=$1; shift
  "$@" >"$work/$name.out" 2>"$work/$name.err" &
  pids+=("$!")
  for _ in $(seq 200); do
    ADDR=$(sed -n 's|^listening tcp://||p' "$work/$name.out" | head -n1)
    [ -n "$ADDR" ] && return 0
    sleep 0.05
  done
  echo "compare.sh: $name did not start" >&2; cat "$work/$name.err" >&2; exit 1
}

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start sockit "$work/sockit" serve http -l tcp://127.0.0.1:0 --access-log=false
SOCKIT=$ADDR SOCKIT_PID=${pids[-1]}
start plain "$work/plainhttp" 127.0.0.1:0
PLAIN=$ADDR PLAIN_PID=${pids[-1]}

NGINX=127.0.0.1:$(freeport)
mkdir -p "$work/www" "$work/nginx"
printf '<h1>Index</h1>' >"$work/www/index.html"
cat >"$work/nginx.conf" <<EOF
worker_processes auto;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  default_type text/html;
  server {
    listen $NGINX;
    root $work/www;
    index index.html;
  }
}
EOF
chmod -R a+rX "$work"
nginx -e "$work/nginx/error.log" -p "$work/nginx" -c "$work/nginx.conf" &
pids+=("$!")
NGINX_PID=$!
for _ in $(seq 200); do
  curl -fsS "http://$NGINX/" >/dev/null 2>&1 && break
  sleep 0.05
done

for a in "$SOCKIT" "$PLAIN" "$NGINX"; do
  body=$(curl -fsS "http://$a/")
  [ "$body" = "<h1>Index</h1>" ] || { echo "compare.sh: $a answered '$body'" >&2; exit 1; }
done

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.4f\n", (a[NR/2]+a[NR/2+1])/2}'; }
# ticks PID: CPU clock ticks (user+system) of PID and its children (nginx's
# workers).
ticks() {
  local total=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    total=$((total + $(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
# measure ADDR PID prints the requests/s wrk got and the server's CPU time
# per request in microseconds (less sensitive than requests/s to other load
# on the machine, which only slows the server down).
measure() {
  local t0 t1 out
  t0=$(ticks "$2")
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" "http://$1/")
  t1=$(ticks "$2")
  echo "$out" | awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" '
    /requests in/ {n=$1} /^Requests\/sec:/ {r=$2}
    END {printf "%.0f %.2f\n", r, t*1e6/hz/n}'
}

echo "== wrk -t$THREADS -c$CONNS -d$DURATION GET /, $ROUNDS interleaved rounds ($(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg) at start, $(go version | awk '{print $3}'), $(nginx -v 2>&1 | sed 's/.*: //'))"
echo "   each cell: requests/s (server CPU µs per request)"
printf '| round | sockit serve http | plain net/http | nginx | sockit/plain req/s | sockit/nginx req/s | plain/sockit CPU per req |\n|---|---|---|---|---|---|---|\n'
names=(sockit plain nginx)
addrs=("$SOCKIT" "$PLAIN" "$NGINX")
spids=("$SOCKIT_PID" "$PLAIN_PID" "$NGINX_PID")
: >"$work/r1"; : >"$work/r2"; : >"$work/r3"
for r in $(seq "$ROUNDS"); do
  declare -A rps=() cpu=()
  for k in 0 1 2; do
    i=$(( (k + r) % 3 ))
    read -r rps[${names[$i]}] cpu[${names[$i]}] < <(measure "${addrs[$i]}" "${spids[$i]}")
  done
  r1=$(awk -v a="${rps[sockit]}" -v b="${rps[plain]}" 'BEGIN {printf "%.3f", a/b}')
  r2=$(awk -v a="${rps[sockit]}" -v b="${rps[nginx]}" 'BEGIN {printf "%.3f", a/b}')
  r3=$(awk -v a="${cpu[plain]}" -v b="${cpu[sockit]}" 'BEGIN {printf "%.3f", a/b}')
  echo "$r1" >>"$work/r1"; echo "$r2" >>"$work/r2"; echo "$r3" >>"$work/r3"
  printf '| %d | %s (%s) | %s (%s) | %s (%s) | %s | %s | %s |\n' "$r" \
    "${rps[sockit]}" "${cpu[sockit]}" "${rps[plain]}" "${cpu[plain]}" "${rps[nginx]}" "${cpu[nginx]}" "$r1" "$r2" "$r3"
  unset rps cpu
done
printf '| median | | | | %s | %s | %s |\n' "$(median <"$work/r1")" "$(median <"$work/r2")" "$(median <"$work/r3")"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

# Fetching N URLs at once from a server that waits DELAY before answering.
start delayed "$work/sockit" serve http -l tcp://127.0.0.1:0 --delay "$DELAY" --access-log=false
DELAYED=$ADDR
HOST=${DELAYED%:*}
PORT=${DELAYED##*:}
echo
echo "== $N URLs at once against sockit serve http --delay $DELAY, $FETCH_ROUNDS rounds (wall seconds)"
printf '| round | sockit fetch -c %d | python asyncio (seed 001) | hey -n %d -c %d |\n|---|---|---|---|\n' "$N" "$N" "$N"
: >"$work/f1"; : >"$work/f2"; : >"$work/f3"
for r in $(seq "$FETCH_ROUNDS"); do
  f1=$("$work/sockit" fetch --json -c "$N" --timeout 30s "http://$DELAYED/hello/{1..$N}" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); t=d["totals"]; print("%.3f" % t["wall_seconds"], t["failed"])')
  f2=$(python3 bench/http/asyncio_fetch.py "$HOST" "$PORT" "$N")
  f3=$(hey -n "$N" -c "$N" -t 30 "http://$DELAYED/hello/x" | awk '/Total:/ {t=$2} /\[200\]/ {ok=$2} END {printf "%.3f %d\n", t, '"$N"'-ok}')
  echo "${f1% *}" >>"$work/f1"; echo "${f2% *}" >>"$work/f2"; echo "${f3% *}" >>"$work/f3"
  printf '| %d | %s (%s failed) | %s (%s failed) | %s (%s failed) |\n' "$r" "${f1% *}" "${f1#* }" "${f2% *}" "${f2#* }" "${f3% *}" "${f3#* }"
done
printf '| median | %s | %s | %s |\n' "$(median <"$work/f1")" "$(median <"$work/f2")" "$(median <"$work/f3")"
delay_s=$(python3 -c "import re,sys; s='$DELAY'; m=re.fullmatch(r'([0-9.]+)(ms|s)', s); print(float(m[1])/(1000 if m[2]=='ms' else 1))")
echo
echo "one delay = ${delay_s}s; goal for sockit fetch: wall <= 1.5 x delay = $(awk -v d="$delay_s" 'BEGIN {print 1.5*d}')s"
