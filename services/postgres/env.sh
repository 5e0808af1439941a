# Settings shared by start.sh and stop.sh (sourced). Override any of them from the environment.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
LEDGER_PG_BASE=${LEDGER_PG_BASE:-${CTAOFLOW_VAR:-$REPO/var}/postgres}
LEDGER_PG_PORT=${LEDGER_PG_PORT:-15433}
LEDGER_PG_USER=${LEDGER_PG_USER:-ctaoflow}
LEDGER_PG_PASSWORD=${LEDGER_PG_PASSWORD:-ctaoflow-local}
LEDGER_PG_DB=${LEDGER_PG_DB:-ctaoflow}
PGBIN=/usr/lib/postgresql/15/bin
RUN=$LEDGER_PG_BASE/run
LOG=$LEDGER_PG_BASE/log
