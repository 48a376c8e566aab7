#!/usr/bin/env bash
# SFT variants side by side on one GPU node, each intermediate checkpoint evaluated, to choose
# an SFT starting point for RL.
#
#   VARIANTS="s2_8k:TWO:outputs/sft2_rel/demos:8000 s3_8k:THREE:outputs/sft3_rel/demos:8000" \
#     bash benchmarks/offline_node/sft_sweep.sh
#
# A variant is NAME:TASK:DEMOS:STEPS[:KEY=V,KEY=V] (TASK: TWO or THREE, DEMOS: a LeRobot dataset
# made by `python -m rlinf_isaac.demos.expert --record`, or recordN to record N expert demos
# first; KEY=V: scripts/make_tiny_sft.sh settings for this variant only, e.g. SEED=3,LR=3e-4).
# Every variant trains with scripts/make_tiny_sft.sh on the GPU, all at once (SFT_SECONDS is
# each one's training-time budget, MAX_SECONDS of make_tiny_sft.sh: the learning rate is annealed
# by then; SFT_TIMEOUT kills a variant outright), then each checkpoint-<step>/ is evaluated on
# EVAL_EPISODES episodes (rlinf_isaac.sft.evaluate --stages, seed 1000, EVAL_CHUNK actions per
# call, EVAL_ENVS envs at once: success and the share of episodes that built each stacking pair).
# TASK may also be a task id; an Isaac Lab task's simulator settings come from make_tiny_sft.sh's
# variables (SIM_DEVICE, ISAACLAB_STACK, ISAACLAB_PYTHON, default $RLINF_ISAACLAB_PYTHON as
# node_env.sh sets it, MAX_EPISODE_STEPS), used by the evaluation too. Writes $OUT/<NAME>.tgz
# (one checkpoint, see PICK_LOW below), $OUT/sweep.jsonl (one line per evaluated checkpoint)
# and $OUT/logs.tgz (logs and SFT TensorBoard curves): few files, to keep what comes back small.
set -uo pipefail
OUT=${OUT:-/tmp/sft_sweep}
WORK=${WORK:-/tmp/sweep}
EVAL_EPISODES=${EVAL_EPISODES:-100}
EVAL_ENVS=${EVAL_ENVS:-16}
mkdir -p "$OUT" "$WORK" && OUT=$(cd "$OUT" && pwd) && WORK=$(cd "$WORK" && pwd)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/node_env.sh"  # wheelhouse, threads, EGL; the repository on PYTHONPATH
cd "$HERE/../.." || exit 1
PY=$PYTHON
DEVICE=${DEVICE:-$($PY -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")}

task_id() { case $1 in TWO) echo MuJoCo-Stack-Two-Cube-Franka-IK-Rel-Visuomotor-v0 ;;
                       THREE) echo MuJoCo-Stack-Cube-Franka-IK-Rel-Visuomotor-v0 ;; *) echo "$1" ;; esac; }

one() {  # NAME TASK DEMOS STEPS [KEY=V,...]: train, evaluate every checkpoint, pack
  local name=$1 task; task=$(task_id "$2"); local demos=$3 steps=$4 dir="$WORK/$1" extra=()
  [ -n "${5:-}" ] && IFS=, read -ra extra <<< "$5"
  local episodes=200
  mkdir -p "$dir"
  case $demos in  # recordN: the expert records N demos (seed 0) here first; else a dataset path
    record*) episodes=${demos#record}; episodes=${episodes:-200} ;;
    *) [ -f "$demos/meta/info.json" ] || { echo "[$name] $demos is not a LeRobot dataset (no meta/info.json)"; return 1; }
       ln -sfn "$(realpath "$demos")" "$dir/demos"
       # all of its episodes: make_tiny_sft.sh's default shuffling window (WINDOW) is EPISODES, so
       # every episode's videos are decoded once and stay cached rather than once per epoch
       # (memory: ~8.5 MB per 200-frame episode with two 84 px cameras)
       episodes=$($PY -c "import json, sys; print(json.load(open(sys.argv[1]))['total_episodes'])" "$demos/meta/info.json") ;;
  esac
  # SFT_TIMEOUT bounds the training; whatever checkpoint-<step>/ exist by then are evaluated
  env TASK=$task OUT=$dir CKPT=$dir/ckpt STEPS=$steps EPISODES=$episodes DEVICE=$DEVICE EVAL_EPISODES=0 PYTHON=$PY \
    ${SFT_SECONDS:+MAX_SECONDS=$SFT_SECONDS} "${extra[@]}" timeout "${SFT_TIMEOUT:-100000}" bash scripts/make_tiny_sft.sh > "$OUT/$name.log" 2>&1 \
    || echo "[$name] SFT exited $? (124: stopped by SFT_TIMEOUT)"
  local SIM_ARGS
  sim_args "$task"  # the evaluation's episode limit and, for an Isaac Lab task, its simulator
  for c in "$dir"/sft/checkpoint-*; do
    $PY -m rlinf_isaac.sft.evaluate "$c" --task "$task" --episodes "$EVAL_EPISODES" --num-envs "$EVAL_ENVS" \
      --seed 1000 --device "$DEVICE" --num-action-chunks "${EVAL_CHUNK:-16}" --stages "${SIM_ARGS[@]}" \
      > "$c.eval.json" 2>> "$OUT/$name.log" &
  done
  wait
  cat "$dir"/sft/checkpoint-*.eval.json >> "$OUT/sweep.jsonl"
  # keep one checkpoint per variant: the most successful one
  # inside [PICK_LOW, PICK_HIGH], else the one nearest that range
  local pick
  pick=$(cat "$dir"/sft/checkpoint-*.eval.json | $PY "$HERE/pick_start.py" --low "${PICK_LOW:-0.2}" \
    --high "${PICK_HIGH:-0.7}" --field checkpoint)
  [ -n "$pick" ] || { echo "[$name] nothing evaluated"; return 1; }
  rm -f "$pick/trainer_state.pt"  # optimizer state: not needed back
  tar -C "$(dirname "$pick")" -czf "$OUT/$name.tgz" "$(basename "$pick")" && echo "[$name] done, picked $pick"
}

t0=$(date +%s)
for v in ${VARIANTS:?set VARIANTS="NAME:TASK:DEMOS:STEPS ..."}; do
  IFS=: read -r name task demos steps extra <<< "$v"
  one "$name" "$task" "$demos" "$steps" "$extra" &
done
wait
echo "=== sweep done in $(( $(date +%s) - t0 )) s ==="
mkdir -p "$WORK/logs" && cp "$OUT"/*.log "$OUT/sweep.jsonl" "$WORK/logs/" 2>/dev/null
for d in "$WORK"/*/sft/tensorboard; do n=$(basename "$(dirname "$(dirname "$d")")"); cp -r "$d" "$WORK/logs/tb_$n"; done
tar -C "$WORK" -czf "$OUT/logs.tgz" logs && rm -f "$OUT"/*.log
cat "$OUT/sweep.jsonl" 2>/dev/null
