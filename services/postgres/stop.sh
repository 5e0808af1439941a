#!/usr/bin/env bash
# Stop the ledger's PostgreSQL cluster (its own data directory only); the data stay.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
if [ -f "$LEDGER_PG_BASE/pgdata/postmaster.pid" ]; then
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$LEDGER_PG_BASE/pgdata" -m fast -w stop >/dev/null
  echo "stopped the ledger's postgresql (port $LEDGER_PG_PORT)"
fi
