# Settings shared by start.sh and stop.sh (sourced). Override any of them from the environment.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
RUCIO_BASE=${RUCIO_BASE:-${CTAOFLOW_VAR:-$REPO/var}/rucio}
RUCIO_PORT=${RUCIO_PORT:-18080}
RUCIO_PGPORT=${RUCIO_PGPORT:-15432}
RUCIO_USERNAME=${RUCIO_USERNAME:-ctaoflow}
RUCIO_PASSWORD=${RUCIO_PASSWORD:-ctaoflow-local}
RUCIO_SCOPE=${RUCIO_SCOPE:-ctao}
RUCIO_RSES=${RUCIO_RSES:-LOCAL-DISK CSCS-DISK DESY-ZN-DISK PIC-DISK FRASCATI-DISK}
RUCIO_WORKERS=${RUCIO_WORKERS:-2}
RUCIO_VERSION=41.5.1
PGBIN=/usr/lib/postgresql/15/bin
RUN=$RUCIO_BASE/run
LOG=$RUCIO_BASE/log
ETC=$RUCIO_BASE/etc
