#!/usr/bin/env bash
# ctapipe-process: DL0 (sim_telarray) files -> one DL1 + DL2 (geometry) HDF5 file per input,
# as CTADIRAC's jobs loop over their 5 inputs. The outputs are published only when all are made.
# usage: process.sh CONFIG.yaml INPUT... OUTPUT.DL2.h5...  (one output per input, same order)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ $# -ge 3 ] && [ $(($# % 2)) -eq 1 ] || die "usage: $JOB CONFIG.yaml INPUT... OUTPUT.h5... (one output per input)"
CFG=$(abspath "$1"); shift
N=$(($# / 2))
mapfile -t INS < <(abspath "${@:1:N}")
need_file "$CFG" "${INS[@]}"
start_job "${@:N+1}"
for i in "${!INS[@]}"; do
  run ctapipe-process --input "${INS[i]}" --output "${PRODUCTS[i]}" --config "$CFG" --log-level INFO
done
publish
