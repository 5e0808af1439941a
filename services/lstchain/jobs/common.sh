# Shared part of the lstchain job wrappers (sourced, not executed).
#   CTAOFLOW_LSTCHAIN_ENV  the lstchain virtualenv (default <repo>/var/lstchain; services/lstchain/install.sh)
#   LSTCHAIN_WORKDIR       parent of the job's private working directory (default: the output's directory)
#   LSTCHAIN_KEEP_WORKDIR  1 keeps the working directory after success (it is always kept after a failure)
# lstchain tools choose their own output names inside an output directory and write logs and
# provenance into the current directory, so each job runs in its own fresh working directory
# and its product is moved to the path ctaoflow asked for: first under a temporary name in the
# output's directory, then renamed (atomic: a reader never sees a half-written output).
set -euo pipefail
LSTCHAIN_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
LSTCHAIN_ENV=${CTAOFLOW_LSTCHAIN_ENV:-$LSTCHAIN_ROOT/var/lstchain}
BIN=$LSTCHAIN_ENV/bin
JOB=$(basename "$0" .sh)

die() { echo "$JOB: $*" >&2; exit 2; }
[ -x "$BIN/python" ] || { echo "$JOB: no lstchain environment at $LSTCHAIN_ENV (run services/lstchain/install.sh)" >&2; exit 2; }

# abspath PATH: absolute path without resolving symlinks (the file need not exist)
abspath() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }

# need_file PATH...: each input must be a readable, non-empty file
need_file() { local f; for f; do [ -s "$f" ] && [ -r "$f" ] || die "input missing or empty: $f"; done; }

# start_job OUTPUT: make the output's directory and a private working directory, cd into it
start_job() {
  OUT=$(abspath "$1")
  mkdir -p "$(dirname "$OUT")"
  local parent=${LSTCHAIN_WORKDIR:-$(dirname "$OUT")}
  mkdir -p "$parent"
  WORK=$(mktemp -d "$parent/.$(basename "$OUT").work.XXXXXX")
  trap 'rc=$?; if [ $rc -ne 0 ]; then echo "$JOB: failed (exit $rc); working directory kept: $WORK" >&2; elif [ "${LSTCHAIN_KEEP_WORKDIR:-0}" != 1 ]; then rm -rf "$WORK"; fi' EXIT
  cd "$WORK"
}

# run TOOL ARGS...: run an lstchain tool of the environment, its output in tool.log of the workdir
run() {
  local tool=$1; shift
  echo "$JOB: $tool $*" >>"$WORK/commands.txt"
  if ! "$BIN/$tool" "$@" >>"$WORK/$tool.log" 2>&1; then
    echo "$JOB: $tool failed; last lines of $WORK/$tool.log:" >&2
    tail -n 5 "$WORK/$tool.log" >&2
    exit 1
  fi
}

# only_file DIR PATTERN: the single file matching PATTERN in DIR (fails otherwise)
only_file() {
  local matches=("$1"/$2)
  [ ${#matches[@]} -eq 1 ] && [ -f "${matches[0]}" ] || die "expected one $2 in $1, found: $(ls -A "$1" 2>/dev/null | tr '\n' ' ')"
  printf '%s\n' "${matches[0]}"
}

# publish FILE: move FILE to $OUT atomically (temporary name beside $OUT, then rename)
publish() {
  local tmp
  tmp=$(mktemp "$(dirname "$OUT")/.$(basename "$OUT").tmp.XXXXXX")
  mv -f "$1" "$tmp"
  chmod 644 "$tmp"
  mv -f "$tmp" "$OUT"
  echo "$JOB: wrote $OUT ($(stat -c %s "$OUT") bytes)"
}
