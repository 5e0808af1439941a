#!/usr/bin/env bash
# ctapipe-merge: DL1/DL2 files of one subarray -> one file (events of all inputs).
# usage: merge.sh OUTPUT.h5 INPUT.h5...
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ $# -ge 2 ] || die "usage: $JOB OUTPUT.h5 INPUT.h5..."
OUTPUT=$1; shift
mapfile -t INPUTS < <(abspath "$@")
need_file "${INPUTS[@]}"
start_job "$OUTPUT"
run ctapipe-merge --output "$PRODUCT" --log-level INFO "${INPUTS[@]}"
publish
