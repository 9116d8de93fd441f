#!/usr/bin/env bash
# Stats at scale (issue 15 item 6): the release story-service on a fresh database,
# 100 000 stories of one writer in 100 worlds written straight into it, then the
# latency of GetMyStats, GetSiteStats and a page of ListMyStories, one call at a time
# (story-service/examples/statstiming.rs), on SQLite and on PostgreSQL.
# Results go to BENCHMARKS.md by hand.
#
#   bash bench/stats.sh            # both databases
#   BACKENDS=sqlite STORIES=20000 bash bench/stats.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
BACKENDS=${BACKENDS:-"sqlite postgres"}
STORIES=${STORIES:-100000}
PORT=${PORT:-50171}

cargo build --release -q -p story-service --bin story-service --example statstiming
bin=target/release/story-service

for backend in $BACKENDS; do
  dir=$(mktemp -d)
  case $backend in
    sqlite) url="sqlite://$dir/story.db?mode=rwc" ;;
    postgres)
      db="fabula_stats_$(date +%s)"
      psql "$PG_ADMIN_URL" -qc "CREATE DATABASE $db"
      url="${PG_ADMIN_URL%/*}/$db" ;;
  esac
  RUST_LOG=warn STORY_LISTEN=127.0.0.1:$PORT STORY_DATABASE_URL=$url FABULA_DATA_DIR=$dir "$bin" &
  pid=$!
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
  sleep 1
  echo "== $backend, $STORIES stories"
  target/release/examples/statstiming --target "http://127.0.0.1:$PORT" --database-url "$url" --stories "$STORIES"
  kill -TERM $pid; wait $pid || true
  [ "$backend" = postgres ] && psql "$PG_ADMIN_URL" -qc "DROP DATABASE $db WITH (FORCE)"
  rm -rf "$dir"
done
