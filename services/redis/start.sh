#!/usr/bin/env bash
# Start a private Redis (Debian's redis-server, installed first if missing; needs root for
# apt-get) on 127.0.0.1:$REDIS_PORT (default 16379) as a plain process (append-only file, fsync always):
# the Celery broker of the distributed Airflow deployment. Idempotent: a running one on
# the port is reused. State under $REDIS_BASE (default var/redis). Prints "redis ready".
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REDIS_PORT=${REDIS_PORT:-16379}
REDIS_BASE=${REDIS_BASE:-$HERE/../../var/redis}
mkdir -p "$REDIS_BASE"
REDIS_BASE=$(cd "$REDIS_BASE" && pwd)
PIDFILE=$REDIS_BASE/redis-$REDIS_PORT.pid

if redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then
  echo "redis ready: 127.0.0.1:$REDIS_PORT (already running)"; exit 0
fi
if ! command -v redis-server >/dev/null; then
  echo "[apt] installing redis-server"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends redis-server redis-tools >"$REDIS_BASE/apt.log" 2>&1
fi
# a plain process in its own session, so the caller's process group can be killed alone
setsid redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize no --save "" \
  --appendonly yes --appendfsync always --dir "$REDIS_BASE" --pidfile "$PIDFILE" \
  --logfile "$REDIS_BASE/redis-$REDIS_PORT.log" </dev/null >/dev/null 2>&1 &
for _ in $(seq 100); do
  redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.1
done
redis-cli -p "$REDIS_PORT" ping | grep -q PONG || {
  echo "redis failed to start; see $REDIS_BASE/redis-$REDIS_PORT.log" >&2; exit 1; }
echo "redis ready: 127.0.0.1:$REDIS_PORT (pid $(cat "$PIDFILE"))"
