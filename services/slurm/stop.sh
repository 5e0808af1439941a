#!/usr/bin/env bash
# Stop the single-node Slurm of start.sh by pid file: cancel remaining jobs, then
# slurmd, slurmctld, munged (STOP_MUNGE=0 keeps munged). Saved state is kept.
set -uo pipefail
source "$(dirname "$0")/common.sh"

if alive "$BASE/run/slurmctld.pid" && alive "$BASE/run/slurmd.pid"; then
  ids=$(squeue -h -t PD,R,CG,S,CF -o '%A' 2>/dev/null || true)
  if [ -n "$ids" ]; then
    scancel $ids 2>/dev/null || true
    for _ in $(seq 60); do
      [ -z "$(squeue -h -t PD,R,CG,S,CF -o '%A' 2>/dev/null)" ] && break; sleep 0.5
    done
  fi
fi
stop_pid slurmd "$BASE/run/slurmd.pid"
stop_pid slurmctld "$BASE/run/slurmctld.pid"
[ "${STOP_MUNGE:-1}" = 1 ] && stop_pid munged /run/munge/munged.pid
exit 0
