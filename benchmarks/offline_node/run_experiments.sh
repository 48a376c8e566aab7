#!/usr/bin/env bash
# Learning experiments on one GPU node: several training runs side by side, each stopped by
# runner.max_time_s, then evaluated with eval_embodiment.sh on fresh seeds, with PNG curves.
#
#   RUNS="ppo2:mujoco_stack2_ppo_gr00t_tiny grpo2:mujoco_stack2_grpo_gr00t_tiny" TRAIN_S=420 \
#     bash benchmarks/offline_node/run_experiments.sh [extra key=value overrides for every run]
#
# A run is NAME:CONFIG[:key=value,key=value...]; runner.resume_dir=DIR,runner.max_time_s=S
# continues a checkpoint for TRAIN_S more seconds (S is cumulative: the checkpoint's seconds +
# TRAIN_S); a NAME starting with "base" (or TRAIN_S=0) only evaluates the config's starting
# checkpoint (the SFT baseline). Each run is its own Ray cluster on the same GPU, with SIM_PROCS
# simulator processes (env.train.num_workers). Writes, per run, $OUT/NAME.tgz (tensorboard/,
# plots/*.png, console.log, eval.log, eval.json and, with KEEP_CKPT=1, the newest checkpoint)
# and prints each eval JSON line. With VARIANTS set, an SFT sweep (sft_sweep.sh, at lower CPU
# priority SWEEP_NICE, evaluated on SWEEP_EVAL_EPISODES episodes) runs beside the RL runs.
# For runs longer than one command may last, start this through detached.sh.
#
# CPU recipes on a node with many cores: CPUS_PER_RUN=2 pins run i (and its evaluation) to
# cores [2i, 2i+1] with taskset and trains with cluster=cpu, so each run sees what a 2-core
# machine gives it (set SIM_PROCS=0 as the CPU quickstart does; EVAL_PROCS sets the
# evaluation's simulator processes). EVAL_EACH=1 evaluates every kept checkpoint
# (global_step_N), not only the newest: keep them with runner.keep_checkpoints=... and a
# runner.save_interval.
set -uo pipefail
OUT=${OUT:-/tmp/rl_results}
WORK=${WORK:-/tmp/rl_runs}
TRAIN_S=${TRAIN_S:-420}
EVAL_EPISODES=${EVAL_EPISODES:-200}  # eval_embodiment.sh after training
VAL_EPISODES=${VAL_EPISODES:-64}  # the evaluations every runner.val_check_interval during training
SIM_PROCS=${SIM_PROCS:-4}
# TRAIN_S + TAIL_S seconds after it starts a training run gets SIGTERM: it finishes its global
# step, checkpoints (and is evaluated below); KILL_AFTER_S later it is killed. TAIL_S covers the
# start-up, which runner.max_time_s does not count (a fresh node compiles Warp's kernels: ~3.5 min
# for three Isaac Lab runs starting together), the step in progress at the budget and the
# evaluations of the last step.
TAIL_S=${TAIL_S:-150}
KILL_AFTER_S=${KILL_AFTER_S:-300}
EVAL_TIMEOUT=${EVAL_TIMEOUT:-240}
EVAL_PROCS=${EVAL_PROCS:-$SIM_PROCS}
CPUS_PER_RUN=${CPUS_PER_RUN:-}
mkdir -p "$OUT" "$WORK" && OUT=$(cd "$OUT" && pwd) && WORK=$(cd "$WORK" && pwd)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/node_env.sh"  # wheelhouse, threads, EGL; the repository on PYTHONPATH
cd "$HERE/../.." || exit 1
if [ -n "$CPUS_PER_RUN" ]; then CLUSTER=${CLUSTER:-cpu}; fi
CLUSTER=${CLUSTER:-$($PYTHON -c "import torch; print('1gpu' if torch.cuda.is_available() else 'cpu')")}

