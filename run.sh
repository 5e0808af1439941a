#!/usr/bin/env bash
# ctaoflow's entry point on a fresh machine: installs what is missing, then
#   ./run.sh demo    runs the demo production end to end through Airflow (embedded defaults)
#   ./run.sh test    runs the whole test suite (starts Rucio and Slurm itself), then lists
#                    its 20 slowest tests
#   ./run.sh ARGS    any other ctaoflow command, e.g. ./run.sh validate config/productions/*.yaml
set -euo pipefail
cd "$(dirname "$0")"
VENV=${CTAOFLOW_VENV:-.venv}

install() {
  local stamp="$VENV/.installed"
  if [ -f "$stamp" ] && [ "$stamp" -nt requirements.txt ] && [ "$stamp" -nt pyproject.toml ]; then
    return
  fi
  echo "run.sh: installing ctaoflow and its pinned requirements into $VENV ..." >&2
  command -v uv >/dev/null 2>&1 || python3 -m pip install -q uv
  [ -x "$VENV/bin/python" ] || uv venv -q -p python3.11 "$VENV"
  VIRTUAL_ENV="$VENV" uv pip install -q -r requirements.txt
  VIRTUAL_ENV="$VENV" uv pip install -q --no-deps -e .
  touch "$stamp"
}

install
export PATH="$(cd "$VENV" && pwd)/bin:$PATH"  # local and Slurm jobs use this environment
case "${1:-demo}" in
  test) shift; exec "$VENV/bin/python" -m pytest -m "" --durations=20 "$@" ;;
  *) exec "$VENV/bin/ctaoflow" "$@" ;;
esac
