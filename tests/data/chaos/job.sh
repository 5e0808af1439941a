#!/bin/sh
# A job with injected faults for the chaos test: usage job.sh OUTPUT INPUT.
# The input's run number picks the fault (20% each): infrastructure (killed by
# SIGKILL, first attempt only), data (unreadable input, first attempt only),
# application transient (exit 3, first attempt only) or permanent (exit 3 always).
# The attempt is the suffix of the working directory (<task>.<attempt>).
out="$1"; run=$(basename "$2" | sed 's/[^0-9]*0*\([0-9]*\).*/\1/'); attempt="${PWD##*.}"
case $((run % 10)) in
  0|1) [ "$attempt" = 1 ] && kill -9 $$ ;;
  2|3) [ "$attempt" = 1 ] && { echo "cannot read $2: truncated file" >&2; exit 2; } ;;
  4)   [ "$attempt" = 1 ] && { echo "ValueError: transient" >&2; exit 3; } ;;
  5)   echo "ValueError: no events survived the cuts" >&2; exit 3 ;;
esac
sleep 0.$((run % 7))
echo "run $run" > "$out"
