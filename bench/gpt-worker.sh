#!/usr/bin/env bash
# gpt-worker benchmark: end-to-end jobs per second with the offline model, and the
# submit → RUNNING latency, on SQLite with one worker and on PostgreSQL with one and
# with two worker processes sharing the queue. Results go to BENCHMARKS.md by hand.
#
#   bash bench/gpt-worker.sh                 # every scenario, Paraphrase
#   KIND=analyze-story JOBS=500 bash bench/gpt-worker.sh
#   RATE=500 bash bench/gpt-worker.sh        # latency below capacity
#   IN_FLIGHT=3 bash bench/gpt-worker.sh     # each user within the active-jobs limit (3)
set -euo pipefail
cd "$(dirname "$0")/.."

PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
SCENARIOS=${SCENARIOS:-"sqlite:1 postgres:1 postgres:2"}
KIND=${KIND:-paraphrase}
JOBS=${JOBS:-2000}
CONCURRENCY=${CONCURRENCY:-32}
RATE=${RATE:-0}
IN_FLIGHT=${IN_FLIGHT:-0}
RUNNERS=${RUNNERS:-16}

cargo build --release -q -p story-service --bin story-service -p gpt-worker --bin gpt-worker --example jobsbench
bin=target/release

wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

for scenario in $SCENARIOS; do
  backend=${scenario%:*}; workers=${scenario#*:}
  dir=$(mktemp -d); pids=()
  case $backend in
    sqlite) url="sqlite://$dir/worker.db?mode=rwc" ;;
    postgres)
      db="fabula_bench_jobs_$(date +%s)"
      psql "$PG_ADMIN_URL" -qc "CREATE DATABASE $db"
      url="${PG_ADMIN_URL%/*}/$db" ;;
  esac
  RUST_LOG=warn STORY_LISTEN=127.0.0.1:50251 STORY_DATABASE_URL="sqlite://$dir/story.db?mode=rwc" FABULA_DATA_DIR=$dir \
    FABULA_ADMIN_USERNAME=bench-admin FABULA_ADMIN_PASSWORD=bench-admin-password "$bin/story-service" & pids+=($!)
  wait_port 50251
  targets=()
  # A bounded client runs under a limit of active jobs equal to its bound (the default
  # limit is 3); an unbounded one needs the limit lifted.
  active=$([ "$IN_FLIGHT" -gt 0 ] && echo "$IN_FLIGHT" || echo 1000000)
  for i in $(seq "$workers"); do
    port=$((50260 + i))
    RUST_LOG=warn WORKER_LISTEN=127.0.0.1:$port WORKER_DATABASE_URL=$url STORY_SERVICE_URL=http://127.0.0.1:50251 \
      WORKER_TOKEN_PUBLIC_KEY_FILE=$dir/token-ed25519.pub.pem WORKER_PRIVATE_KEY_FILE=$dir/worker-ed25519.pem \
      WORKER_RUNNERS=$RUNNERS WORKER_ACTIVE_JOBS_PER_USER=$active WORKER_DAILY_JOBS_PER_USER=100000000 \
      "$bin/gpt-worker" & pids+=($!)
    wait_port $port
    targets+=(--worker "http://127.0.0.1:$port")
  done
  echo "== $backend, $workers worker process(es), $KIND × $JOBS, $CONCURRENCY submitters, rate ${RATE}/s (0: unpaced), ${IN_FLIGHT} in flight each (0: unbounded)"
  "$bin/examples/jobsbench" --story http://127.0.0.1:50251 "${targets[@]}" --kind "$KIND" --jobs "$JOBS" \
    --concurrency "$CONCURRENCY" --rate "$RATE" --in-flight "$IN_FLIGHT"
  kill -TERM "${pids[@]}"; wait "${pids[@]}" 2>/dev/null || true
  [ "$backend" = postgres ] && psql "$PG_ADMIN_URL" -qc "DROP DATABASE $db WITH (FORCE)"
  rm -rf "$dir"
done
