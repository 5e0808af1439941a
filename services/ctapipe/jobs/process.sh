#!/usr/bin/env bash
# ctapipe-process: one DL0 (sim_telarray) file -> one DL1 + DL2 (geometry) HDF5 file.
# usage: process.sh INPUT.simtel.zst OUTPUT.DL2.h5 CONFIG.yaml
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ $# -eq 3 ] || die "usage: $JOB INPUT OUTPUT.h5 CONFIG.yaml"
IN=$(abspath "$1"); CFG=$(abspath "$3")
need_file "$IN" "$CFG"
start_job "$2"
run ctapipe-process --input "$IN" --output "$PRODUCT" --config "$CFG" --log-level INFO
publish
