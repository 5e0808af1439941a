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
# the tool silently leaves out (exit 0, one log line) any input whose subarray, metadata or
# simulation settings differ from the first one's: refuse such a merge. Then record the real
# inputs in /source_filenames (the tool records the links it globbed in this workdir).
"$BIN/python" - "$WORK/merged.h5" "$WORK/in" <<'PY' || exit 1
import glob, os, sys, tables
links = sorted(glob.glob(os.path.join(sys.argv[2], "*.h5")))  # the tool's order
with tables.open_file(sys.argv[1], "a") as h5:
    merged = [f.decode() if isinstance(f, bytes) else str(f) for f in h5.root.source_filenames.filenames.read()]
    left_out = [os.readlink(p) for p in links if p not in merged]
    if left_out:
        sys.exit(f"merge_run: lstchain_merge_hdf5_files left out {len(left_out)} of {len(links)} inputs as not "
                 f"mergeable with the first (subarray, metadata or simulation settings differ): {' '.join(left_out)}")
    h5.remove_node("/", "source_filenames", recursive=True)
    group = h5.create_group("/", "source_filenames", "List of input files")
    h5.create_array(group, "filenames", [os.readlink(p) for p in links], "List of files merged")
PY
publish "$WORK/merged.h5"
