#!/usr/bin/env bash
# lstchain_mc_trainpipe: train the random forests (energy, disp, gamma/hadron) on gamma and
# proton DL1 files -> ONE output: a tarball (.tar, .tar.gz, .tgz) of the model directory, or a
# directory when OUTPUT has no such suffix.
# usage: train_models.sh GAMMA.dl1.h5 PROTON.dl1.h5 OUTPUT.tar|OUTPUT_DIR [CONFIG.json]
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ $# -ge 3 ] && [ $# -le 4 ] || die "usage: $JOB GAMMA.h5 PROTON.h5 OUTPUT.tar|OUTPUT_DIR [CONFIG.json]"
G=$(abspath "$1"); P=$(abspath "$2"); CFG=${4:+$(abspath "$4")}
need_file "$G" "$P" ${CFG:+"$CFG"}
start_job "$3"
run lstchain_mc_trainpipe --input-file-gamma "$G" --input-file-proton "$P" --output-dir "$WORK/models" ${CFG:+--config "$CFG"}
[ -f "$WORK/models/reg_energy.sav" ] && [ -f "$WORK/models/cls_gh.sav" ] || die "lstchain_mc_trainpipe wrote no models; see $WORK/lstchain_mc_trainpipe.log"
# keep what the models were trained with beside them
{ echo "gamma: $G"; echo "proton: $P"; echo "config: ${CFG:-lstchain standard}"; "$BIN/python" -c 'from importlib.metadata import version; print("lstchain", version("lstchain"), "ctapipe", version("ctapipe"))'; } >"$WORK/models/TRAINED_ON.txt"
if [ -n "$CFG" ]; then cp "$CFG" "$WORK/models/config.json"; fi
case $OUT in
  *.tar) tar -cf "$WORK/models.tar" -C "$WORK/models" . && publish "$WORK/models.tar" ;;
  *.tar.gz|*.tgz) tar -czf "$WORK/models.tar" -C "$WORK/models" . && publish "$WORK/models.tar" ;;
  *) # a directory: rename into place (replaces an older one)
     tmp=$(mktemp -d "$(dirname "$OUT")/.$(basename "$OUT").tmp.XXXXXX"); rmdir "$tmp"
     mv "$WORK/models" "$tmp"; rm -rf "$OUT"; mv "$tmp" "$OUT"; echo "$JOB: wrote $OUT/" ;;
esac
