#!/usr/bin/env bash
# Learning results on a one-GPU machine (the lent box: no package index): several training
# runs side by side, each stopped by runner.max_time_s, then evaluated with eval_embodiment.sh
# on fresh seeds, with PNG curves. Feeds docs/RESULTS.md (issue 6).
#
#   RUNS="ppo2:mujoco_stack2_ppo_gr00t_tiny grpo2:mujoco_stack2_grpo_gr00t_tiny" TRAIN_S=420 \
#     bash benchmarks/gpu_rl_results.sh [extra key=value overrides for every run]
#
# A run is NAME:CONFIG[:key=value,key=value...]; runner.resume_dir=DIR,runner.max_time_s=S continues a
# checkpoint for TRAIN_S more seconds (S is cumulative: the checkpoint's seconds + TRAIN_S); a NAME starting with "base" (or TRAIN_S=0)
# only evaluates the config's starting checkpoint (the SFT baseline). Each run is its own Ray cluster on the same
# GPU, with SIM_PROCS simulator processes (env.train.num_workers). Writes, per run,
# $OUT/NAME.tgz (tensorboard/, plots/*.png, console.log, eval.log, eval.json and, with
# KEEP_CKPT=1, the newest checkpoint) and prints each eval JSON line. For runs longer than one
# device call, start it through benchmarks/gpu_background.sh.
set -uo pipefail
OUT=${OUT:-/tmp/rl_results}
WORK=${WORK:-/tmp/rl_runs}
TRAIN_S=${TRAIN_S:-420}
EVAL_EPISODES=${EVAL_EPISODES:-200}  # eval_embodiment.sh after training
VAL_EPISODES=${VAL_EPISODES:-64}  # the evaluations every runner.val_check_interval during training
SIM_PROCS=${SIM_PROCS:-4}
TAIL_S=${TAIL_S:-150}  # a training run is killed TRAIN_S + TAIL_S seconds after it starts
EVAL_TIMEOUT=${EVAL_TIMEOUT:-240}
mkdir -p "$OUT" "$WORK"
source "$(dirname "${BASH_SOURCE[0]}")/gpu_setup.sh"
export PYTHON=${PYTHON:-python3}
CLUSTER=${CLUSTER:-$($PYTHON -c "import torch; print('1gpu' if torch.cuda.is_available() else 'cpu')")}

one() {  # NAME CONFIG OVERRIDES(comma-separated) EXTRA...
  local name=$1 config=$2 ov=$3; shift 3
  local log="$WORK/$name" extra=()
  [ -n "$ov" ] && IFS=, read -r -a extra <<< "$ov"
  local common=("cluster=$CLUSTER" "env.train.num_workers=$SIM_PROCS" "env.eval.num_workers=$SIM_PROCS")
  local train_s=$TRAIN_S
  [[ $name == base* ]] && train_s=0
  if [ "$train_s" != 0 ]; then
    echo "[$name] train start $(date +%T)"
    # a run that continues a checkpoint (runner.resume_dir=...) names its own runner.max_time_s:
    # that budget is cumulative (the checkpoint's training seconds count)
    local budget=("runner.max_time_s=$train_s")
    [[ " ${extra[*]} " == *" runner.max_time_s="* ]] && budget=()
    timeout $((train_s + TAIL_S)) bash run_embodiment.sh "$config" "${common[@]}" "${budget[@]}" "runner.max_steps=100000" \
      "runner.eval_episodes=$VAL_EPISODES" "runner.logger.log_path=$log" "${extra[@]}" "$@" \
      > "$WORK/$name.train.out" 2>&1
    echo "[$name] train exit $? at $(date +%T): $(grep -c 'step' "$log/console.log" 2>/dev/null) console lines"
    [ -d "$log/tensorboard" ] && $PYTHON examples/read_tensorboard.py "$log" --png "$log/plots" > "$log/metrics.txt" 2>&1
    tar -C "$log" -czf "$OUT/$name.tgz" tensorboard plots console.log metrics.txt 2>/dev/null  # kept if eval is cut short
    local kept=()  # evaluate this run's newest checkpoint, not the one it started from
    for a in "${extra[@]}"; do [[ $a == runner.resume_dir=* || $a == runner.max_time_s=* ]] || kept+=("$a"); done
    extra=("${kept[@]}" "runner.resume_dir=$log/checkpoints")
  fi
  mkdir -p "$log"
  timeout "$EVAL_TIMEOUT" bash eval_embodiment.sh "$config" "${common[@]}" "runner.eval_episodes=$EVAL_EPISODES" \
    "runner.logger.log_path=$log/eval" "${extra[@]}" "$@" > "$log/eval.log" 2>&1
  grep '^{"success_rate"' "$log/eval.log" | tail -1 > "$log/eval.json"
  echo "[$name] eval at $(date +%T): $(cat "$log/eval.json")"
  local ck=()  # the newest checkpoint (a few MB for the tiny policy), to evaluate or resume elsewhere
  [ "${KEEP_CKPT:-0}" = 1 ] && [ -f "$log/checkpoints/latest" ] && ck=("checkpoints/latest" "checkpoints/$(cat "$log/checkpoints/latest")")
  tar -C "$log" -czf "$OUT/$name.tgz" tensorboard plots console.log eval.log eval.json metrics.txt "${ck[@]}" 2>/dev/null
}

t0=$(date +%s)
for r in ${RUNS:?set RUNS="NAME:CONFIG[:k=v,k=v] ..."}; do
  IFS=: read -r name config ov <<< "$r"
  one "$name" "$config" "${ov:-}" "$@" &
  sleep 5  # stagger Ray start-ups
done
wait
echo "=== done in $(( $(date +%s) - t0 )) s ==="
