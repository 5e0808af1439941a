# Shared part of the services' start scripts (sourced, not executed; run as root): a private
# PostgreSQL cluster owned by the postgres user, for test and development data (fsync off),
# listening on 127.0.0.1 only. Used by services/postgres/start.sh (the ledger's cluster),
# services/rucio/start.sh (Rucio's) and services/airflow-distributed/start_postgres.sh.
# The caller sets PGBIN (e.g. /usr/lib/postgresql/15/bin).
#
# pg_cluster_init DATA LOG
#   a new cluster in DATA (superuser postgres, trust auth, UTF8, C.UTF-8) unless DATA holds
#   one already; initdb's output goes to LOG
# pg_cluster_options PORT SOCKETS [OPTION...]
#   prints the server's options: port PORT, its socket in SOCKETS, 127.0.0.1 only, then the
#   OPTIONs (e.g. -c max_connections=200), then fsync, synchronous commit and full-page
#   writes off
# pg_cluster_start DATA PORT SOCKETS SERVERLOG [OPTION...]
#   starts the cluster of DATA with those options, its log SERVERLOG, unless pg_ctl says it
#   runs; SOCKETS is given to postgres first
set -euo pipefail

pg_cluster_init() {
  local data=$1 log=$2
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$data"; chown postgres:postgres "$data"; chmod 700 "$data"
    runuser -u postgres -- "$PGBIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 \
      --locale=C.UTF-8 >"$log"
  fi
}

pg_cluster_options() {
  local port=$1 sockets=$2
  shift 2
  echo "-p $port -k $sockets -c listen_addresses=127.0.0.1${*:+ $*}" \
    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
}

pg_cluster_start() {
  local data=$1 port=$2 sockets=$3 serverlog=$4
  shift 4
  chown postgres:postgres "$sockets"
  if ! runuser -u postgres -- "$PGBIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$data" -l "$serverlog" -w -o \
      "$(pg_cluster_options "$port" "$sockets" "$@")" start >/dev/null
  fi
}
