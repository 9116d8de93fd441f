#!/usr/bin/env bash
# story-service benchmark: GetStory and CreateStory over gRPC on loopback, 32 calls
# in flight, release build, on SQLite and on PostgreSQL; how long failed sign-ins take
# for a known and an unknown login; idle RSS and the SQLite WAL size after sustained
# writes. Results go to BENCHMARKS.md by hand.
#
#   bash bench/story-service.sh            # both databases
#   BACKENDS=sqlite bash bench/story-service.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
BACKENDS=${BACKENDS:-"sqlite postgres"}
DURATION=${DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-32}
PORT=${PORT:-50151}

cargo build --release -q -p story-service --bin story-service --example loadgen --example logintiming
bin=target/release/story-service
loadgen=target/release/examples/loadgen

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

for backend in $BACKENDS; do
  dir=$(mktemp -d)
  case $backend in
    sqlite) url="sqlite://$dir/story.db?mode=rwc" ;;
    postgres)
      db="fabula_bench_$(date +%s)"
      psql "$PG_ADMIN_URL" -qc "CREATE DATABASE $db"
      url="${PG_ADMIN_URL%/*}/$db" ;;
  esac
  RUST_LOG=warn STORY_LISTEN=127.0.0.1:$PORT STORY_DATABASE_URL=$url FABULA_DATA_DIR=$dir "$bin" &
  pid=$!
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
  sleep 1
  echo "== $backend: idle RSS $(( $(rss_kib $pid) / 1024 )) MiB"
  echo "-- GetStory, $CONCURRENCY in flight"
  "$loadgen" --target "http://127.0.0.1:$PORT" --mode get --concurrency "$CONCURRENCY" --duration "$DURATION"
  echo "-- CreateStory, $CONCURRENCY in flight"
  "$loadgen" --target "http://127.0.0.1:$PORT" --mode create --concurrency "$CONCURRENCY" --duration "$DURATION"
  echo "-- RSS after load $(( $(rss_kib $pid) / 1024 )) MiB"
  echo "-- failed sign-ins: a wrong password against a login naming no account"
  target/release/examples/logintiming --target "http://127.0.0.1:$PORT"
  if [ "$backend" = sqlite ]; then
    sleep 6  # one checkpoint period
    echo "-- SQLite files: $(ls -la "$dir" | awk '/story.db/ {printf "%s=%d MiB ", $9, $5/1048576}')"
  fi
  kill -TERM $pid; wait $pid || true
  [ "$backend" = postgres ] && psql "$PG_ADMIN_URL" -qc "DROP DATABASE $db WITH (FORCE)"
  rm -rf "$dir"
done
