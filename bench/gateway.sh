#!/usr/bin/env bash
# Gateway benchmark, the services deployed as docker-compose deploys them: story-service,
# gpt-worker and the gateway as three release processes (SQLite, rate limits off).
#  1. GET /v1/stories/{id} with a bearer token through the gateway (wrk, 32 connections),
#     then the same GetStory directly over gRPC (the story-service load generator,
#     32 calls in flight), in one run; with each process's CPU time per request.
#  2. POST /v1/worlds/{id}/stories through the gateway in slices of $SLICE until the
#     world holds $STORIES stories, one line per slice: is the rate flat as it grows?
#  3. The same CreateStory directly over gRPC, into that grown world.
# Results go to BENCHMARKS.md by hand.
#
#   bash bench/gateway.sh          (needs wrk: apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
SLICE=${SLICE:-5s}
STORIES=${STORIES:-50000}

cargo build --release -q -p story-service -p gpt-worker -p gateway --bins
cargo build --release -q -p story-service --example loadgen
bin=$PWD/target/release
dir=$(mktemp -d)
pids=()
trap 'kill -TERM "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
cd "$dir"
export RUST_LOG=warn
STORY_LISTEN=127.0.0.1:50351 "$bin/story-service" > story.log 2>&1 &
story_pid=$!; pids+=($!)
for _ in $(seq 100); do [ -f data/token-ed25519.pub.pem ] && [ -f data/worker-ed25519.pem ] && break; sleep 0.1; done
WORKER_LISTEN=127.0.0.1:50352 STORY_SERVICE_URL=http://127.0.0.1:50351 WORKER_PRIVATE_KEY_FILE=data/worker-ed25519.pem \
  "$bin/gpt-worker" > worker.log 2>&1 &
pids+=($!)
GATEWAY_LISTEN=127.0.0.1:18080 GATEWAY_RATE_LIMITS_OFF=true STORY_SERVICE_URL=http://127.0.0.1:50351 \
  WORKER_SERVICE_URL=http://127.0.0.1:50352 "$bin/gateway" > gateway.log 2>&1 &
gateway_pid=$!; pids+=($!)
for _ in $(seq 100); do curl -sf http://127.0.0.1:18080/readyz > /dev/null && break; sleep 0.1; done

base=http://127.0.0.1:18080/v1
json() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
token=$(curl -sf -X POST $base/auth/register -H 'content-type: application/json' \
  -d '{"username":"bench","email":"bench@bench.test","password":"benchmark-password"}' | json accessToken)
world=$(curl -sf -X POST $base/worlds -H "authorization: Bearer $token" -H 'content-type: application/json' \
  -d '{"name":"Bench"}' | json id)
content=$(printf 'Once upon a time. %.0s' $(seq 50))
story=$(curl -sf -X POST "$base/worlds/$world/stories" -H "authorization: Bearer $token" -H 'content-type: application/json' \
  -d "{\"title\":\"A benchmark story\",\"content\":\"$content\"}" | json id)

# CPU seconds (user + system) a process has used, in clock ticks.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
per_request() { echo $(( ($2 - $1) * 1000000 / $(getconf CLK_TCK) / $3 )); }
count() { curl -sf "$base/worlds/$world/stories?pageSize=1" -H "authorization: Bearer $token" | sed -n 's/.*"totalSize":\([0-9]*\).*/\1/p'; }

echo "== GET /v1/stories/{id} through the gateway, $CONNECTIONS connections, $DURATION"
s0=$(ticks $story_pid); g0=$(ticks $gateway_pid)
out=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -H "authorization: Bearer $token" "$base/stories/$story")
s1=$(ticks $story_pid); g1=$(ticks $gateway_pid)
n=$(echo "$out" | awk '/requests in/ {print $1}')
echo "$out" | grep -E "Requests/sec|50%|90%|99%|Non-2xx" || true
echo "CPU per request: story-service $(per_request "$s0" "$s1" "$n") us, gateway $(per_request "$g0" "$g1" "$n") us"
echo "== GetStory directly over gRPC, $CONNECTIONS in flight, $DURATION"
s0=$(ticks $story_pid)
out=$("$bin/examples/loadgen" --target http://127.0.0.1:50351 --mode get --concurrency "$CONNECTIONS" --duration "$DURATION" | tail -1)
s1=$(ticks $story_pid)
echo "$out"
echo "CPU per request: story-service $(per_request "$s0" "$s1" "$(echo "$out" | awk '{print $1}')") us (and 1 s of warm-up)"

cat > post.lua <<LUA
wrk.method = "POST"
wrk.headers["authorization"] = "Bearer $token"
wrk.headers["content-type"] = "application/json"
wrk.body = '{"title":"Another story","content":"$content"}'
LUA
echo "== POST /v1/worlds/{id}/stories through the gateway, $CONNECTIONS connections, in $SLICE slices to $STORIES stories"
while [ "$(count)" -lt "$STORIES" ]; do
  before=$(count)
  rate=$(wrk -t2 -c"$CONNECTIONS" -d"$SLICE" --latency -s post.lua "$base/worlds/$world/stories" \
    | awk '/Requests\/sec/ {r=$2} / 50%/ {p50=$2} / 99%/ {p99=$2} /Non-2xx/ {bad=$NF} END {printf "%s req/s, p50 %s, p99 %s, non-2xx %s", r, p50, p99, bad+0}')
  echo "stories $before -> $(count): $rate"
done
echo "== CreateStory directly over gRPC, $CONNECTIONS in flight, $DURATION (a world of its own)"
"$bin/examples/loadgen" --target http://127.0.0.1:50351 --mode create --concurrency "$CONNECTIONS" --duration "$DURATION" | tail -1
