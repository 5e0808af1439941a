#!/usr/bin/env bash
# Start the private PostgreSQL 15 cluster of the distributed Airflow deployment on
# 127.0.0.1:$DIST_PGPORT (default 15434; fsync off: test data), with the role `ctaoflow`
# (password `ctaoflow`) owning two databases: `airflow` (metadata DB and Celery result
# backend) and `ledger` (ctaoflow's ledger). Installs Debian's postgresql if missing (root).
# Idempotent: reuses a running cluster. Data under $DIST_PGBASE (default var/airflow-pg).
# Usage: start_postgres.sh [start|stop|kill]  (kill: SIGKILL the postmaster, for chaos tests)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DIST_PGPORT=${DIST_PGPORT:-15434}
DIST_PGBASE=${DIST_PGBASE:-$HERE/../../var/airflow-pg}
PGBIN=/usr/lib/postgresql/15/bin
source "$HERE/../lib/pg_cluster.sh"
mkdir -p "$DIST_PGBASE"
DIST_PGBASE=$(cd "$DIST_PGBASE" && pwd)
DATA=$DIST_PGBASE/pgdata
AS_PG="runuser -u postgres --"
PSQL="psql -h 127.0.0.1 -p $DIST_PGPORT -U postgres -Atq"

case "${1:-start}" in
  stop) $AS_PG "$PGBIN/pg_ctl" -D "$DATA" -m fast stop >/dev/null 2>&1 && echo "postgresql :$DIST_PGPORT stopped" \
          || echo "no postgresql of ours on :$DIST_PGPORT"; exit 0 ;;
  kill)  # the whole server crashes: the postmaster and its backends
    PID=$(head -1 "$DATA/postmaster.pid"); CHILDREN=$(pgrep -P "$PID" || true)
    kill -9 "$PID" $CHILDREN 2>/dev/null || true
    echo "postgresql :$DIST_PGPORT killed (pid $PID and its backends)"; exit 0 ;;
  start) ;;
  *) echo "usage: $0 [start|stop|kill]" >&2; exit 2 ;;
esac

if [ ! -x "$PGBIN/initdb" ]; then
  echo "[apt] installing postgresql"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends postgresql >"$DIST_PGBASE/apt.log" 2>&1
fi
chown postgres:postgres "$DIST_PGBASE"
pg_cluster_init "$DATA" "$DIST_PGBASE/initdb.log"
for attempt in 1 2 3 4 5; do
  # "is it up" by asking it: a killed postmaster may linger as a zombie that pg_ctl
  # status still counts as running (no init reaps it in a container)
  rc=0; pg_isready -q -h 127.0.0.1 -p "$DIST_PGPORT" || rc=$?
  [ "$rc" != 2 ] && break
  # after a crash: a stale postmaster.pid would make `pg_ctl -w` report the dead
  # server as ready; the cluster recovers from its WAL on start
  rm -f "$DATA/postmaster.pid" "$DIST_PGBASE/.s.PGSQL.$DIST_PGPORT.lock"
  $AS_PG "$PGBIN/pg_ctl" -D "$DATA" -l "$DIST_PGBASE/postgresql.log" -w -t 120 -o \
    "$(pg_cluster_options "$DIST_PGPORT" "$DIST_PGBASE" -c max_connections=300)" start >/dev/null && break
  sleep 1  # a killed server's backends may still hold its shared memory for a moment
done
for _ in $(seq 120); do pg_isready -q -h 127.0.0.1 -p "$DIST_PGPORT" && break; sleep 0.5; done
$PSQL -c "SELECT 1 FROM pg_roles WHERE rolname='ctaoflow'" | grep -q 1 \
  || $PSQL -c "CREATE ROLE ctaoflow LOGIN PASSWORD 'ctaoflow'"
for db in airflow ledger; do
  $PSQL -c "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1 \
    || $PSQL -c "CREATE DATABASE $db OWNER ctaoflow"
done
echo "postgresql ready: 127.0.0.1:$DIST_PGPORT (databases airflow, ledger; role ctaoflow)"
