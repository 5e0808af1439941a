#!/usr/bin/env bash
# Stop the Redis that start.sh started on $REDIS_PORT (default 16379); a no-op when none runs.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REDIS_PORT=${REDIS_PORT:-16379}
REDIS_BASE=${REDIS_BASE:-$HERE/../../var/redis}
PIDFILE=$REDIS_BASE/redis-$REDIS_PORT.pid
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  PID=$(cat "$PIDFILE")
  kill "$PID"
  for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  echo "redis on port $REDIS_PORT stopped"
else
  echo "no redis of ours on port $REDIS_PORT"
fi
