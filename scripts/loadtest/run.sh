#!/usr/bin/env bash
# Load test: plain reverse_proxy vs otpgate + reverse_proxy (with and without
# a roles rule) vs forward_auth,
# measured in one run on one machine with wrk. Usage:
#   scripts/loadtest/run.sh [duration] [connections]
# LOADTEST_REDIS=1 runs otpgate on a private redis-server (port 6390)
# instead of the memory store.
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-10s}
CONN=${2:-32}
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk"; exit 1; }
mkdir -p bin
go build -o bin/caddy ./module/cmd/caddy
go build -o bin/authsvc ./scripts/loadtest/authsvc
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
if [ "${LOADTEST_REDIS:-}" = 1 ]; then
	redis-server --port 6390 --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
	for _ in $(seq 50); do redis-cli -p 6390 ping >/dev/null 2>&1 && break; sleep 0.1; done
	export OTPGATE_STORE="redis redis://127.0.0.1:6390/0"
fi
XDG_DATA_HOME=$work XDG_CONFIG_HOME=$work bin/caddy run --config scripts/loadtest/Caddyfile >"$work/caddy.log" 2>&1 &
for _ in $(seq 100); do curl -fs http://127.0.0.1:9001/ >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs -X POST http://127.0.0.1:9002/auth/v1/otp -H 'Content-Type: application/json' -d '{"phone":"+12015550100"}' >/dev/null
TOKEN=$(curl -fs -X POST http://127.0.0.1:9002/auth/v1/verify -H 'Content-Type: application/json' \
	-d '{"type":"sms","phone":"+12015550100","token":"123456"}' | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
bin/authsvc -addr 127.0.0.1:9100 -jwks http://127.0.0.1:9002/auth/v1/.well-known/jwks.json &
for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:9100/verify && break; sleep 0.1; done
for port in 9001 9002 9003 9004; do
	code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" http://127.0.0.1:$port/)
	[ "$code" = 200 ] || { echo "port $port answered $code"; cat "$work/caddy.log"; exit 1; }
done
run() {
	wrk -t2 -c"$CONN" -d"$DUR" -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$1/" | awk '/Requests\/sec/ {print $2}'
}
run 9001 >/dev/null # warm-up
ROUNDS=${ROUNDS:-5}
declare -A rps
for round in $(seq "$ROUNDS"); do
	for port in 9001 9002 9004 9003; do
		r=$(run $port)
		rps[$port]="${rps[$port]:-} $r"
	done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
plain=$(echo "${rps[9001]}" | median)
gate=$(echo "${rps[9002]}" | median)
fwd=$(echo "${rps[9003]}" | median)
roles=$(echo "${rps[9004]}" | median)
echo "wrk -t2 -c$CONN -d$DUR, median of $ROUNDS interleaved rounds (req/s), store: ${OTPGATE_STORE:-memory}"
for port in 9001 9002 9004 9003; do echo "  port $port rounds:${rps[$port]}"; done
printf '%-40s %10s %8s\n' "set-up" "req/s" "ratio"
printf '%-40s %10.0f %8s\n' "reverse_proxy" "$plain" "1.00"
printf '%-40s %10.0f %8.2f\n' "otpgate + reverse_proxy (ES256)" "$gate" "$(echo "$gate / $plain" | bc -l)"
printf '%-40s %10.0f %8.2f\n' "otpgate + roles admin + reverse_proxy" "$roles" "$(echo "$roles / $plain" | bc -l)"
printf '%-40s %10.0f %8.2f\n' "forward_auth (Go JWT service)" "$fwd" "$(echo "$fwd / $plain" | bc -l)"
