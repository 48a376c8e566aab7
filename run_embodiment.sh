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
"$PY" -m "$MODULE" "$CONFIG" "${EXTRA[@]}" "$@" 2>&1 | tee -a "$LOG/console.log"
rc=${PIPESTATUS[0]}
set -e
echo "[$NAME] exit code $rc; console output in $LOG/console.log"
exit "$rc"
