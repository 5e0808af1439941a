#!/usr/bin/env bash
# Restart slurmctld only, keeping its saved state: running jobs go on under slurmd and
# are known again once the controller is back. Prints one line when it answers.
set -euo pipefail
source "$(dirname "$0")/common.sh"
stop_pid slurmctld "$BASE/run/slurmctld.pid"
start_ctld
wait_ready 60
say "slurmctld restarted (pid $(cat "$BASE/run/slurmctld.pid"))"
