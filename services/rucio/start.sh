#!/usr/bin/env bash
# Start a local Rucio 41.5.1 server (gunicorn, 127.0.0.1:$RUCIO_PORT) on a private PostgreSQL 15
# cluster (127.0.0.1:$RUCIO_PGPORT), installing what is missing first. Everything lives under
# $RUCIO_BASE (default var/rucio). Idempotent: a quick no-op when the server already answers;
# after stop.sh it restarts on the same data. Settings: see env.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../lib/pg_cluster.sh"
URL=http://127.0.0.1:$RUCIO_PORT
VENV=$RUCIO_BASE/venv
T0=$(date +%s.%N)
elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
ready() { echo "rucio ready: $URL (server pid $(cat "$RUN/gunicorn.pid"), postgresql 127.0.0.1:$RUCIO_PGPORT, scope $RUCIO_SCOPE, RSEs ${RUCIO_RSES// /,}, account root/userpass $RUCIO_USERNAME) $1"; }

STAMP="$RUCIO_SCOPE|$RUCIO_RSES|$RUCIO_BASE"
running() { [ -f "$RUN/gunicorn.pid" ] && kill -0 "$(cat "$RUN/gunicorn.pid")" 2>/dev/null; }
if running && curl -sf "$URL/ping" >/dev/null 2>&1 && [ "$(cat "$ETC/setup.done" 2>/dev/null)" = "$STAMP" ]; then
  ready "already running"; exit 0
fi
mkdir -p "$RUN" "$LOG" "$ETC" "$RUCIO_BASE/rse"

# ---- 1. OS packages and the server virtualenv (its own: its deps clash with Airflow's)
missing=()
for p in postgresql curl; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[apt] installing ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "${missing[@]}" >"$LOG/apt.log" 2>&1
fi
if [ ! -x "$VENV/bin/gunicorn" ]; then
  echo "[pip] creating $VENV"
  "${RUCIO_PYTHON:-python3}" -m venv "$VENV"
  "$VENV/bin/pip" install -q uv
  "$VENV/bin/uv" pip install -q --python "$VENV/bin/python" \
    "rucio[postgresql]==$RUCIO_VERSION" "rucio-clients==$RUCIO_VERSION" "gunicorn==27.0.1"
fi
SITE=$("$VENV/bin/python" -c 'import rucio, os; print(os.path.dirname(rucio.__file__))')

# ---- 2. configuration (server config; the client one has ONLY a [client] section)
DB=postgresql+psycopg://rucio:rucio@127.0.0.1:$RUCIO_PGPORT/rucio
umask 077
cat >"$ETC/rucio.cfg" <<CFG
[common]
logdir = $LOG
loglevel = WARNING
[database]
default = $DB
pool_recycle = 3600
pool_reset_on_return = rollback
[bootstrap]
userpass_identity = $RUCIO_USERNAME
userpass_pwd = $RUCIO_PASSWORD
userpass_email = root@localhost
[alembic]
cfg = $ETC/alembic.ini
[policy]
permission = generic
schema = generic
lfn2pfn_algorithm_default = identity
support = nobody@localhost
support_rucio = https://github.com/rucio/rucio/issues/
[metadata]
plugins = rucio.core.did_meta_plugins.json_meta.JSONDidMeta
[api]
endpoints_remove = opendata, opendata_public
CFG
cat >"$ETC/alembic.ini" <<CFG
[alembic]
sqlalchemy.url = $DB
script_location = $SITE/db/sqla/migrate_repo/
[loggers]
keys = root
[handlers]
keys = console
[formatters]
keys = generic
[logger_root]
level = WARN
handlers = console
[handler_console]
class = StreamHandler
args = (sys.stderr,)
formatter = generic
[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
CFG
cat >"$ETC/rucio-client.cfg" <<CFG
[client]
rucio_host = $URL
auth_host = $URL
auth_type = userpass
username = $RUCIO_USERNAME
password = $RUCIO_PASSWORD
account = root
request_retries = 3
CFG
umask 022
export RUCIO_CONFIG=$ETC/rucio.cfg

# ---- 3. PostgreSQL, private cluster owned by postgres, fsync off (test data)
pg_cluster_init "$RUCIO_BASE/pgdata" "$LOG/initdb.log"
pg_cluster_start "$RUCIO_BASE/pgdata" "$RUCIO_PGPORT" "$RUN" "$RUN/postgresql.log"
PSQL="psql -h 127.0.0.1 -p $RUCIO_PGPORT -U postgres -Atq"
$PSQL -c "SELECT 1 FROM pg_roles WHERE rolname='rucio'" | grep -q 1 || $PSQL -c "CREATE ROLE rucio LOGIN PASSWORD 'rucio'"
$PSQL -c "SELECT 1 FROM pg_database WHERE datname='rucio'" | grep -q 1 || $PSQL -c "CREATE DATABASE rucio OWNER rucio"

# ---- 4. schema + root account (userpass identity), once; a half-done bootstrap is redone
if [ "$($PSQL -d rucio -c "SELECT to_regclass('public.accounts') IS NOT NULL")" != t ] \
   || [ -z "$($PSQL -d rucio -c "SELECT 1 FROM accounts WHERE account='root'")" ]; then
  echo "[db] creating schema and root account"
  $PSQL -c "DROP DATABASE rucio" -c "CREATE DATABASE rucio OWNER rucio"
  "$VENV/bin/python" -c 'from rucio.db.sqla.util import build_database, create_base_vo, create_root_account
build_database(); create_base_vo(); create_root_account()' >"$LOG/bootstrap.log" 2>&1 \
    || { echo "rucio schema bootstrap failed; see $LOG/bootstrap.log" >&2; tail -5 "$LOG/bootstrap.log" >&2; exit 1; }
fi

# ---- 5. REST server under gunicorn
running || "$VENV/bin/gunicorn" --bind "127.0.0.1:$RUCIO_PORT" --workers "$RUCIO_WORKERS" --threads 4 --timeout 600 \
  --no-control-socket --pid "$RUN/gunicorn.pid" --daemon \
  --error-logfile "$LOG/server.log" --capture-output rucio.web.rest.flaskapi.v1.main:application
for _ in $(seq 300); do curl -sf "$URL/ping" >/dev/null 2>&1 && break; sleep 0.2; done
curl -sf "$URL/ping" >/dev/null || { echo "rucio server failed to start; see $LOG/server.log" >&2; tail -20 "$LOG/server.log" >&2; exit 1; }

# ---- 6. scope, RSEs (file protocol on local folders), limits; skipped when unchanged
if [ "$(cat "$ETC/setup.done" 2>/dev/null)" != "$STAMP" ]; then
  RUCIO_CONFIG=$ETC/rucio-client.cfg "$VENV/bin/python" "$HERE/setup_catalog.py" \
    --scope "$RUCIO_SCOPE" --rse-dir "$RUCIO_BASE/rse" $RUCIO_RSES
  echo "$STAMP" >"$ETC/setup.done"
fi
ready "in $(elapsed)s"
