#!/usr/bin/env bash
# ctapipe-train-particle-classifier: signal (gamma) and background (proton) DL2 files with
# the energy applied -> a gamma/hadron classifier model (pickle).
# usage: train_classifier.sh SIGNAL.h5 BACKGROUND.h5 MODEL.pkl CONFIG.yaml
# CTAPIPE_MEANINGLESS_BACKGROUND=1: the background is a copy relabelled as protons (101)
# first, for data with no real proton file of the signal's subarray; the model is then
# MEANINGLESS (it only exercises the tool) and the job says so.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ $# -eq 4 ] || die "usage: $JOB SIGNAL.h5 BACKGROUND.h5 MODEL.pkl CONFIG.yaml"
SIGNAL=$(abspath "$1"); BACKGROUND=$(abspath "$2"); CFG=$(abspath "$4")
need_file "$SIGNAL" "$BACKGROUND" "$CFG"
start_job "$3"
if [ "${CTAPIPE_MEANINGLESS_BACKGROUND:-0}" = 1 ]; then
  "$CTAPIPE_ENV/bin/python" "$(dirname "${BASH_SOURCE[0]}")/relabel_as_proton.py" "$BACKGROUND" \
    "$WORK/background.MEANINGLESS.h5" || die "cannot relabel $BACKGROUND"
  BACKGROUND=$WORK/background.MEANINGLESS.h5
  echo "$JOB: MEANINGLESS model: background = $2 relabelled as protons"
fi
run ctapipe-train-particle-classifier --signal "$SIGNAL" --background "$BACKGROUND" \
  --output "$PRODUCT" --config "$CFG" --log-level INFO
publish
