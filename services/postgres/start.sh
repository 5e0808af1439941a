#!/usr/bin/env bash
# Start the ledger's own PostgreSQL 15 cluster (127.0.0.1:$LEDGER_PG_PORT, data under
# $LEDGER_PG_BASE, default var/postgres), installing Debian's postgresql-15 first if it is
# missing. Idempotent: a quick no-op when the cluster already answers; after stop.sh it
# restarts on the same data. Prints the ledger URL last. Settings: see env.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/pg_cluster.sh"
URL=postgresql+psycopg://$LEDGER_PG_USER:$LEDGER_PG_PASSWORD@127.0.0.1:$LEDGER_PG_PORT/$LEDGER_PG_DB
PSQL="$PGBIN/psql -h 127.0.0.1 -p $LEDGER_PG_PORT -U postgres -Atq"
ready() { echo "postgresql ready: 127.0.0.1:$LEDGER_PG_PORT, data $LEDGER_PG_BASE/pgdata, ledger ${URL/:$LEDGER_PG_PASSWORD@/:***@} $1"; }

if [ -f "$LEDGER_PG_BASE/pgdata/postmaster.pid" ] && $PSQL -d "$LEDGER_PG_DB" -c "SELECT 1" >/dev/null 2>&1; then
  ready "(already running)"; exit 0
fi
mkdir -p "$RUN" "$LOG"

# ---- 1. Debian's postgresql-15, once
if [ ! -x "$PGBIN/initdb" ]; then
  echo "[apt] installing postgresql-15"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends postgresql-15 >"$LOG/apt.log" 2>&1
fi

# ---- 2. a private cluster owned by postgres, fsync off (test and development data)
pg_cluster_init "$LEDGER_PG_BASE/pgdata" "$LOG/initdb.log"
pg_cluster_start "$LEDGER_PG_BASE/pgdata" "$LEDGER_PG_PORT" "$RUN" "$RUN/postgresql.log" \
  -c max_connections=200

# ---- 3. the ledger's role and database (the role may create the per-test databases)
$PSQL -c "SELECT 1 FROM pg_roles WHERE rolname='$LEDGER_PG_USER'" | grep -q 1 \
  || $PSQL -c "CREATE ROLE $LEDGER_PG_USER LOGIN CREATEDB PASSWORD '$LEDGER_PG_PASSWORD'"
$PSQL -c "SELECT 1 FROM pg_database WHERE datname='$LEDGER_PG_DB'" | grep -q 1 \
  || $PSQL -c "CREATE DATABASE $LEDGER_PG_DB OWNER $LEDGER_PG_USER"
ready "(started)"
