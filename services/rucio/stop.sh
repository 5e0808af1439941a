#!/usr/bin/env bash
# Stop the local Rucio server and its PostgreSQL (by PID file only); the data stay.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

pidfile=$RUN/gunicorn.pid
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  pid=$(cat "$pidfile"); kill "$pid"
  for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  echo "stopped rucio server (pid $pid)"
fi
rm -f "$pidfile"
if [ -f "$RUCIO_BASE/pgdata/postmaster.pid" ]; then
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$RUCIO_BASE/pgdata" -m fast -w stop >/dev/null
  echo "stopped postgresql (port $RUCIO_PGPORT)"
fi
