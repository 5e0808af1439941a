# Shared settings of the single-node Slurm scripts (sourced, not executed).
#   SLURM_BASE  state, logs, pid files      (default <repo>/var/slurm)
#   SLURM_CONF  slurm.conf of daemons and clients (default /etc/slurm/slurm.conf, the
#               compiled-in default, so plain sbatch/squeue work without exporting it)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BASE=${SLURM_BASE:-$ROOT/var/slurm}
export SLURM_CONF=${SLURM_CONF:-/etc/slurm/slurm.conf}
JOBCOMP=$BASE/log/jobcomp.txt

say() { echo "[slurm] $*"; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# node_state: the node's state as sinfo reports it ("" when slurmctld does not answer)
node_state() { sinfo -h -N -n localhost -o '%T' 2>/dev/null || true; }

# wait_ready SECONDS: until the controller answers and the node accepts jobs
wait_ready() {
  local st=""
  for _ in $(seq $(( $1 * 5 ))); do
    st=$(node_state)
    case $st in idle|mixed|allocated|completing) return 0 ;; esac
    sleep 0.2
  done
  echo "slurm: node not ready (state='$st'); see $BASE/log/slurmctld.log" >&2
  tail -5 "$BASE/log/slurmctld.log" "$BASE/log/slurmd.log" >&2 2>/dev/null || true
  return 1
}

# start_ctld [extra args]: start slurmctld (daemonizes, writes its pid file)
start_ctld() { /usr/sbin/slurmctld -f "$SLURM_CONF" "$@"; }

# stop_pid NAME PIDFILE: SIGTERM by pid file, SIGKILL after 15 s
stop_pid() {
  local name=$1 pf=$2 pid
  [ -f "$pf" ] || return 0
  pid=$(cat "$pf")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { say "$name: SIGKILL $pid"; kill -KILL "$pid"; }
    say "$name ($pid) stopped"
  fi
  rm -f "$pf"
}
