#!/usr/bin/env bash
# One run: lstchain_merge_hdf5_files of the run's subrun DL1 files -> one DL1 file.
# usage: merge_run.sh OUTPUT.h5 INPUT.h5... (at least one; merged in the order of their names)
# LSTCHAIN_MERGE_ARGS adds options (e.g. "--no-image", "--skip-checks").
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ $# -ge 2 ] || die "usage: $JOB OUTPUT.h5 INPUT.h5..."
OUTARG=$1; shift
INS=(); for f; do INS+=("$(abspath "$f")"); done
need_file "${INS[@]}"
start_job "$OUTARG"
# the tool merges a directory (sorted glob): link the inputs into one, under their own names
mkdir in
i=0
for f in "${INS[@]}"; do
  name=$(basename "$f"); case $name in *.h5) ;; *) name=$name.h5 ;; esac
  [ -e "in/$name" ] && name=$(printf 'dup%03d_%s' $i "$name")
  ln -s "$f" "in/$name"; i=$((i + 1))
done
# shellcheck disable=SC2086
run lstchain_merge_hdf5_files --input-dir "$WORK/in" --pattern '*.h5' --output-file "$WORK/merged.h5" --no-progress ${LSTCHAIN_MERGE_ARGS:-}
# the tool records the names it globbed (links in this workdir): record the real inputs instead
"$BIN/python" - "$WORK/merged.h5" "$WORK/in" <<'PY' || die "cannot write /source_filenames"
import glob, os, sys, tables
inputs = [os.readlink(p) for p in sorted(glob.glob(os.path.join(sys.argv[2], "*.h5")))]  # the tool's order
with tables.open_file(sys.argv[1], "a") as h5:
    if "/source_filenames" in h5:
        h5.remove_node("/", "source_filenames", recursive=True)
    group = h5.create_group("/", "source_filenames", "List of input files")
    h5.create_array(group, "filenames", inputs, "List of files merged")
PY
publish "$WORK/merged.h5"
