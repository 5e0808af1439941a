#!/usr/bin/env bash
# One subrun: lstchain_dl1ab recomputes the DL1b parameters (cleaning, Hillas) of a DL1a file
# -> one DL1 file. Works on simulations too (pedestal cleaning is then switched off by itself).
# usage: subrun_dl1ab.sh INPUT.dl1.h5 OUTPUT.dl1b.h5 [CONFIG.json]
# LSTCHAIN_DL1AB_ARGS adds options (e.g. "--no-image", "--catB-calibration-file F").
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ $# -ge 2 ] && [ $# -le 3 ] || die "usage: $JOB INPUT.h5 OUTPUT.h5 [CONFIG.json]"
IN=$(abspath "$1"); CFG=${3:+$(abspath "$3")}
need_file "$IN" ${CFG:+"$CFG"}
start_job "$2"
# shellcheck disable=SC2086
run lstchain_dl1ab --input-file "$IN" --output-file "$WORK/dl1b.h5" ${CFG:+--config "$CFG"} ${LSTCHAIN_DL1AB_ARGS:-}
publish "$WORK/dl1b.h5"