one() {  # INDEX NAME CONFIG OVERRIDES(comma-separated) EXTRA...
  local idx=$1 name=$2 config=$3 ov=$4; shift 4
  local log="$WORK/$name" extra=() pin=()
  [ -n "$ov" ] && IFS=, read -r -a extra <<< "$ov"
  [ -n "$CPUS_PER_RUN" ] && pin=(taskset -c "$((idx * CPUS_PER_RUN))-$((idx * CPUS_PER_RUN + CPUS_PER_RUN - 1))")
  local common=("cluster=$CLUSTER" "env.train.num_workers=$SIM_PROCS" "env.eval.num_workers=$EVAL_PROCS")
  local train_s=$TRAIN_S targets=("")
  [[ $name == base* ]] && train_s=0
  if [ "$train_s" != 0 ]; then
    echo "[$name] train start $(date +%T)"
    # a run that continues a checkpoint (runner.resume_dir=...) names its own runner.max_time_s:
    # that budget is cumulative (the checkpoint's training seconds count)
    local budget=("runner.max_time_s=$train_s")
    [[ " ${extra[*]} " == *" runner.max_time_s="* ]] && budget=()
    timeout -k "$KILL_AFTER_S" $((train_s + TAIL_S)) "${pin[@]}" bash run_embodiment.sh "$config" "${common[@]}" "${budget[@]}" "runner.max_steps=100000" \
      "runner.eval_episodes=$VAL_EPISODES" "runner.logger.log_path=$log" "${extra[@]}" "$@" \
      > "$WORK/$name.train.out" 2>&1
    echo "[$name] train exit $? at $(date +%T): $(grep -c 'step' "$log/console.log" 2>/dev/null) console lines"
    [ -d "$log/tensorboard" ] && $PYTHON examples/read_tensorboard.py "$log" --png "$log/plots" > "$log/metrics.txt" 2>&1
    tar -C "$log" -czf "$OUT/$name.tgz" tensorboard plots console.log metrics.txt 2>/dev/null  # kept if eval is cut short
    local kept=()  # evaluate this run's checkpoints, not the one it started from
    for a in "${extra[@]}"; do [[ $a == runner.resume_dir=* || $a == runner.max_time_s=* ]] || kept+=("$a"); done
    extra=("${kept[@]}")
    targets=("$log/checkpoints")  # its newest
    [ "${EVAL_EACH:-0}" = 1 ] && targets=($(ls -d "$log"/checkpoints/global_step_* 2>/dev/null | sort -t_ -k3 -n))
  fi
  mkdir -p "$log"
  for target in "${targets[@]}"; do  # "": the config's own starting checkpoint
    local where=() tag=eval label=""
    [ -n "$target" ] && where=("runner.resume_dir=$target")
    [[ $target == */global_step_* ]] && tag=eval_${target##*_} && label=" step ${target##*_}"
    timeout "$EVAL_TIMEOUT" "${pin[@]}" bash eval_embodiment.sh "$config" "${common[@]}" "runner.eval_episodes=$EVAL_EPISODES" \
      "runner.logger.log_path=$log/$tag" "${extra[@]}" "$@" "${where[@]}" > "$log/eval.log" 2>&1
    grep '^{"success_rate"' "$log/eval.log" | tail -1 > "$log/eval.json"
    echo "[$name] eval$label at $(date +%T): $(cat "$log/eval.json")" | tee -a "$log/evals.txt"
  done
  local ck=()  # the newest checkpoint (a few MB for the tiny policy), to evaluate or resume elsewhere
  [ "${KEEP_CKPT:-0}" = 1 ] && [ -f "$log/checkpoints/latest" ] && ck=("checkpoints/latest" "checkpoints/$(cat "$log/checkpoints/latest")")
  tar -C "$log" -czf "$OUT/$name.tgz" tensorboard plots console.log eval.log eval.json evals.txt metrics.txt "${ck[@]}" 2>/dev/null
}

t0=$(date +%s)
if [ -n "${VARIANTS:-}" ]; then  # an SFT sweep beside the RL runs
  EVAL_EPISODES=${SWEEP_EVAL_EPISODES:-100} OUT=$OUT/sweep WORK=$WORK/sweep nice -n "${SWEEP_NICE:-5}" \
    bash "$HERE/sft_sweep.sh" > "$WORK/sweep.out" 2>&1 &
fi
i=0
for r in ${RUNS:?set RUNS="NAME:CONFIG[:k=v,k=v] ..."}; do
  IFS=: read -r name config ov <<< "$r"
  one "$i" "$name" "$config" "${ov:-}" "$@" &
  i=$((i + 1))
  sleep 5  # stagger Ray start-ups
done
wait
[ -n "${VARIANTS:-}" ] && tail -n 20 "$WORK/sweep.out"
echo "=== done in $(( $(date +%s) - t0 )) s ==="
