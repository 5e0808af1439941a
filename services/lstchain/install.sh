#!/usr/bin/env bash
# Install the LST-1 job software: lstchain 0.12.3 (ctapipe 0.25.1, Python 3.11) in its own
# virtualenv at ${CTAOFLOW_LSTCHAIN_ENV:-<repo>/var/lstchain}, from the pinned requirements.txt
# beside this script, with uv (services/lib/install_venv.sh). It is the jobs' environment, not
# Airflow's (their dependencies clash); in production the same set comes from CVMFS or a
# container.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/../lib/install_venv.sh"
REQ=$HERE/requirements.txt
ENV=${CTAOFLOW_LSTCHAIN_ENV:-$(cd "$HERE/../.." && pwd)/var/lstchain}
# the warm-up imports lstchain's modules (and ctapipe's, scipy's, ...): numba still compiles
# jitted functions at their first call; cache=True keeps the result
install_venv lstchain "$ENV" lstchain_mc_r0_to_dl1 python3.11 \
  'import lstchain.reco.r0_to_dl1, lstchain.reco.dl1_to_dl2, lstchain.tools.lstchain_dl1_to_dl2' \
  'from importlib.metadata import version as v; print("lstchain", v("lstchain") + ", ctapipe", v("ctapipe"))'
