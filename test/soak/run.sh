#!/usr/bin/env bash
# The 2-minute soak: every combination of test/soak (service × transport ×
# engine, and echo in every framing) under load for SOAK_DURATION (default
# 2m), plus the long echo/hello runs for SOAK_LONG (default 2m), then a
# table of what each sent, got back and lost, the faults injected, the most
# connections open, the server's goroutines, fds and RSS (MiB: start / peak / end) and
# its peak RSS per connection ((peak − start) ÷ peak connections).
#
#   test/soak/run.sh                       # everything: about 90 minutes
#   test/soak/run.sh 'TestSoak$/^echo/'    # a go test -run pattern
#   SOAK_DURATION=30s test/soak/run.sh
#
# Traffic goes to 127.0.0.1 and Unix sockets only; every run stops by itself.
set -euo pipefail
cd "$(dirname "$0")/../.."
export SOAK_DURATION="${SOAK_DURATION:-2m}" SOAK_LONG="${SOAK_LONG:-2m}"
pattern="${1:-.}"
log="$(mktemp -t sockit-soak.XXXXXX.log)"
echo "soak: SOAK_DURATION=$SOAK_DURATION SOAK_LONG=$SOAK_LONG -run '$pattern'; log in $log" >&2
status=0
go test -tags soak -count=1 -timeout 12h -parallel "${SOAK_PARALLEL:-4}" -run "$pattern" -v ./test/soak/ >"$log" 2>&1 || status=$?
echo "| service | transport | frame | engine | load | sent | answered | lost | faults | peak conns | goroutines start → end | fds start → end | RSS MiB start / peak / end | peak RSS per conn KiB |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
grep -o 'result | .*' "$log" | sed 's/^result //' | sort || true
grep -E '^\s*--- FAIL' "$log" || true
if [ "$status" -ne 0 ]; then
  echo "soak: FAILED (see $log)" >&2
fi
exit "$status"
