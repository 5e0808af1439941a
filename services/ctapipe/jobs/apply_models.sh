#!/usr/bin/env bash
# ctapipe-apply-models: one DL2 file and one or more models -> one DL2 file with their
# predictions (energy, gammaness) added.
# usage: apply_models.sh INPUT.h5 OUTPUT.h5 MODEL.pkl...
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ $# -ge 3 ] || die "usage: $JOB INPUT.h5 OUTPUT.h5 MODEL.pkl..."
IN=$(abspath "$1"); OUTPUT=$2; shift 2
mapfile -t MODELS < <(abspath "$@")
need_file "$IN" "${MODELS[@]}"
start_job "$OUTPUT"
args=()
for m in "${MODELS[@]}"; do args+=(--reconstructor "$m"); done
run ctapipe-apply-models --input "$IN" --output "$PRODUCT" "${args[@]}" --log-level INFO
publish
