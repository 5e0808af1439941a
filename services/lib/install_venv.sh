# Shared part of services/<name>/install.sh (sourced, not executed): install a jobs'
# software environment, pinned by <name>/requirements.txt, into its own virtualenv with uv.
# Idempotent: a stamp file newer than requirements.txt means nothing to do. Prints one line
# either way; on failure one line naming the log, exit 1.
#
# install_venv NAME ENV TOOL PYTHON WARMUP VERSION
#   NAME     what is installed, for the messages (e.g. lstchain)
#   ENV      the virtualenv; its log is ENV.install.log, its stamp ENV/.ctaoflow-installed
#   TOOL     a program of ENV/bin that proves an install
#   PYTHON   the interpreter for uv venv -p (a version or a path)
#   WARMUP   Python run once after the install: uv does not byte-compile, so importing the
#            tools' modules here moves that cost out of the first jobs
#   VERSION  Python printing the installed versions (the stamp's content)
# The caller sets REQ (the requirements file).
set -euo pipefail

install_venv() {
  local name=$1 env=$2 tool=$3 python=$4 warmup=$5 version=$6
  local stamp=$env/.ctaoflow-installed log=$env.install.log t0
  t0=$(date +%s)
  if [ -f "$stamp" ] && [ "$stamp" -nt "$REQ" ] && [ -x "$env/bin/$tool" ]; then
    echo "$name env up to date: $env ($(cat "$stamp"))"
    return 0
  fi
  fail() { echo "$name install failed ($1); see $log" >&2; exit 1; }
  { mkdir -p "$(dirname "$env")" && : >"$log"; } 2>/dev/null \
    || { echo "$name install failed: cannot write $log (set its environment variable)" >&2; exit 1; }
  command -v uv >/dev/null 2>&1 || python3 -m pip install -q uv >>"$log" 2>&1 || fail "no uv, and pip install uv"
  rm -f "$stamp"
  # --allow-existing: a stale env is updated in place (uv pip install is a no-op for what is pinned already)
  uv venv -q --allow-existing -p "$python" "$env" >>"$log" 2>&1 || fail "uv venv -p $python"
  uv pip install -q --python "$env/bin/python" -r "$REQ" >>"$log" 2>&1 || fail "uv pip install -r $REQ"
  "$env/bin/python" -c "$warmup" >>"$log" 2>&1 || fail "import $name"
  "$env/bin/python" -c "$version" >"$stamp" 2>>"$log" || fail "$name version"
  echo "$name env installed: $env ($(cat "$stamp")) in $(( $(date +%s) - t0 ))s"
}
