# Shared part of the ctapipe job wrappers (sourced, not executed).
#   CTAOFLOW_CTAPIPE_ENV  the ctapipe virtualenv (default <repo>/var/ctapipe; services/ctapipe/install.sh)
# ctapipe tools write <tool>.provenance.log into the current directory, so each job runs in a
# fresh private working directory beside its output; the product is written there and then
# renamed onto the path ctaoflow asked for (atomic: a reader never sees a half-written file).
# The working directory is removed after success and kept after a failure.
set -euo pipefail
CTAPIPE_ENV=${CTAOFLOW_CTAPIPE_ENV:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)/var/ctapipe}
JOB=$(basename "$0" .sh)

die() { echo "$JOB: $*" >&2; exit 2; }
[ -x "$CTAPIPE_ENV/bin/ctapipe-process" ] || die "no ctapipe environment at $CTAPIPE_ENV (run services/ctapipe/install.sh)"

# abspath PATH...: absolute paths, without resolving symlinks (the files need not exist)
abspath() { local p; for p; do case $p in /*) printf '%s\n' "$p" ;; *) printf '%s\n' "$PWD/$p" ;; esac; done; }

# need_file PATH...: each input must be a readable, non-empty file
need_file() { local f; for f; do [ -s "$f" ] && [ -r "$f" ] || die "input missing or empty: $f"; done; }

# start_job OUTPUT...: the outputs' directory (one for all) and a private working directory
# beside them; cd there. PRODUCTS (PRODUCT: the first) are where the tools write each output.
start_job() {
  local o
  mapfile -t OUTS < <(abspath "$@")
  OUT=${OUTS[0]}
  for o in "${OUTS[@]}"; do
    [ "$(dirname "$o")" = "$(dirname "$OUT")" ] || die "outputs in different directories: $OUT $o"
  done
  mkdir -p "$(dirname "$OUT")"
  WORK=$(mktemp -d "$(dirname "$OUT")/.$(basename "$OUT").work.XXXXXX")
  PRODUCTS=()
  for o in "${OUTS[@]}"; do PRODUCTS+=("$WORK/$(basename "$o")"); done
  PRODUCT=${PRODUCTS[0]}
  trap 'rc=$?; if [ $rc -ne 0 ]; then echo "$JOB: failed (exit $rc); working directory kept: $WORK" >&2; else rm -rf "$WORK"; fi' EXIT
  cd "$WORK"
}

# run TOOL ARGS...: a ctapipe tool of the environment, its output in WORK/TOOL.log
run() {
  local tool=$1; shift
  if ! "$CTAPIPE_ENV/bin/$tool" "$@" >>"$WORK/$tool.log" 2>&1; then
    echo "$JOB: $tool failed; last lines of $WORK/$tool.log:" >&2
    tail -n 5 "$WORK/$tool.log" >&2
    exit 1
  fi
}

# publish: rename each product onto its output (same directory: atomic), once all are made
publish() {
  local i
  for i in "${!PRODUCTS[@]}"; do
    [ -s "${PRODUCTS[i]}" ] || die "the tool wrote no ${PRODUCTS[i]}"
  done
  for i in "${!PRODUCTS[@]}"; do
    chmod 644 "${PRODUCTS[i]}"
    mv -f "${PRODUCTS[i]}" "${OUTS[i]}"
    echo "$JOB: wrote ${OUTS[i]} ($(stat -c %s "${OUTS[i]}") bytes)"
  done
}
