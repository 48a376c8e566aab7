#!/usr/bin/env bash
# Train:  bash run_embodiment.sh [CONFIG] [key=value ...]
#   CONFIG: a file name (without .yaml) in config/; omitted (or first argument key=value): the GPU
#   quickstart when a CUDA GPU is present, else the CPU quickstart. --list prints the available
#   configs. Every key=value is a Hydra override (e.g. env.train.total_num_envs=32 runner.max_steps=200).
# Logs go to logs/CONFIG/TIMESTAMP unless runner.logger.log_path=... is given.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || PY=python3
MODULE=${RLINF_MODULE:-rlinf_isaac.runners.train}
NAME=${RLINF_SCRIPT:-$(basename "$0")}
if [ "${1:-}" = "--list" ] || [ "${1:-}" = "-l" ]; then exec "$PY" -m "$MODULE" --list; fi
if [ $# -gt 0 ] && [[ "$1" != *=* ]]; then
  CONFIG=${1%.yaml}; shift
  echo "[$NAME] config: $CONFIG"
else
  IFS=$'\t' read -r CONFIG WHY < <(cd "$ROOT" && "$PY" -m "$MODULE" --default-config)
  echo "[$NAME] config: $CONFIG (no config given; $WHY)"
fi
LOG=""
for a in "$@"; do [[ "$a" == runner.logger.log_path=* ]] && LOG=${a#runner.logger.log_path=}; done
EXTRA=()
if [ -z "$LOG" ]; then
  LOG=${LOG_ROOT:-$ROOT/logs}/$CONFIG/$(date +%Y%m%d-%H%M%S)
  EXTRA+=("runner.logger.log_path=$LOG")
fi
mkdir -p "$LOG"
echo "[$NAME] logs: $LOG"
cd "$ROOT"
set +e
# Python runs in the background so that a signal sent to this script alone reaches it:
# SIGTERM (timeout, a batch scheduler) or SIGINT (Ctrl-C) makes a training run finish its
# global step, checkpoint and exit 128 + the signal's number (the same signal delivered twice,
# to this script and to the process group, counts once). tee ignores both, so the last lines
# still reach the log.
"$PY" -m "$MODULE" "$CONFIG" "${EXTRA[@]}" "$@" > >(trap '' INT TERM; exec tee -a "$LOG/console.log") 2>&1 &
PID=$!
trap 'kill -TERM "$PID" 2>/dev/null' TERM
trap 'kill -INT "$PID" 2>/dev/null' INT
while :; do
  wait "$PID"; rc=$?
  kill -0 "$PID" 2>/dev/null || break  # else a signal interrupted the wait: keep waiting
done
trap - TERM INT
wait  # tee's last lines
set -e
echo "[$NAME] exit code $rc; console output in $LOG/console.log"
exit "$rc"
