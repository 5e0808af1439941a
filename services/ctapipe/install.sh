#!/usr/bin/env bash
# Install the CTAO simulation-processing job software: ctapipe 0.32.0 (Python 3.12) in its own
# virtualenv at ${CTAOFLOW_CTAPIPE_ENV:-<repo>/var/ctapipe}, from the pinned requirements.txt
# beside this script, with uv. It is the jobs' environment, not Airflow's (ctapipe >= 0.29 needs
# Python >= 3.12; Airflow runs on 3.11); in production the same set comes from CVMFS or a container.
# Python: $CTAOFLOW_CTAPIPE_PYTHON, else pyenv's 3.12, else python3.12 on PATH.
# Idempotent: a stamp file newer than requirements.txt means nothing to do. Prints one line
# either way; on failure one line naming the log, exit 1.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ENV=${CTAOFLOW_CTAPIPE_ENV:-$ROOT/var/ctapipe}
REQ=$HERE/requirements.txt
STAMP=$ENV/.ctaoflow-installed
LOG=$ENV.install.log
T0=$(date +%s)

version() { "$ENV/bin/python" -c 'from importlib.metadata import version as v; print("ctapipe", v("ctapipe") + ", numpy", v("numpy") + ", scikit-learn", v("scikit-learn"))'; }

if [ -f "$STAMP" ] && [ "$STAMP" -nt "$REQ" ] && [ -x "$ENV/bin/ctapipe-process" ]; then
  echo "ctapipe env up to date: $ENV ($(cat "$STAMP"))"
  exit 0
fi

fail() { echo "ctapipe install failed ($1); see $LOG" >&2; exit 1; }
{ mkdir -p "$(dirname "$ENV")" && : >"$LOG"; } 2>/dev/null \
  || { echo "ctapipe install failed: cannot write $LOG (set CTAOFLOW_CTAPIPE_ENV)" >&2; exit 1; }
PY=${CTAOFLOW_CTAPIPE_PYTHON:-$(PYENV_VERSION=3.12.1 pyenv which python3.12 2>/dev/null || command -v python3.12 || true)}
[ -n "$PY" ] && "$PY" -c 'import sys; assert sys.version_info[:2] >= (3, 12)' 2>>"$LOG" \
  || fail "no Python >= 3.12 (set CTAOFLOW_CTAPIPE_PYTHON)"
command -v uv >/dev/null 2>&1 || python3 -m pip install -q uv >>"$LOG" 2>&1 || fail "no uv, and pip install uv"
rm -f "$STAMP"
# --allow-existing: a stale env is updated in place (uv pip install is a no-op for what is pinned already)
uv venv -q --allow-existing -p "$PY" "$ENV" >>"$LOG" 2>&1 || fail "uv venv -p $PY"
uv pip install -q --python "$ENV/bin/python" -r "$REQ" >>"$LOG" 2>&1 || fail "uv pip install -r $REQ"
# uv installs without byte-compiling: import the tools' modules once here so that the first
# jobs do not pay for compiling ctapipe's (and astropy's, scipy's, sklearn's) modules
"$ENV/bin/python" -c 'import ctapipe.tools.process, ctapipe.tools.merge, ctapipe.tools.apply_models, ctapipe.tools.train_energy_regressor, ctapipe.tools.train_particle_classifier, ctapipe.io.simteleventsource' \
  >>"$LOG" 2>&1 || fail "import ctapipe tools"
version >"$STAMP" 2>>"$LOG" || fail "ctapipe version"
echo "ctapipe env installed: $ENV ($(cat "$STAMP")) in $(( $(date +%s) - T0 ))s"
