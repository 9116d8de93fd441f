#!/usr/bin/env bash
# List throughput through the gateway (issue 15 item 5): one world of 20 stories of
# 20 KB each, then GET /v1/worlds/{id}/stories?pageSize=20 with wrk, in the FULL view
# (every story's text: what every list returned before views) and in the BASIC default
# (a 200-character preview and a word count instead), and GET /v1/users/me/stories
# (ListMyStories, BASIC) the same way, in one run of release builds on SQLite.
# Results go to BENCHMARKS.md by hand.
#
#   bash bench/lists.sh          (needs wrk: apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}

cargo build --release -q -p story-service -p gpt-worker -p gateway --bins
bin=$PWD/target/release
dir=$(mktemp -d)
pids=()
trap 'kill -TERM "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
cd "$dir"
export RUST_LOG=warn
STORY_LISTEN=127.0.0.1:50361 "$bin/story-service" > story.log 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -f data/token-ed25519.pub.pem ] && [ -f data/worker-ed25519.pem ] && break; sleep 0.1; done
WORKER_LISTEN=127.0.0.1:50362 STORY_SERVICE_URL=http://127.0.0.1:50361 WORKER_PRIVATE_KEY_FILE=data/worker-ed25519.pem \
  "$bin/gpt-worker" > worker.log 2>&1 &
pids+=($!)
GATEWAY_LISTEN=127.0.0.1:18090 GATEWAY_RATE_LIMITS_OFF=true STORY_SERVICE_URL=http://127.0.0.1:50361 \
  WORKER_SERVICE_URL=http://127.0.0.1:50362 "$bin/gateway" > gateway.log 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf http://127.0.0.1:18090/readyz > /dev/null && break; sleep 0.1; done

base=http://127.0.0.1:18090/v1
json() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
token=$(curl -sf -X POST $base/auth/register -H 'content-type: application/json' \
  -d '{"username":"bench","email":"bench@bench.test","password":"benchmark-password"}' | json accessToken)
auth="authorization: Bearer $token"
world=$(curl -sf -X POST $base/worlds -H "$auth" -H 'content-type: application/json' -d '{"name":"Bench"}' | json id)
# 20 KB of text: 1 138 sentences of 18 bytes.
content=$(printf 'Once upon a time. %.0s' $(seq 1138))
for i in $(seq 20); do
  printf '{"title":"Story %s","content":"%s"}' "$i" "$content" > story.json
  curl -sf -X POST "$base/worlds/$world/stories" -H "$auth" -H 'content-type: application/json' -d @story.json > /dev/null
done

run() {
  local what=$1 url=$2
  local bytes
  bytes=$(curl -sf "$url" -H "$auth" | wc -c)
  echo "== $what: $bytes bytes a page, $CONNECTIONS connections, $DURATION"
  wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -H "$auth" "$url" \
    | awk '/Requests\/sec/ {r=$2} / 50%/ {p50=$2} / 90%/ {p90=$2} / 99%/ {p99=$2} /Non-2xx/ {bad=$NF} /Transfer\/sec/ {t=$2}
           END {printf "%s req/s, p50 %s, p90 %s, p99 %s, %s/s, non-2xx %s\n", r, p50, p90, p99, t, bad+0}'
}
run "ListStories view=FULL (the text of all 20)" "$base/worlds/$world/stories?pageSize=20&view=FULL"
run "ListStories, BASIC by default" "$base/worlds/$world/stories?pageSize=20"
run "ListMyStories, BASIC by default" "$base/users/me/stories?pageSize=20"
