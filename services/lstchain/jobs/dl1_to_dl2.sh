#!/usr/bin/env bash
# lstchain_dl1_to_dl2: apply a model set to one DL1 file -> one DL2 file.
# usage: dl1_to_dl2.sh INPUT.dl1.h5 MODELS OUTPUT.dl2.h5 [CONFIG.json]
# MODELS is a model directory or a tarball made by train_models.sh (unpacked in the workdir).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ $# -ge 3 ] && [ $# -le 4 ] || die "usage: $JOB INPUT.h5 MODELS_DIR_OR_TAR OUTPUT.h5 [CONFIG.json]"
IN=$(abspath "$1"); MODELS=$(abspath "$2"); CFG=${4:+$(abspath "$4")}
need_file "$IN" ${CFG:+"$CFG"}
[ -d "$MODELS" ] || need_file "$MODELS"
start_job "$3"
if [ -f "$MODELS" ]; then
  mkdir models && tar -xf "$MODELS" -C models || die "cannot unpack model tarball $MODELS"
  MODELS=$WORK/models
fi
[ -f "$MODELS/reg_energy.sav" ] && [ -f "$MODELS/cls_gh.sav" ] || die "no reg_energy.sav/cls_gh.sav in model set $2"
# the tool names its output after the input with the first 'dl1' turned into 'dl2'
mkdir in
name=$(basename "$IN"); case $name in *dl1*) ;; *) name=dl1_$name ;; esac
ln -s "$IN" "in/$name"
run lstchain_dl1_to_dl2 --input-files "$WORK/in/$name" --path-models "$MODELS" --output-dir "$WORK/out" ${CFG:+--config "$CFG"}
[ -n "$(ls -A "$WORK/out" 2>/dev/null)" ] || die "lstchain_dl1_to_dl2 wrote no DL2 file (no event passed the filters?); see $WORK/lstchain_dl1_to_dl2.log"
publish "$(only_file "$WORK/out" '*.h5')"
