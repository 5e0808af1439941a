#!/usr/bin/env bash
# Install the LST-1 job software: lstchain 0.12.3 (ctapipe 0.25.1, Python 3.11) in its own
# virtualenv at ${CTAOFLOW_LSTCHAIN_ENV:-<repo>/var/lstchain}, from the pinned requirements.txt
# beside this script, with uv. It is the jobs' environment, not Airflow's (their dependencies
# clash); in production the same set comes from CVMFS or a container.
# Idempotent: a stamp file newer than requirements.txt means nothing to do. Prints one line
# either way; on failure one line naming the log, exit 1.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ENV=${CTAOFLOW_LSTCHAIN_ENV:-$ROOT/var/lstchain}
REQ=$HERE/requirements.txt
STAMP=$ENV/.ctaoflow-installed
LOG=$ENV.install.log
T0=$(date +%s)

version() { "$ENV/bin/python" -c 'from importlib.metadata import version as v; print("lstchain", v("lstchain") + ", ctapipe", v("ctapipe"))'; }

if [ -f "$STAMP" ] && [ "$STAMP" -nt "$REQ" ] && [ -x "$ENV/bin/lstchain_mc_r0_to_dl1" ]; then
  echo "lstchain env up to date: $ENV ($(cat "$STAMP"))"
  exit 0
fi

fail() { echo "lstchain install failed ($1); see $LOG" >&2; exit 1; }
{ mkdir -p "$(dirname "$ENV")" && : >"$LOG"; } 2>/dev/null \
  || { echo "lstchain install failed: cannot write $LOG (set CTAOFLOW_LSTCHAIN_ENV)" >&2; exit 1; }
command -v uv >/dev/null 2>&1 || python3 -m pip install -q uv >>"$LOG" 2>&1 || fail "no uv, and pip install uv"
rm -f "$STAMP"
# --allow-existing: a stale env is updated in place (uv pip install is a no-op for what is pinned already)
uv venv -q --allow-existing -p python3.11 "$ENV" >>"$LOG" 2>&1 || fail "uv venv -p python3.11"
uv pip install -q --python "$ENV/bin/python" -r "$REQ" >>"$LOG" 2>&1 \
  || fail "uv pip install -r $REQ"
# uv installs without byte-compiling: the first import of lstchain compiles its (and ctapipe's,
# scipy's, ...) modules. Importing the tools' modules once here moves that cost out of the first
# jobs (numba still compiles jitted functions at their first call; cache=True keeps the result)
"$ENV/bin/python" -c 'import lstchain.reco.r0_to_dl1, lstchain.reco.dl1_to_dl2, lstchain.tools.lstchain_dl1_to_dl2' \
  >>"$LOG" 2>&1 || fail "import lstchain"
version >"$STAMP" 2>>"$LOG" || fail "lstchain version"
echo "lstchain env installed: $ENV ($(cat "$STAMP")) in $(( $(date +%s) - T0 ))s"
