#!/usr/bin/env bash
# ctapipe-train-energy-regressor: one (merged) gamma DL2 file -> an energy model (pickle).
# usage: train_energy.sh INPUT.h5 MODEL.pkl CONFIG.yaml
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ $# -eq 3 ] || die "usage: $JOB INPUT.h5 MODEL.pkl CONFIG.yaml"
IN=$(abspath "$1"); CFG=$(abspath "$3")
need_file "$IN" "$CFG"
start_job "$2"
run ctapipe-train-energy-regressor --input "$IN" --output "$PRODUCT" --config "$CFG" --log-level INFO
publish
