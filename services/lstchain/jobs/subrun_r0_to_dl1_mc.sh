#!/usr/bin/env bash
# One subrun, MC flavour: lstchain_mc_r0_to_dl1 on a sim_telarray file -> one DL1 file.
# usage: subrun_r0_to_dl1_mc.sh INPUT.simtel[.zst|.gz] OUTPUT.dl1.h5 [CONFIG.json]
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ $# -ge 2 ] && [ $# -le 3 ] || die "usage: $JOB INPUT.simtel OUTPUT.h5 [CONFIG.json]"
IN=$(abspath "$1"); CFG=${3:+$(abspath "$3")}
need_file "$IN" ${CFG:+"$CFG"}
start_job "$2"
run lstchain_mc_r0_to_dl1 --input-file "$IN" --output-dir "$WORK/out" ${CFG:+--config "$CFG"}
publish "$(only_file "$WORK/out" 'dl1_*.h5')"
