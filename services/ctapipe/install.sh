#!/usr/bin/env bash
# Install the CTAO simulation-processing job software: ctapipe 0.32.0 (Python 3.12) in its own
# virtualenv at ${CTAOFLOW_CTAPIPE_ENV:-<repo>/var/ctapipe}, from the pinned requirements.txt
# beside this script, with uv (services/lib/install_venv.sh). It is the jobs' environment, not
# Airflow's (ctapipe >= 0.29 needs Python >= 3.12; Airflow runs on 3.11); in production the
# same set comes from CVMFS or a container.
# Python: $CTAOFLOW_CTAPIPE_PYTHON, else pyenv's 3.12.1, else python3.12 on PATH.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/../lib/install_venv.sh"
REQ=$HERE/requirements.txt
ENV=${CTAOFLOW_CTAPIPE_ENV:-$(cd "$HERE/../.." && pwd)/var/ctapipe}
PY=${CTAOFLOW_CTAPIPE_PYTHON:-$(PYENV_VERSION=3.12.1 pyenv which python3.12 2>/dev/null || command -v python3.12 || echo python3.12)}
install_venv ctapipe "$ENV" ctapipe-process "$PY" \
  'import ctapipe.tools.process, ctapipe.tools.merge, ctapipe.tools.apply_models, ctapipe.tools.train_energy_regressor, ctapipe.tools.train_particle_classifier, ctapipe.io.simteleventsource' \
  'from importlib.metadata import version as v; print("ctapipe", v("ctapipe") + ", numpy", v("numpy") + ", scikit-learn", v("scikit-learn"))'
