#!/usr/bin/env bash
# Gateway benchmark: GET /v1/stories/{id} with a bearer token through the gateway
# (wrk, 32 connections) and the same GetStory directly over gRPC (the story-service
# load generator, 32 calls in flight), in one run on the same machine; then
# POST /v1/worlds/{id}/stories through the gateway. The whole stack is the release
# `fabula` binary on SQLite with rate limits off. Results go to BENCHMARKS.md by hand.
#
#   bash bench/gateway.sh          (needs wrk: apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}

cargo build --release -q -p fabula --bin fabula && cargo build --release -q -p story-service --example loadgen
dir=$(mktemp -d)
(cd "$dir" && RUST_LOG=warn GATEWAY_RATE_LIMITS_OFF=true GATEWAY_LISTEN=127.0.0.1:18080 \
  STORY_LISTEN=127.0.0.1:50351 WORKER_LISTEN=127.0.0.1:50352 exec "$OLDPWD/target/release/fabula" > stack.log 2>&1) &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do curl -sf http://127.0.0.1:18080/healthz > /dev/null && break; sleep 0.1; done

base=http://127.0.0.1:18080/v1
json() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
token=$(curl -sf -X POST $base/auth/register -H 'content-type: application/json' \
  -d '{"username":"bench","email":"bench@bench.test","password":"benchmark-password"}' | json accessToken)
world=$(curl -sf -X POST $base/worlds -H "authorization: Bearer $token" -H 'content-type: application/json' \
  -d '{"name":"Bench"}' | json id)
content=$(printf 'Once upon a time. %.0s' $(seq 50))
story=$(curl -sf -X POST "$base/worlds/$world/stories" -H "authorization: Bearer $token" -H 'content-type: application/json' \
  -d "{\"title\":\"A benchmark story\",\"content\":\"$content\"}" | json id)

echo "== GET /v1/stories/{id} through the gateway, $CONNECTIONS connections"
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -H "authorization: Bearer $token" "$base/stories/$story" | grep -E "Requests/sec|50%|90%|99%|Non-2xx"
echo "== GetStory directly over gRPC, $CONNECTIONS in flight"
target/release/examples/loadgen --target http://127.0.0.1:50351 --mode get --concurrency "$CONNECTIONS" --duration "$DURATION" | tail -1

cat > "$dir/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["authorization"] = "Bearer $token"
wrk.headers["content-type"] = "application/json"
wrk.body = '{"title":"Another story","content":"$content"}'
LUA
echo "== POST /v1/worlds/{id}/stories through the gateway, $CONNECTIONS connections"
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$dir/post.lua" "$base/worlds/$world/stories" | grep -E "Requests/sec|50%|90%|99%|Non-2xx"
echo "stories in the world now: $(curl -sf "$base/worlds/$world/stories?pageSize=1" -H "authorization: Bearer $token" | sed -n 's/.*"totalSize":\([0-9]*\).*/\1/p')"
